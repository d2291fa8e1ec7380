/** Where the last seconds went and the requests in flight, from facts to sentences (pure). */
import { decideVerdict, type DeathFacts } from '../../agent/deaths/verdict';
import { describeRequests, describeTime, withWhy } from '../../agent/deaths/why-text';
import { timeBreakdown, zeroShares } from '../../agent/deaths/why-time';
import type { Bucket, RequestInFlight, TimeBreakdown, TimeShares } from '../../proto/codec';
import { TimeClass } from '../../agent/probes/runqlat';

const S = 1e9;
const T0 = 1_764_170_000_000;

function breakdown(total: Partial<TimeShares>, o: Partial<TimeBreakdown> = {}): TimeBreakdown {
  return {
    windowMs: 30_000, endMs: T0, windowSource: 'gunicorn --timeout 30', total: { ...zeroShares(), ...total }, threads: 1, gcNs: 0,
    majorFaults: 0, blockedSyscall: '', blockedDevice: '', bioOps: 0, bioLatMaxUs: 0, bioReadBytes: 0, bioWriteBytes: 0,
    threadTimes: [], scaled: false, ...o,
  };
}
const req = (method: string, path: string, ageMs: number): RequestInFlight => ({
  method, path, protocol: 'HTTP/1.1', startedMs: T0 - ageMs, ageMs, tid: 1, fd: 9, truncated: false, queryDropped: false,
});

describe('the time sentence', () => {
  test('the issue\'s own example', () => {
    const t = breakdown({ blockedIoNs: 27.9 * S, runqWaitNs: 1.1 * S, onCpuNs: 0.6 * S, sleepNetNs: 0.4 * S },
      { blockedDevice: 'vda', bioOps: 212, bioReadBytes: 212 * 4096, bioLatMaxUs: 1.9e6 });
    expect(describeTime(t)).toBe('Of its last 30 s, 27.9 s blocked on disk I/O (vda, 212 reads, longest 1.9 s), 1.1 s waiting for a CPU, 0.6 s on CPU.');
  });

  test('at most three classes, largest first, each at least 2 % of the window', () => {
    const t = breakdown({ onCpuNs: 10 * S, throttledNs: 15 * S, runqWaitNs: 4 * S, sleepLockNs: 0.5 * S, faultWaitNs: 0.55 * S });
    expect(describeTime(t)).toBe("Of its last 30 s, 15.0 s throttled by its cgroup's CPU quota, 10.0 s on CPU, 4.0 s waiting for a CPU.");
    expect(describeTime(breakdown({ onCpuNs: 0.4 * S, sleepTimerNs: 29 * S }))).toBe('Of its last 30 s, 29.0 s sleeping (timers).');
  });

  test('D state without block I/O, with its system call; page faults; GC said apart; threads', () => {
    expect(describeTime(breakdown({ blockedIoNs: 20 * S }, { blockedSyscall: 'fsync' }))).toBe('Of its last 30 s, 20.0 s blocked in uninterruptible sleep (in fsync()).');
    expect(describeTime(breakdown({ faultWaitNs: 5 * S, onCpuNs: 3 * S }, { majorFaults: 812, gcNs: 0.7 * S })))
      .toBe('Of its last 30 s, 5.0 s servicing page faults (812 major), 3.0 s on CPU; 0.7 s in GC pauses.');
    expect(describeTime(breakdown({ sleepLockNs: 80 * S, onCpuNs: 30 * S, sleepNetNs: 10 * S }, { threads: 4, windowMs: 30_000 })))
      .toBe('Of its last 30 s, across its 4 threads, 80.0 s waiting on locks (futex, the GIL), 30.0 s on CPU, 10.0 s waiting on sockets or poll (idle included).');
    expect(describeTime(breakdown({ blockedIoNs: 12 * S }, { windowMs: 12_500, bioOps: 3, bioWriteBytes: 4096, blockedDevice: 'nvme0n1' })))
      .toBe('Of its last 12.5 s, 12.0 s blocked on disk I/O (nvme0n1, 3 writes).');
  });

  test('nothing measured: no sentence', () => {
    expect(describeTime(breakdown({}))).toBeUndefined();
    expect(describeTime(breakdown({ onCpuNs: 0.01 * S }))).toBeUndefined();
  });
});

describe('the requests sentence', () => {
  test('one, several, many', () => {
    expect(describeRequests([])).toBeUndefined();
    expect(describeRequests([req('GET', '/report', 31_200)])).toBe('GET /report was running for 31.2 s.');
    expect(describeRequests([req('GET', '/a', 12_000), req('POST', '/b', 11_500), req('GET', '/c', 2_100)]))
      .toBe('3 requests were in flight: GET /a (12.0 s), POST /b (11.5 s) and GET /c (2.1 s).');
    const seven = Array.from({ length: 7 }, (_, i) => req('GET', `/r${i}`, 1000 * (7 - i)));
    expect(describeRequests(seven)).toBe('7 requests were in flight: GET /r0 (7.0 s), GET /r1 (6.0 s), GET /r2 (5.0 s), GET /r3 (4.0 s), GET /r4 (3.0 s) and 2 more.');
  });
});

describe('in the verdict', () => {
  const facts = (o: Partial<DeathFacts> = {}): DeathFacts => ({
    exit: { pid: 4242, comm: 'gunicorn', tMs: T0, exitStatus: 1, termSignal: 0, coreDumped: false },
    signals: [{ tMs: T0 - 200, sig: 6, senderPid: 4200, senderComm: 'gunicorn', kernel: false }],
    masterPid: 4200, ...o,
  });

  test('a failure cites where its time went and the request it was serving, after its cause', () => {
    const why = { time: breakdown({ blockedIoNs: 27.9 * S, runqWaitNs: 1.1 * S }, { blockedDevice: 'vda', bioOps: 212, bioReadBytes: 1, bioLatMaxUs: 1.9e6 }), requests: [req('GET', '/report', 31_200)] };
    const v = decideVerdict(facts({ why }));
    expect(v.kind).toBe('killed-by-master');
    expect(v.summary).toMatch(/^The master pid 4200 \(gunicorn\) sent SIGABRT .*\. Of its last 30 s, 27\.9 s blocked on disk I\/O \(vda, 212 reads, longest 1\.9 s\), 1\.1 s waiting for a CPU\. GET \/report was running for 31\.2 s\.$/);
    expect(v.timeBreakdown).toBe(why.time);
    expect(v.requestsInFlight).toEqual(why.requests);
    expect(v.requestsNote).toBe('');
    expect(v.evidence.find((e) => e.what === 'last 30 s')?.value).toBe('27.9 s blocked on disk I/O (vda, 212 reads, longest 1.9 s), 1.1 s waiting for a CPU');
    expect(v.evidence.find((e) => e.what === 'request in flight')).toMatchObject({ value: 'GET /report for 31.2 s', number: 31_200, unit: 'ms', tMs: T0 - 31_200 });
  });

  test('a planned exit keeps the facts but its one-sentence summary', () => {
    const v = decideVerdict(facts({ exit: { pid: 4242, comm: 'gunicorn', tMs: T0, exitStatus: 0, termSignal: 0, coreDumped: false }, signals: [],
      why: { time: breakdown({ sleepNetNs: 29 * S }), requests: [] } }));
    expect(v.failure).toBe(false);
    expect(v.summary).toMatch(/^pid 4242 \(gunicorn\) exited on its own with code 0 at [\d:.]+ \(a planned exit, e\.g\. max-requests recycling\)\.$/);
    expect(v.timeBreakdown?.total?.sleepNetNs).toBe(29 * S);
  });

  test('no facts gathered: the verdict is what it always was; a note says why requests are missing', () => {
    const plain = decideVerdict(facts());
    expect(plain.timeBreakdown).toBeUndefined();
    expect(plain.requestsInFlight).toBeUndefined();
    const v = withWhy(decideVerdict(facts()), { requestsNote: 'not captured (--no-requests)' });
    expect(v.requestsNote).toBe('not captured (--no-requests)');
    expect(v.requestsInFlight).toEqual([]);
    expect(v.summary).toBe(plain.summary);
  });
});

describe('the breakdown from buckets', () => {
  const bucket = (tMs: number, o: Partial<Bucket>): Bucket => ({
    tMs, intervalMs: 1000, runqP50Us: 0, runqP99Us: 0, runqMaxUs: 0, runqCount: 0, runqHist: [], involuntarySwitches: 0,
    voluntarySwitches: 0, cpuMs: 0, minorFaults: 0, majorFaults: 0, rssBytes: 0, rssSlopeBytesPerS: 0, cgroupUsageBytes: 0,
    cgroupLimitBytes: 0, dstateNs: 0, dstateMaxNs: 0, bioReadBytes: 0, bioWriteBytes: 0, bioOps: 0, gcPauses: 0, gcPauseNs: 0,
    gcMaxPauseNs: 0, threads: 1, gap: false, signalsReceived: 0, bioLatP99Us: 0, bioLatMaxUs: 0, ...o,
  });

  test('buckets at the edges count for the part inside the window; the death bucket ends at the death', () => {
    // Window [10.5 s, 13.25 s]: half of bucket 10, all of 11 and 12, the death's own bucket 13 (0.25 s long).
    const buckets = [9, 10, 11, 12].map((s) => bucket(s * 1000, { onCpuNs: 0.2 * S, runqWaitNs: 0.8 * S, bioOps: 2, bioReadBytes: 8192, bioLatMaxUs: 1000 * s }))
      .concat(bucket(13_000, { blockedIoNs: 0.25 * S, blockedSyscall: 1 + 17, bioOps: 1, bioReadBytes: 4096, bioLatMaxUs: 250_000 }));
    const t = timeBreakdown({ buckets, fromMs: 10_500, toMs: 13_250, intervalMs: 1000, windowSource: 'default', pid: 7, device: 'vda' });
    expect(t.windowMs).toBe(2750);
    expect(t.total!.onCpuNs).toBe(0.5 * S);
    expect(t.total!.runqWaitNs).toBe(2 * S);
    expect(t.total!.blockedIoNs).toBe(0.25 * S);
    expect(t.scaled).toBe(false);
    expect(t.bioOps).toBe(6);
    expect(t.bioLatMaxUs).toBe(250_000);
    expect(t.blockedSyscall).toBe('pread64');
    expect(t.blockedDevice).toBe('vda');
  });

  test('a state that began before the window is cut to fit it; no block I/O, no device named', () => {
    // A 45 s D sleep that ended at the death lands whole in the death's bucket.
    const buckets = [bucket(100_000, { blockedIoNs: 45 * S, blockedSyscall: 1 + 74 })];
    const t = timeBreakdown({ buckets, fromMs: 70_400, toMs: 100_400, intervalMs: 1000, windowSource: 'default', pid: 7, device: 'vda' });
    expect(t.scaled).toBe(true);
    expect(t.total!.blockedIoNs).toBe(30 * S);
    expect(t.blockedSyscall).toBe('fsync');
    expect(t.blockedDevice).toBe('');
  });

  test('threads: kept for a multi-threaded worker, busiest first, the main thread marked', () => {
    const buckets = [bucket(1000, { threads: 3, onCpuNs: 1 * S, sleepLockNs: 1 * S, sleepNetNs: 1 * S })];
    const cls = (c: number, ns: number) => { const a = new Array(10).fill(0); a[c] = ns; return a; };
    const threads = [
      { tid: 7, name: 'gunicorn', time: cls(TimeClass.Net, 1 * S) },
      { tid: 8, name: 'ThreadPool-1', time: cls(TimeClass.OnCpu, 1 * S) },
      { tid: 9, name: 'ThreadPool-2', time: cls(TimeClass.Lock, 1 * S) },
    ];
    const t = timeBreakdown({ buckets, fromMs: 1000, toMs: 2000, intervalMs: 1000, windowSource: 'default', pid: 7, threads });
    expect(t.threads).toBe(3);
    expect(t.threadTimes.map((x) => [x.tid, x.isMain])).toEqual([[8, false], [9, false], [7, true]]);
    expect(t.threadTimes[1].time!.sleepLockNs).toBe(1 * S);
    // A single-threaded worker carries no per-thread list.
    expect(timeBreakdown({ buckets: [bucket(1000, { threads: 1 })], fromMs: 1000, toMs: 2000, intervalMs: 1000, windowSource: '', pid: 7, threads }).threadTimes).toEqual([]);
  });
});
