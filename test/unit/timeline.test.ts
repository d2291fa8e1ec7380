/** Timeline rings, percentiles and slopes (pure logic). */
import { histPercentileUs, HostTimeline, MarkerRing, ServiceTimeline, slopePerSecond, WorkerTimeline } from '../../agent/timeline';

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

  test('memory is fixed by capacity', () => {
    const a = new WorkerTimeline(600, 1000);
    const before = a.bytes();
    for (let i = 0; i < 5000; i++) a.push(i * 1000, { rssBytes: i });
    expect(a.bytes()).toBe(before);
    expect(before).toBeLessThan(250 * 1024); // one worker, 10 min at 1 s
  });
});

test('service and host rings round-trip their fields', () => {
  const s = new ServiceTimeline('svc', 2, 1000);
  s.push(0, { backlogDepth: 5, backlogMax: 8, socketStates: { CLOSE_WAIT: 3, ESTABLISHED: 2 } });
  expect(s.latest()).toMatchObject({ serviceId: 'svc', backlogDepth: 5, socketStates: { CLOSE_WAIT: 3, ESTABLISHED: 2 } });
  const h = new HostTimeline(2);
  h.push(0, { load1: 1.5, psiMemSomeAvg10: 2.25 });
  expect(h.latest()).toMatchObject({ load1: 1.5, psiMemSomeAvg10: 2.25 });
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
