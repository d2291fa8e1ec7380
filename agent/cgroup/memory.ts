/**
 * The memory cgroup of a process, read from files (not from BPF): v1 memory
 * controller or cgroup v2, with limit, usage and event counters. These change
 * slowly or are counters, so reading the files when asked (e.g. once a second,
 * and at a death) is enough; the moment-of-death values come from the
 * lifecycle probe's OOM record, which names its cgroups by id.
 *
 * Mounts are found in /proc/self/mountinfo: this machine has v1 controllers
 * under /sys/fs/cgroup/<controller> and cgroup2 at /sys/fs/cgroup/unified.
 */
import * as fs from 'fs';
import * as path from 'path';

/** Limits at or above this are "no limit" (v1 reports PAGE_COUNTER_MAX pages in bytes). */
const UNLIMITED_THRESHOLD = 2 ** 62;

export interface MemoryCgroupEvents {
  /** v2 memory.events `low`; v1: 0 (not kept). */
  low: number;
  /** v2 `high`: times usage went over memory.high; v1: 0. */
  high: number;
  /** v2 `max`: times usage hit memory.max; v1: memory.failcnt (charges that failed at the limit). */
  max: number;
  /** v2 `oom`: times the cgroup ran out of memory; v1: 0 (not exposed). */
  oom: number;
  /** OOM kills in the cgroup: v2 `oom_kill`, v1 memory.oom_control `oom_kill`. */
  oomKill: number;
  /** v2 `oom_group_kill`; v1: 0. */
  oomGroupKill: number;
}

export interface MemoryCgroup {
  version: 1 | 2;
  /** Path inside the hierarchy, as in /proc/PID/cgroup (e.g. `/premortem-test-12`). */
  path: string;
  /** The cgroup's directory. */
  dir: string;
  /** Inode number of `dir`: the kernfs id the OOM record's cgroupId names. */
  id: number;
  /** null: no limit. */
  limitBytes: number | null;
  usageBytes: number;
  /** v1 memory.max_usage_in_bytes, v2 memory.peak (absent on older kernels: null). */
  peakBytes: number | null;
  /** v2 memory.high (null: none); v1: null. */
  highBytes: number | null;
  events: MemoryCgroupEvents;
  /** v1 memory.oom_control `under_oom`: the cgroup is in OOM right now; v2: false. */
  underOom: boolean;
}

export interface CgroupMounts {
  v1Memory: string | null;
  /** The v1 hierarchy holding the `cpu` controller (often shared with cpuacct). */
  v1Cpu: string | null;
  v2: string | null;
}

let mountsCache: CgroupMounts | null = null;

/** Finds the v1 memory and cpu controllers' and cgroup2's mount points. */
export function cgroupMounts(mountinfo = '/proc/self/mountinfo'): CgroupMounts {
  if (mountsCache && mountinfo === '/proc/self/mountinfo') return mountsCache;
  const out: CgroupMounts = { v1Memory: null, v1Cpu: null, v2: null };
  for (const line of fs.readFileSync(mountinfo, 'utf8').split('\n')) {
    // id parent major:minor root mountpoint opts [optional...] - fstype source superopts
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superopts = ''] = line.slice(sep + 3).split(' ');
    const mountpoint = left[4];
    if (fstype === 'cgroup2' && !out.v2) out.v2 = mountpoint;
    const opts = superopts.split(',');
    if (fstype === 'cgroup' && opts.includes('memory') && !out.v1Memory) out.v1Memory = mountpoint;
    if (fstype === 'cgroup' && opts.includes('cpu') && !out.v1Cpu) out.v1Cpu = mountpoint;
  }
  if (mountinfo === '/proc/self/mountinfo') mountsCache = out;
  return out;
}

export function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

function readBytes(file: string): number | null {
  const s = readText(file)?.trim();
  if (s === undefined || s === null || s === '' || s === 'max') return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

/** `key value` lines (memory.events, memory.oom_control, memory.stat). */
export function parseKeyValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined) out[k] = Number(v);
  }
  return out;
}

function limitOrNull(n: number | null): number | null {
  return n === null || n >= UNLIMITED_THRESHOLD ? null : n;
}

/** The memory cgroup of `pid`, or null when it has none (no memory controller). */
export function memoryCgroupOf(pid: number): MemoryCgroup | null {
  const text = readText(`/proc/${pid}/cgroup`);
  if (text === null) return null;
  const mounts = cgroupMounts();
  let v1Path: string | null = null;
  let v2Path: string | null = null;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    if (m[1] === '0' && m[2] === '') v2Path = m[3];
    else if (m[2].split(',').includes('memory')) v1Path = m[3];
  }
  if (v1Path !== null && mounts.v1Memory) return bindingMemoryCgroup(1, mounts.v1Memory, v1Path);
  if (v2Path !== null && mounts.v2) return bindingMemoryCgroup(2, mounts.v2, v2Path);
  return null;
}

/**
 * The memory cgroup whose limit binds a process in cgroup `leafPath`, whatever its depth: a
 * container's own cgroup may have no limit (or no memory files: the controller is enabled only
 * above it) while its pod's has one, or both have one. Of the process's cgroup and its ancestors
 * (the hierarchy's root excluded: it has no limit), the one with a limit and the least headroom
 * (limit - usage) is where the OOM killer acts first; with no limit anywhere, the nearest with
 * memory files. Null when none has them.
 */
export function bindingMemoryCgroup(version: 1 | 2, mount: string, leafPath: string): MemoryCgroup | null {
  const parts = leafPath.split('/').filter(Boolean);
  let nearest: MemoryCgroup | null = null;
  let binding: MemoryCgroup | null = null;
  for (let n = parts.length; n >= 1 && parts.length - n < MAX_CGROUP_DEPTH; n--) {
    const cg = readMemoryCgroup(version, mount, '/' + parts.slice(0, n).join('/'));
    if (!cg) continue;
    nearest ??= cg;
    if (cg.limitBytes !== null && (!binding || cg.limitBytes - cg.usageBytes < binding.limitBytes! - binding.usageBytes)) binding = cg;
  }
  return binding ?? nearest ?? (parts.length ? null : readMemoryCgroup(version, mount, '/'));
}

/**
 * Reads a known cgroup again (fresh usage and event counters); the last reading when the
 * directory is gone. Used for processes that have exited: their /proc no longer names it.
 */
export function rereadMemoryCgroup(known: MemoryCgroup): MemoryCgroup {
  const mount = known.dir.slice(0, known.dir.length - known.path.length) || '/';
  try {
    return readMemoryCgroup(known.version, mount, known.path) ?? known;
  } catch {
    return known;
  }
}

/** Reads one memory cgroup directory (v1 or v2 file names). */
export function readMemoryCgroup(version: 1 | 2, mount: string, cgPath: string): MemoryCgroup | null {
  const dir = path.join(mount, cgPath);
  let id: number;
  try {
    id = fs.statSync(dir).ino;
  } catch {
    return null;
  }
  if (version === 1) {
    const usage = readBytes(path.join(dir, 'memory.usage_in_bytes'));
    if (usage === null) return null;
    const oomControl = parseKeyValues(readText(path.join(dir, 'memory.oom_control')) ?? '');
    return {
      version, path: cgPath, dir, id,
      limitBytes: limitOrNull(readBytes(path.join(dir, 'memory.limit_in_bytes'))),
      usageBytes: usage,
      peakBytes: readBytes(path.join(dir, 'memory.max_usage_in_bytes')),
      highBytes: null,
      events: {
        low: 0, high: 0,
        max: readBytes(path.join(dir, 'memory.failcnt')) ?? 0,
        oom: 0,
        oomKill: oomControl.oom_kill ?? 0,
        oomGroupKill: 0,
      },
      underOom: (oomControl.under_oom ?? 0) !== 0,
    };
  }
  // v2: the root cgroup has no memory.current/max; a cgroup without the
  // controller enabled by its parent has none either.
  const usage = readBytes(path.join(dir, 'memory.current'));
  if (usage === null) return null;
  const ev = parseKeyValues(readText(path.join(dir, 'memory.events')) ?? '');
  return {
    version, path: cgPath, dir, id,
    limitBytes: limitOrNull(readBytes(path.join(dir, 'memory.max'))),
    usageBytes: usage,
    peakBytes: readBytes(path.join(dir, 'memory.peak')),
    highBytes: limitOrNull(readBytes(path.join(dir, 'memory.high'))),
    events: {
      low: ev.low ?? 0, high: ev.high ?? 0, max: ev.max ?? 0,
      oom: ev.oom ?? 0, oomKill: ev.oom_kill ?? 0, oomGroupKill: ev.oom_group_kill ?? 0,
    },
    underOom: false,
  };
}

/** Directories visited at most when a cgroup is looked up by id (hosts can have thousands). */
const MAX_CGROUP_WALK = 20_000;
const MAX_CGROUP_DEPTH = 32;

/**
 * The memory cgroup whose kernfs id (directory inode) is `id`, as the kernel's OOM record names
 * it. `near` (a cgroup the process lived in) and its ancestors are tried first: the cgroup at its
 * limit is the victim's own or one of its ancestors. Then a bounded walk of the hierarchy.
 */
export function memoryCgroupById(id: number, near?: MemoryCgroup | null): MemoryCgroup | null {
  if (!id) return null;
  const mounts = cgroupMounts();
  const candidates: Array<{ version: 1 | 2; mount: string }> = [];
  if (near) candidates.push({ version: near.version, mount: near.dir.slice(0, near.dir.length - near.path.length) || '/' });
  if (mounts.v1Memory) candidates.push({ version: 1, mount: mounts.v1Memory });
  if (mounts.v2) candidates.push({ version: 2, mount: mounts.v2 });
  if (near) {
    const parts = near.path.split('/').filter(Boolean);
    for (let n = parts.length; n >= 0; n--) {
      const p = '/' + parts.slice(0, n).join('/');
      const mount = candidates[0].mount;
      if (inodeOf(path.join(mount, p)) === id) return readMemoryCgroup(near.version, mount, p) ?? rootCgroup(near.version, mount, id);
    }
  }
  for (const { version, mount } of candidates) {
    const found = walkForInode(mount, id);
    if (found !== null) return readMemoryCgroup(version, mount, found) ?? rootCgroup(version, mount, id);
  }
  return null;
}

function inodeOf(dir: string): number {
  try {
    return fs.statSync(dir).ino;
  } catch {
    return -1;
  }
}

/** The root cgroup has no usage files of its own (v2): named, with no limit. */
function rootCgroup(version: 1 | 2, mount: string, id: number): MemoryCgroup {
  return {
    version, path: '/', dir: mount, id, limitBytes: null, usageBytes: 0, peakBytes: null, highBytes: null,
    events: { low: 0, high: 0, max: 0, oom: 0, oomKill: 0, oomGroupKill: 0 }, underOom: false,
  };
}

/** Breadth-first search for the directory with inode `id`; its path inside the hierarchy, or null. */
function walkForInode(mount: string, id: number): string | null {
  let level = ['/'];
  let visited = 0;
  for (let depth = 0; depth < MAX_CGROUP_DEPTH && level.length; depth++) {
    const next: string[] = [];
    for (const p of level) {
      if (++visited > MAX_CGROUP_WALK) return null;
      const dir = path.join(mount, p);
      if (inodeOf(dir) === id) return p;
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) if (e.isDirectory()) next.push(path.posix.join(p, e.name));
    }
    level = next;
  }
  return null;
}
