/**
 * Small, defensive readers of /proc. A process can die between two reads:
 * every reader returns null instead of throwing when it is gone.
 */
import * as fs from 'fs';

/** USER_HZ: /proc/PID/stat times are in these ticks (100 on every Linux ABI we run on). */
export const CLK_TCK = 100;
export const PAGE_SIZE = 4096;

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  minflt: number;
  majflt: number;
  utimeTicks: number;
  stimeTicks: number;
  threads: number;
  /** Field 22: start time in clock ticks since boot — with the pid, the process identity. */
  startTicks: number;
  rssPages: number;
}

function readOrNull(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

export function parseStat(pid: number, text: string): ProcStat | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const f = text.slice(close + 2).trim().split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: f[0],
    ppid: Number(f[1]),
    minflt: Number(f[7]),
    majflt: Number(f[9]),
    utimeTicks: Number(f[11]),
    stimeTicks: Number(f[12]),
    threads: Number(f[17]),
    startTicks: Number(f[19]),
    rssPages: Number(f[21]),
  };
}

export function readStat(pid: number): ProcStat | null {
  const text = readOrNull(`/proc/${pid}/stat`);
  return text ? parseStat(pid, text) : null;
}

export function readCmdline(pid: number): string[] | null {
  const text = readOrNull(`/proc/${pid}/cmdline`);
  if (text === null) return null;
  return text.split('\0').filter((s, i, a) => s.length > 0 || i < a.length - 1);
}

export function readExe(pid: number): string | null {
  try {
    return fs.readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return null;
  }
}

export function listPids(): number[] {
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
}

/** Socket inodes a process holds (from /proc/PID/fd links "socket:[N]"). */
export function socketInodes(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith('socket:[')) out.add(Number(link.slice(8, -1)));
    } catch {
      /* closed meanwhile */
    }
  }
  return out;
}

/** Namespaces the agent tells processes apart by. */
export type NsKind = 'net' | 'pid' | 'mnt' | 'cgroup';

/**
 * Inode of a process's namespace (`/proc/PID/ns/KIND`, the number `ls -l` shows as
 * `net:[4026531840]`), or null when the process is gone. Two processes are in the same
 * namespace exactly when the inodes are equal; the kernel's sock_net(sk)->ns.inum is this number.
 */
export function nsInode(pid: number | 'self', kind: NsKind): number | null {
  try {
    return fs.statSync(`/proc/${pid}/ns/${kind}`).ino;
  } catch {
    return null;
  }
}

/** The `NSpid:` line of /proc/PID/status: the pid in each PID namespace it belongs to, outermost first. */
export function parseNsPids(status: string): number[] {
  const m = /^NSpid:\s*([\d\s]+)$/m.exec(status);
  return m ? m[1].trim().split(/\s+/).map(Number) : [];
}

/**
 * The pid of a process inside its own (innermost) PID namespace — the one its own logs print
 * ("Booting worker with pid: 7") — or null when it is gone. Equal to `pid` on the host's namespace.
 */
export function readNsPid(pid: number): number | null {
  const text = readOrNull(`/proc/${pid}/status`);
  if (text === null) return null;
  const pids = parseNsPids(text);
  return pids.length ? pids[pids.length - 1] : pid;
}

/**
 * Listening TCP sockets (inode → port, IPv4 and IPv6) of the agent's network namespace, or with
 * `pid`, of that process's: /proc/PID/net/tcp shows the namespace of PID, not the reader's.
 */
export function listeningInodes(pid?: number): Map<number, number> {
  const out = new Map<number, number>();
  const dir = pid === undefined ? '/proc/net' : `/proc/${pid}/net`;
  for (const file of [`${dir}/tcp`, `${dir}/tcp6`]) {
    const text = readOrNull(file);
    if (!text) continue;
    for (const line of text.split('\n').slice(1)) {
      if (!line.includes(' 0A ')) continue; // not LISTEN: skip the split of the many others
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A = LISTEN
      const port = parseInt(f[1].split(':')[1], 16);
      out.set(Number(f[9]), port);
    }
  }
  return out;
}

/** The process's cgroup paths: { '': v2 path, memory: v1 path, ... }. */
export function readCgroups(pid: number): Record<string, string> {
  const text = readOrNull(`/proc/${pid}/cgroup`);
  const out: Record<string, string> = {};
  if (!text) return out;
  for (const line of text.trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined) continue;
    if (controllers === '') out[''] = path;
    for (const c of controllers.split(',')) if (c) out[c] = path;
  }
  return out;
}

/** systemd unit from a cgroup path (…/name.service), or ''. */
export function unitOf(cgroupPath: string): string {
  const m = cgroupPath.match(/([^/]+\.(service|scope))(\/|$)/);
  return m ? m[1] : '';
}

export interface HostSample {
  psiMemSomeAvg10: number;
  psiMemFullAvg10: number;
  psiCpuSomeAvg10: number;
  psiIoSomeAvg10: number;
  psiIoFullAvg10: number;
  load1: number;
  memTotalBytes: number;
  memAvailableBytes: number;
}

function psi(resource: string): { some: number; full: number } {
  const text = readOrNull(`/proc/pressure/${resource}`) ?? '';
  const some = text.match(/^some avg10=([\d.]+)/m);
  const full = text.match(/^full avg10=([\d.]+)/m);
  return { some: some ? Number(some[1]) : 0, full: full ? Number(full[1]) : 0 };
}

export function readHost(): HostSample {
  const mem = readOrNull('/proc/meminfo') ?? '';
  const kb = (name: string) => Number(mem.match(new RegExp(`^${name}:\\s+(\\d+)`, 'm'))?.[1] ?? 0) * 1024;
  const load = (readOrNull('/proc/loadavg') ?? '0').split(' ');
  const m = psi('memory');
  const c = psi('cpu');
  const i = psi('io');
  return {
    psiMemSomeAvg10: m.some,
    psiMemFullAvg10: m.full,
    psiCpuSomeAvg10: c.some,
    psiIoSomeAvg10: i.some,
    psiIoFullAvg10: i.full,
    load1: Number(load[0]),
    memTotalBytes: kb('MemTotal'),
    memAvailableBytes: kb('MemAvailable'),
  };
}

/** Unix ms at boot, for turning start ticks into wall-clock times. */
export function bootUnixMs(): number {
  const stat = readOrNull('/proc/stat') ?? '';
  const btime = Number(stat.match(/^btime (\d+)/m)?.[1] ?? 0);
  return btime * 1000;
}
