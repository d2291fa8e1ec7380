/**
 * Where a worker's last seconds went, from its timeline: the time-class bucket
 * fields (thread time per scheduler state, bpf/runqlat.bpf.c) summed over the
 * window, the buckets at its edges counted for the part inside it. Pure.
 */
import type { Bucket, ThreadTime, TimeBreakdown, TimeShares } from '../../proto/codec';
import { syscallName, TimeClass } from '../probes/runqlat';

/** TimeShares fields: the Bucket fields of the same names. */
export const SHARE_KEYS = [
  'onCpuNs', 'runqWaitNs', 'throttledNs', 'blockedIoNs', 'faultWaitNs', 'sleepNetNs', 'sleepLockNs', 'sleepTimerNs', 'sleepOtherNs',
] as const satisfies ReadonlyArray<keyof TimeShares & keyof Bucket>;
export type ShareKey = (typeof SHARE_KEYS)[number];

/** The kernel's time class of each share (bpf/runqlat.h pm_time_class). */
export const SHARE_CLASS: Record<ShareKey, number> = {
  onCpuNs: TimeClass.OnCpu, runqWaitNs: TimeClass.Runq, throttledNs: TimeClass.Throttled, blockedIoNs: TimeClass.DState,
  faultWaitNs: TimeClass.Fault, sleepNetNs: TimeClass.Net, sleepLockNs: TimeClass.Lock, sleepTimerNs: TimeClass.Timer,
  sleepOtherNs: TimeClass.Other,
};

/** Per-thread breakdowns kept in a TimeBreakdown (busiest first). */
export const MAX_THREAD_TIMES = 16;

export const zeroShares = (): TimeShares => ({
  onCpuNs: 0, runqWaitNs: 0, throttledNs: 0, blockedIoNs: 0, faultWaitNs: 0, sleepNetNs: 0, sleepLockNs: 0, sleepTimerNs: 0, sleepOtherNs: 0,
});

export const sharesTotal = (s: TimeShares): number => SHARE_KEYS.reduce((n, k) => n + s[k], 0);

/** Time not spent idle or asleep: what a thread was busy with or stuck in. */
export const busyNs = (s: TimeShares): number => s.onCpuNs + s.runqWaitNs + s.throttledNs + s.blockedIoNs + s.faultWaitNs + s.sleepLockNs;

/** Shares from an array indexed by time class. */
export function sharesOfClasses(time: ArrayLike<number>): TimeShares {
  const s = zeroShares();
  for (const k of SHARE_KEYS) s[k] = time[SHARE_CLASS[k]] ?? 0;
  return s;
}

export interface BreakdownInput {
  /** The worker's buckets around the window, oldest first (the last may end early: the death). */
  buckets: Bucket[];
  fromMs: number;
  toMs: number;
  intervalMs: number;
  windowSource: string;
  pid: number;
  /** Per-thread time over the window (multi-threaded workers). */
  threads?: Array<{ tid: number; name: string; time: ArrayLike<number> }>;
  /** The device its block requests went to (named only when it issued some in the window). */
  device?: string;
}

/** The share of bucket [t, t + interval) (cut at toMs) that lies in [fromMs, toMs]. */
function weight(b: Bucket, fromMs: number, toMs: number, intervalMs: number): number {
  const end = Math.min(b.tMs + intervalMs, toMs);
  const len = end - b.tMs;
  // The death's own bucket may start at the very end: its counters run up to the death.
  if (len <= 0) return b.tMs >= fromMs && b.tMs <= toMs ? 1 : 0;
  return Math.max(0, end - Math.max(b.tMs, fromMs)) / len;
}

export function timeBreakdown(i: BreakdownInput): TimeBreakdown {
  const total = zeroShares();
  let gcNs = 0, majorFaults = 0, bioOps = 0, bioLatMaxUs = 0, bioRead = 0, bioWrite = 0, threads = 0;
  const syscalls = new Map<number, number>();
  for (const b of i.buckets) {
    const w = weight(b, i.fromMs, i.toMs, i.intervalMs);
    if (w <= 0) continue;
    for (const k of SHARE_KEYS) total[k] += (b[k] ?? 0) * w;
    gcNs += b.gcPauseNs * w;
    majorFaults += b.majorFaults * w;
    bioOps += b.bioOps * w;
    bioRead += b.bioReadBytes * w;
    bioWrite += b.bioWriteBytes * w;
    bioLatMaxUs = Math.max(bioLatMaxUs, b.bioLatMaxUs);
    threads = Math.max(threads, b.threads);
    if (b.blockedSyscall && b.blockedIoNs) syscalls.set(b.blockedSyscall, (syscalls.get(b.blockedSyscall) ?? 0) + b.blockedIoNs * w);
  }
  // A state that began before the window is counted whole in the bucket where it ended:
  // never report more thread time than the window holds.
  const windowMs = Math.max(0, i.toMs - i.fromMs);
  const cap = windowMs * 1e6 * Math.max(1, threads);
  const sum = sharesTotal(total);
  const scaled = sum > cap * 1.02;
  for (const k of SHARE_KEYS) total[k] = Math.round(scaled ? (total[k] * cap) / sum : total[k]);
  const topSyscall = [...syscalls].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;

  // Per-thread time comes from snapshots every few seconds: cut each thread to the window too.
  const fit = (s: TimeShares): TimeShares => {
    const n = sharesTotal(s), max = windowMs * 1e6;
    if (n <= max * 1.02) return s;
    for (const k of SHARE_KEYS) s[k] = Math.round((s[k] * max) / n);
    return s;
  };
  const threadTimes: ThreadTime[] = threads > 1 && i.threads
    ? i.threads.map((t) => ({ tid: t.tid, name: t.name, isMain: t.tid === i.pid, time: fit(sharesOfClasses(t.time)) }))
      .sort((a, b) => busyNs(b.time!) - busyNs(a.time!) || a.tid - b.tid).slice(0, MAX_THREAD_TIMES)
    : [];
  return {
    windowMs, endMs: i.toMs, windowSource: i.windowSource, total, threads, gcNs: Math.round(gcNs),
    majorFaults: Math.round(majorFaults), blockedSyscall: syscallName(topSyscall),
    blockedDevice: bioOps >= 0.5 ? i.device ?? '' : '',
    bioOps: Math.round(bioOps), bioLatMaxUs, bioReadBytes: Math.round(bioRead), bioWriteBytes: Math.round(bioWrite),
    threadTimes, scaled,
  };
}
