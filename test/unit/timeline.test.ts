/** Timeline rings, percentiles and slopes (pure logic). */
import { HIST_SLOTS } from '../../agent/records';
import { histPercentileUs, HostTimeline, MarkerRing, ServiceTimeline, slopePerSecond, WORKER_FIELDS, WorkerSample, WorkerTimeline } from '../../agent/timeline';

describe('WorkerTimeline', () => {
  test('keeps the last `capacity` buckets, oldest first, with histograms', () => {
    const t = new WorkerTimeline(3, 1000);
    for (let i = 0; i < 5; i++) t.push(1000 * i, { rssBytes: 100 + i, runqHist: [0, i, 0, 2], gap: i === 4 });
    expect(t.length).toBe(3);
    const b = t.buckets();
    expect(b.map((x) => x.tMs)).toEqual([2000, 3000, 4000]);
    expect(b.map((x) => x.rssBytes)).toEqual([102, 103, 104]);
    expect(b[0].runqHist).toEqual([0, 2, 0, 2]);
    expect(b[2].gap).toBe(true);
    expect(t.buckets(2500, 4000).map((x) => x.tMs)).toEqual([3000]);
    expect(t.series('rssBytes', 2)).toEqual([[3000, 103], [4000, 104]]);
  });

  test('memory grows with what the ring holds, then stays: an idle worker full for 10 min at 1 s', () => {
    const C = 600;
    const a = new WorkerTimeline(C, 1000);
    expect(a.bytes()).toBe(0);
    for (let i = 0; i < C; i++) a.push(i * 1000, { rssBytes: 50e6 + i * 4096, threads: 1 });
    // times (Float64) + RSS (Uint32, below 4 GiB) + threads (Uint8); no histogram, no gap, other fields 0.
    expect(a.bytes()).toBe(C * 8 + C * 4 + C * 1);
    const full = a.bytes();
    for (let i = C; i < 5 * C; i++) a.push(i * 1000, { rssBytes: 50e6 + i * 4096, threads: 1 });
    expect(a.bytes()).toBe(full);
    expect(full).toBeLessThan(WorkerTimeline.maxBytes(C) / 10);
  });

  test('a short-lived worker holds only its buckets', () => {
    const a = new WorkerTimeline(600, 1000);
    for (let i = 0; i < 30; i++) a.push(i * 1000, { rssBytes: 50e6, cpuMs: 12, runqHist: [0, 3, 9] });
    expect(a.bytes()).toBeLessThan(2 * 1024);
  });

  test('never above maxBytes, whatever the values (every field, widest values, full histograms)', () => {
    const C = 50;
    const a = new WorkerTimeline(C, 1000);
    const all: WorkerSample = { runqHist: new Array(HIST_SLOTS).fill(2 ** 31), gap: true };
    for (const f of WORKER_FIELDS) all[f] = 1.5e12 + 0.25;
    for (let i = 0; i < 3 * C; i++) a.push(i * 1000, all);
    expect(a.bytes()).toBeLessThanOrEqual(WorkerTimeline.maxBytes(C));
    // The bound is C x (9 + 4 per field + 135): narrower than the Float64 + dense Uint32 layout it replaced.
    expect(WorkerTimeline.maxBytes(C)).toBe(C * (9 + 4 * WORKER_FIELDS.length + 135));
    expect(WorkerTimeline.maxBytes(C)).toBeLessThan(C * (9 + 8 * WORKER_FIELDS.length + 4 * HIST_SLOTS));
  });

  test('values come back exactly while integers below 2^32, else within Float32 precision', () => {
    const t = new WorkerTimeline(4, 1000);
    t.push(0, { rssBytes: 4_294_967_295, cpuMs: 7, rssSlopeBytesPerS: -1234.5678, cgroupLimitBytes: 8 * 2 ** 30 + 12345 });
    t.push(1000, { rssBytes: 123, cpuMs: 70_000 });
    const [b0, b1] = t.buckets();
    expect(b0.rssBytes).toBe(4_294_967_295);
    expect(b0.cpuMs).toBe(7);
    expect(b1.cpuMs).toBe(70_000);
    expect(b1.rssBytes).toBe(123);
    expect(Math.abs(b0.rssSlopeBytesPerS - -1234.5678) / 1234.5678).toBeLessThan(2 ** -24);
    expect(Math.abs(b0.cgroupLimitBytes - (8 * 2 ** 30 + 12345)) / (8 * 2 ** 30)).toBeLessThan(2 ** -24);
  });
});

test('service and host rings round-trip their fields', () => {
  const s = new ServiceTimeline('svc', 2, 1000);
  s.push(0, { backlogDepth: 5, backlogMax: 8, socketStates: { CLOSE_WAIT: 3, ESTABLISHED: 2 } });
  expect(s.latest()).toMatchObject({ serviceId: 'svc', backlogDepth: 5, socketStates: { CLOSE_WAIT: 3, ESTABLISHED: 2 } });
  const h = new HostTimeline(2);
  h.push(0, { load1: 1.5, psiMemSomeAvg10: 2.25, psiCpuSomeAvg10: 0.13 });
  expect(h.latest()).toMatchObject({ load1: 1.5, psiMemSomeAvg10: 2.25, psiCpuSomeAvg10: 0.13 }); // host gauges exact
});

test('marker ring drops the oldest past its bound', () => {
  const m = new MarkerRing(2);
  for (let i = 0; i < 3; i++) m.push({ tMs: i, kind: 'k', pid: 0, startTicks: 0, serviceId: '', severity: 'info', message: `${i}`, numbers: {}, details: {} });
  expect(m.all().map((x) => x.tMs)).toEqual([1, 2]);
});

test('percentiles take the upper bound of the slot', () => {
  const slots = new Array(32).fill(0);
  slots[5] = 98; // [16, 32) µs
  slots[12] = 2; // [2048, 4096) µs
  expect(histPercentileUs(slots, 0.5)).toBe(32);
  expect(histPercentileUs(slots, 0.99)).toBe(4096);
  expect(histPercentileUs(new Array(32).fill(0), 0.5)).toBe(0);
});

test('slope is a least-squares fit per second', () => {
  expect(slopePerSecond([[0, 0], [1000, 10], [2000, 20]])).toBeCloseTo(10);
  expect(slopePerSecond([[0, 5]])).toBe(0);
});
