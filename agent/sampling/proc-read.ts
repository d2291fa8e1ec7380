/**
 * /proc reads on the tick's path, for every tracked process every interval:
 * open + one read into a shared buffer + close, without fs.readFileSync's
 * fstat, growing buffer and string decoding (half its time on this machine's
 * small /proc files: bench/profile.ts). Files larger than the buffer fall
 * back to readFileSync. Null when the process (or the file) is gone.
 */
import * as fs from 'fs';
import { cgroupMounts, MemoryCgroup, readMemoryCgroup } from '../cgroup/memory';
import { parseStat, ProcStat } from '../procfs';

/** One buffer for all reads (the tick is synchronous): /proc/PID/stat and /cgroup are well below it. */
const READ_BUFFER_BYTES = 16 * 1024;
const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

export function readProcText(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const n = fs.readSync(fd, buffer, 0, READ_BUFFER_BYTES, 0);
    if (n < READ_BUFFER_BYTES) return buffer.toString('latin1', 0, n);
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
  try {
    return fs.readFileSync(file, 'latin1'); // larger than the buffer
  } catch {
    return null;
  }
}

export function readStatFast(pid: number): ProcStat | null {
  const text = readProcText(`/proc/${pid}/stat`);
  return text === null ? null : parseStat(pid, text);
}

/** Where a process's memory cgroup lives: v1 memory controller when mounted, else cgroup v2. */
export interface MemoryCgroupPlace {
  version: 1 | 2;
  mount: string;
  path: string;
}

/** Parses /proc/PID/cgroup the way cgroup/memory.ts memoryCgroupOf does (v1 memory first). */
export function memoryCgroupPlace(pid: number): MemoryCgroupPlace | null {
  const text = readProcText(`/proc/${pid}/cgroup`);
  if (text === null) return null;
  const mounts = cgroupMounts();
  let v1: string | null = null, v2: string | null = null;
  for (const line of text.split('\n')) {
    const a = line.indexOf(':'), b = line.indexOf(':', a + 1);
    if (a < 0 || b < 0) continue;
    const id = line.slice(0, a), controllers = line.slice(a + 1, b), p = line.slice(b + 1);
    if (id === '0' && controllers === '') v2 = p;
    else if (controllers.split(',').includes('memory')) v1 = p;
  }
  if (v1 !== null && mounts.v1Memory) return { version: 1, mount: mounts.v1Memory, path: v1 };
  if (v2 !== null && mounts.v2) return { version: 2, mount: mounts.v2, path: v2 };
  return null;
}

/**
 * Memory cgroups read once per tick however many processes share them (a pool's workers all
 * do): membership is read per process (it can change), the cgroup's files once per cgroup.
 */
export function createCgroupTickCache() {
  const read = new Map<string, MemoryCgroup | null>();
  return {
    /** Forget this tick's readings. */
    clear: () => read.clear(),
    of(pid: number): MemoryCgroup | null {
      const place = memoryCgroupPlace(pid);
      if (!place) return null;
      const key = `${place.version}:${place.path}`;
      let cg = read.get(key);
      if (cg === undefined) {
        cg = readMemoryCgroup(place.version, place.mount, place.path);
        // v1 path without a readable cgroup: memoryCgroupOf gives up too; v2 has no other fallback.
        read.set(key, cg);
      }
      return cg;
    },
  };
}
