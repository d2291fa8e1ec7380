/**
 * memory: per-process page-fault counters and last-known RSS, kept in the
 * memory probe's maps `faults` and `rss_last` keyed by tgid (bpf/memory.h).
 * Both values name the process's start time: a value whose startNs differs
 * from the process you mean belongs to an earlier holder of the pid.
 */
import { registerLayout, u64 } from '../../records';

export const FAULT_STATS = registerLayout('fault_stats', {
  size: 40,
  offsets: { start_ns: 0, faults: 8, major: 16, kernel_mode: 24, last_ns: 32 },
});

export const RSS_LAST = registerLayout('rss_last', {
  size: 64,
  offsets: { start_ns: 0, ts_ns: 8, file: 16, anon: 24, swap: 32, shmem: 40, peak: 48, writes: 56 },
});

/**
 * Page faults of one process since its first fault seen while tracked.
 * `major` lags by at most one major fault per thread (counted at the
 * thread's next fault, see bpf/memory.bpf.c); minor = faults - major.
 */
export interface FaultStats {
  startNs: number;
  faults: number;
  major: number;
  minor: number;
  /** Of `faults`, taken in kernel mode on user addresses (e.g. read() into a new buffer). */
  kernelMode: number;
  lastNs: number;
}

export function decodeFaultStats(buf: ArrayBuffer, offset = 0): FaultStats {
  const dv = new DataView(buf, offset, FAULT_STATS.size);
  const o = FAULT_STATS.offsets;
  const faults = u64(dv, o.faults);
  const major = u64(dv, o.major);
  return {
    startNs: u64(dv, o.start_ns),
    faults,
    major,
    minor: Math.max(0, faults - major),
    kernelMode: u64(dv, o.kernel_mode),
    lastNs: u64(dv, o.last_ns),
  };
}

/** RSS of one process as of tsNs (CLOCK_BOOTTIME), bytes. */
export interface RssLast {
  startNs: number;
  tsNs: number;
  fileBytes: number;
  anonBytes: number;
  swapBytes: number;
  shmemBytes: number;
  /** file + anon + shmem. */
  rssBytes: number;
  /** Highest rssBytes written. */
  peakBytes: number;
  writes: number;
}

export function decodeRssLast(buf: ArrayBuffer, offset = 0): RssLast {
  const dv = new DataView(buf, offset, RSS_LAST.size);
  const o = RSS_LAST.offsets;
  const file = u64(dv, o.file), anon = u64(dv, o.anon), shmem = u64(dv, o.shmem);
  return {
    startNs: u64(dv, o.start_ns),
    tsNs: u64(dv, o.ts_ns),
    fileBytes: file,
    anonBytes: anon,
    swapBytes: u64(dv, o.swap),
    shmemBytes: shmem,
    rssBytes: file + anon + shmem,
    peakBytes: u64(dv, o.peak),
    writes: u64(dv, o.writes),
  };
}
