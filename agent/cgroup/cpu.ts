/**
 * CPU throttling of a cgroup (CFS bandwidth control), read from its cpu.stat:
 * cgroup v1 (`cpu` controller: nr_periods, nr_throttled, throttled_time in ns)
 * and cgroup v2 (`cpu.stat`: nr_periods, nr_throttled, throttled_usec — present
 * only when the cpu controller is enabled for the cgroup). The quota comes from
 * cpu.cfs_quota_us/cpu.cfs_period_us (v1) or cpu.max (v2).
 */
import * as path from 'path';
import { cgroupMounts, parseKeyValues, readText } from './memory';

/** Where one cgroup's CPU controller files live. */
export interface CpuCgroup {
  version: 1 | 2;
  /** Path inside the hierarchy, as in /proc/PID/cgroup. */
  path: string;
  dir: string;
}

/** Cumulative counters of one cgroup: deltas between two readings are one interval's throttling. */
export interface CpuThrottling {
  nrPeriods: number;
  nrThrottled: number;
  throttledUs: number;
  /** CFS quota per period (µs); null: no quota. */
  quotaUs: number | null;
  periodUs: number;
}

/** The cgroup whose CPU bandwidth applies to `pid` (null: no cpu controller reachable). */
export function cpuCgroupOf(pid: number, mounts = cgroupMounts()): CpuCgroup | null {
  const text = readText(`/proc/${pid}/cgroup`);
  if (text === null) return null;
  let v1: string | null = null;
  let v2: string | null = null;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') v2 = m[3];
    else if (m[2].split(',').includes('cpu')) v1 = m[3];
  }
  if (v1 !== null && mounts.v1Cpu) return bindingCpuCgroup(1, mounts.v1Cpu, v1);
  if (v2 !== null && mounts.v2) return bindingCpuCgroup(2, mounts.v2, v2);
  return null;
}

/** Ancestors looked at above a process's own cgroup. */
const MAX_CPU_DEPTH = 32;

/**
 * The cgroup whose CPU quota applies to a process in `leafPath`, whatever its depth: its own
 * when it has a quota, else the nearest ancestor with one (a pod's quota over containers that
 * have none), else its own (throttling counters without a quota stay at 0).
 */
export function bindingCpuCgroup(version: 1 | 2, mount: string, leafPath: string): CpuCgroup {
  const parts = leafPath.split('/').filter(Boolean);
  for (let n = parts.length; n >= 1 && parts.length - n < MAX_CPU_DEPTH; n--) {
    const p = '/' + parts.slice(0, n).join('/');
    const cg: CpuCgroup = { version, path: p, dir: path.join(mount, p) };
    if (readCpuThrottling(cg)?.quotaUs) return cg;
  }
  return { version, path: leafPath, dir: path.join(mount, leafPath) };
}

/** Reads the cgroup's throttling counters; null when it is gone or has no CPU bandwidth accounting. */
export function readCpuThrottling(cg: CpuCgroup): CpuThrottling | null {
  const stat = readText(path.join(cg.dir, 'cpu.stat'));
  if (stat === null) return null;
  const kv = parseKeyValues(stat);
  if (kv.nr_throttled === undefined) return null; // v2 without the cpu controller: usage only
  if (cg.version === 1) {
    const quota = Number(readText(path.join(cg.dir, 'cpu.cfs_quota_us'))?.trim() ?? -1);
    const period = Number(readText(path.join(cg.dir, 'cpu.cfs_period_us'))?.trim() ?? 100_000);
    return {
      nrPeriods: kv.nr_periods ?? 0, nrThrottled: kv.nr_throttled, throttledUs: Math.round((kv.throttled_time ?? 0) / 1000),
      quotaUs: quota > 0 ? quota : null, periodUs: period,
    };
  }
  // cpu.max: "<quota|max> <period>"
  const [quota, period] = (readText(path.join(cg.dir, 'cpu.max')) ?? 'max 100000').trim().split(/\s+/);
  return {
    nrPeriods: kv.nr_periods ?? 0, nrThrottled: kv.nr_throttled, throttledUs: kv.throttled_usec ?? 0,
    quotaUs: quota === 'max' ? null : Number(quota), periodUs: Number(period) || 100_000,
  };
}

/** Throttling since the previous reading of the same cgroups (counters that went back are a new cgroup). */
export function throttlingDelta(now: CpuThrottling, before: CpuThrottling | undefined): { nrThrottled: number; throttledUs: number } {
  if (!before || now.nrThrottled < before.nrThrottled || now.throttledUs < before.throttledUs) return { nrThrottled: 0, throttledUs: 0 };
  return { nrThrottled: now.nrThrottled - before.nrThrottled, throttledUs: now.throttledUs - before.throttledUs };
}
