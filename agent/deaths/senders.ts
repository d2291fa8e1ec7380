/**
 * The sender of a signal, read from /proc as soon as its record arrives: a
 * `kill` command, a runtime's helper or a shell may be gone by the time the
 * death is judged. Its executable, command line, terminal, uid and parent
 * chain go with the signal into the verdict's facts (roles.ts decides the role).
 *
 * The record names the sender by pid and comm only, so a pid that started
 * after the signal (reused) is refused: then only the comm is known. Answers
 * are cached per process (pid + start time) for a short while, in a bounded map.
 */
import * as fs from 'fs';
import { CLK_TCK, parseStat, readCmdline, readExe } from '../procfs';
import type { SenderAncestor, SenderProcess } from './roles';

export const SENDER_LIMITS = {
  /** Senders remembered (a master signals many workers; one read serves them all). */
  maxCached: 256,
  /** A cached sender is read again after this long (ms): its command line may change. */
  cacheMs: 10_000,
  /** Parents followed above the sender. */
  maxAncestors: 6,
  /** A command line is kept up to this length. */
  maxCmdline: 256,
};

export interface SenderReader {
  /**
   * The sender (`pid`, its thread `tid`, named `comm` by the record) of a signal seen at `signalNs`
   * (CLOCK_BOOTTIME ns); undefined when it is gone, its pid was reused or it cannot be read.
   */
  read(pid: number, comm: string, signalNs: number, tid?: number): SenderProcess | undefined;
  readonly stats: { reads: number; hits: number; refused: number };
}

const NS_PER_TICK = 1e9 / CLK_TCK;

/** "pts/3", "tty1", "ttyS0", or "" for none, from /proc/PID/stat tty_nr. */
export function ttyName(ttyNr: number): string {
  if (!ttyNr) return '';
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 4) return minor < 64 ? `tty${minor}` : `ttyS${minor - 64}`;
  return `tty(${major}:${minor})`;
}

interface Basic {
  comm: string;
  ppid: number;
  tty: string;
  startTicks: number;
}

function basic(pid: number): Basic | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const st = parseStat(pid, text);
  if (!st) return null;
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { comm: st.comm, ppid: st.ppid, tty: ttyName(Number(f[4])), startTicks: st.startTicks };
}

function uidOf(pid: number): number {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

const cmdlineOf = (pid: number) => (readCmdline(pid) ?? []).join(' ').slice(0, SENDER_LIMITS.maxCmdline);

/** The sender's thread may have a comm of its own (a named thread): either matches. */
function sameComm(pid: number, tid: number | undefined, leader: string, comm: string): boolean {
  if (leader === comm) return true;
  if (tid === undefined || tid === pid) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim() === comm;
  } catch {
    return false;
  }
}

export function createSenderReader(limits: Partial<typeof SENDER_LIMITS> = {}, now: () => number = Date.now): SenderReader {
  const lim = { ...SENDER_LIMITS, ...limits };
  const cache = new Map<number, { readMs: number; startTicks: number; process: SenderProcess }>();
  const stats = { reads: 0, hits: 0, refused: 0 };

  const ancestorsOf = (ppid: number): SenderAncestor[] => {
    const out: SenderAncestor[] = [];
    for (let pid = ppid; pid > 0 && out.length < lim.maxAncestors; ) {
      const b = basic(pid);
      if (!b) break;
      out.push({ pid, comm: b.comm, cmdline: cmdlineOf(pid), tty: b.tty });
      if (pid === 1) break;
      pid = b.ppid;
    }
    return out;
  };

  return {
    read(pid, comm, signalNs, tid) {
      if (pid <= 0) return undefined;
      const b = basic(pid);
      // Started after the signal: the pid was reused, this is not the sender.
      if (!b || b.startTicks * NS_PER_TICK > signalNs + NS_PER_TICK) {
        stats.refused++;
        return undefined;
      }
      const hit = cache.get(pid);
      if (hit && hit.startTicks === b.startTicks && now() - hit.readMs < lim.cacheMs && hit.process.comm === b.comm) {
        stats.hits++;
        return hit.process;
      }
      if (!sameComm(pid, tid, b.comm, comm)) {
        stats.refused++; // it exec'd something else since, or the pid is another process's
        return undefined;
      }
      stats.reads++;
      const process: SenderProcess = {
        pid, comm: b.comm, exe: readExe(pid) ?? '', cmdline: cmdlineOf(pid), ppid: b.ppid, tty: b.tty, uid: uidOf(pid),
        ancestors: ancestorsOf(b.ppid),
      };
      if (cache.size >= lim.maxCached) cache.delete(cache.keys().next().value as number);
      cache.set(pid, { readMs: now(), startTicks: b.startTicks, process });
      return process;
    },
    stats,
  };
}
