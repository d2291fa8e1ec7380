/**
 * Pressure stall information (PSI) of a cgroup v2: cpu.pressure,
 * memory.pressure and io.pressure in the cgroup's own directory say how much
 * of the time its tasks waited for a CPU, for memory (reclaim, refaults) and
 * for I/O — the container's own share of the host's /proc/pressure. These
 * files exist in every non-root cgroup v2 when the kernel has PSI, whether or
 * not controllers are enabled (here: /sys/fs/cgroup/unified, which has none).
 * The root cgroup's are the host's: the host bucket already carries them.
 */
import * as path from 'path';
import type { CgroupPressure } from '../../proto/codec';
import { cgroupMounts, CgroupMounts, readText } from './memory';

export interface PsiLine { avg10: number; total: number }
export interface PsiFile { some?: PsiLine; full?: PsiLine }

/** One *.pressure file: "some avg10=1.00 avg60=0.50 avg300=0.10 total=12345" (+ "full ..."). */
export function parsePsi(text: string): PsiFile {
  const out: PsiFile = {};
  for (const line of text.split('\n')) {
    const m = /^(some|full) avg10=([\d.]+) .*\btotal=(\d+)/.exec(line);
    if (m) out[m[1] as 'some' | 'full'] = { avg10: Number(m[2]), total: Number(m[3]) };
  }
  return out;
}

/** The PSI of cgroup v2 `cgPath` under `mount`, or null for the root or when the files are absent. */
export function readCgroupPressure(mount: string, cgPath: string, nowMs = Date.now()): CgroupPressure | null {
  if (!cgPath || cgPath === '/') return null;
  const dir = path.join(mount, cgPath);
  const read = (name: string) => {
    const t = readText(path.join(dir, `${name}.pressure`));
    return t === null ? null : parsePsi(t);
  };
  const cpu = read('cpu'), mem = read('memory'), io = read('io');
  if (!cpu && !mem && !io) return null;
  return {
    path: cgPath, tMs: nowMs,
    cpuSomeAvg10: cpu?.some?.avg10 ?? 0, memorySomeAvg10: mem?.some?.avg10 ?? 0, memoryFullAvg10: mem?.full?.avg10 ?? 0,
    ioSomeAvg10: io?.some?.avg10 ?? 0, ioFullAvg10: io?.full?.avg10 ?? 0,
    cpuSomeTotalUs: cpu?.some?.total ?? 0, memorySomeTotalUs: mem?.some?.total ?? 0, memoryFullTotalUs: mem?.full?.total ?? 0,
    ioSomeTotalUs: io?.some?.total ?? 0, ioFullTotalUs: io?.full?.total ?? 0,
  };
}

/** The cgroup v2 path of a process (the `0::` line of /proc/PID/cgroup), or null. */
export function cgroup2PathOf(pid: number): string | null {
  const text = readText(`/proc/${pid}/cgroup`);
  const m = text ? /^0::(.*)$/m.exec(text) : null;
  return m ? m[1] : null;
}

/** The PSI of the cgroup v2 a process lives in (null: none mounted, the root, or no PSI files). */
export function pressureOf(pid: number, mounts: CgroupMounts = cgroupMounts()): CgroupPressure | null {
  const p = cgroup2PathOf(pid);
  return p !== null && mounts.v2 ? readCgroupPressure(mounts.v2, p) : null;
}
