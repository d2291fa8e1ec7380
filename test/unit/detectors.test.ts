/** Pre-failure detectors over recorded buckets (pure logic). */
import { DEFAULT_THRESHOLDS } from '../../agent/config';
import { restartStorm, serviceMarkers, workerMarkers } from '../../agent/detectors';
import { Cooldown } from '../../agent/core/markers';
import type { Bucket, ServiceBucket } from '../../proto/codec';

const MiB = 1 << 20;
const subject = { pid: 42, startTicks: 7, serviceId: 'svc' };
function bucket(o: Partial<Bucket>): Bucket {
  return {
    tMs: 10_000, intervalMs: 1000, runqP50Us: 0, runqP99Us: 0, runqMaxUs: 0, runqCount: 0, runqHist: [], involuntarySwitches: 0,
    voluntarySwitches: 0, cpuMs: 0, minorFaults: 0, majorFaults: 0, rssBytes: 0, rssSlopeBytesPerS: 0, cgroupUsageBytes: 0,
    cgroupLimitBytes: 0, dstateNs: 0, dstateMaxNs: 0, bioReadBytes: 0, bioWriteBytes: 0, bioOps: 0, gcPauses: 0, gcPauseNs: 0,
    gcMaxPauseNs: 0, threads: 1, gap: false, signalsReceived: 0, bioLatP99Us: 0, bioLatMaxUs: 0, ...o,
  };
}
function svc(o: Partial<ServiceBucket>): ServiceBucket {
  return { serviceId: 'svc', tMs: 10_000, socketStates: {}, backlogDepth: 0, backlogMax: 0, retransmits: 0, resetsSent: 0,
    resetsReceived: 0, listenDrops: 0, cpuThrottledUs: 0, nrThrottled: 0, workersAlive: 2, deaths: 0, gap: false, ...o };
}

test('memory approaching the cgroup limit: marker with the time-to-limit from the RSS slope', () => {
  const [m] = workerMarkers(bucket({ rssBytes: 300 * MiB, cgroupUsageBytes: 320 * MiB, cgroupLimitBytes: 512 * MiB, rssSlopeBytesPerS: 8 * MiB }), subject, DEFAULT_THRESHOLDS, 0);
  expect(m.kind).toBe('memory-near-limit');
  expect(m.numbers.timeToLimitS).toBeCloseTo(24, 0);
  expect(m.numbers.limitBytes).toBe(512 * MiB);
  expect(m.message).toMatch(/reaches the cgroup limit in 24 s/);
});

test('flat memory well below the limit raises nothing', () => {
  expect(workerMarkers(bucket({ rssBytes: 100 * MiB, cgroupUsageBytes: 100 * MiB, cgroupLimitBytes: 512 * MiB }), subject, DEFAULT_THRESHOLDS, 0)).toEqual([]);
});

test('runqueue p99 and D-state stalls above their thresholds', () => {
  const kinds = workerMarkers(bucket({ runqP99Us: 80_000, runqCount: 40, dstateNs: 600e6, dstateMaxNs: 300e6 }), subject, DEFAULT_THRESHOLDS, 8 << 30).map((m) => m.kind);
  expect(kinds).toEqual(['runq-p99-high', 'dstate-stall']);
});

test('service: backlog near full, CLOSE_WAIT growing, CPU throttled', () => {
  const hist = [svc({ tMs: 0, socketStates: { CLOSE_WAIT: 2 } }), ...Array.from({ length: 10 }, (_, i) => svc({ tMs: (i + 1) * 1000, socketStates: { CLOSE_WAIT: 2 + i } }))];
  const now = svc({ tMs: 11_000, backlogDepth: 9, backlogMax: 10, socketStates: { CLOSE_WAIT: 15 }, cpuThrottledUs: 5000, nrThrottled: 3 });
  const ms = serviceMarkers(now, hist, DEFAULT_THRESHOLDS, 1000);
  expect(ms.map((m) => m.kind)).toEqual(['backlog-near-full', 'close-wait-growing', 'cpu-throttled']);
  expect(ms[1].numbers).toMatchObject({ to: 15 });
});

test('restart storm: too many deaths in the window', () => {
  const t = DEFAULT_THRESHOLDS;
  expect(restartStorm('svc', [1, 2, 3, 4], 10_000, t)).toBeUndefined();
  expect(restartStorm('svc', [1000, 2000, 3000, 4000, 5000], 10_000, t)?.numbers.deaths).toBe(5);
  expect(restartStorm('svc', [1000, 2000, 3000, 4000, 5000], 100_000, t)).toBeUndefined();
});

test('cooldown: one marker per kind and subject per window', () => {
  const c = new Cooldown(10_000);
  const m = workerMarkers(bucket({ runqP99Us: 80_000 }), subject, DEFAULT_THRESHOLDS, 0)[0];
  expect(c.admit(m)).toBe(true);
  expect(c.admit({ ...m, tMs: m.tMs + 5000 })).toBe(false);
  expect(c.admit({ ...m, tMs: m.tMs + 10_000 })).toBe(true);
  expect(c.admit({ ...m, pid: 43 })).toBe(true);
});
