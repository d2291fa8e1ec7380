/**
 * Where the time of tracked processes goes (bpf/runqlat.h, pm_time_class):
 * cumulative nanoseconds per class, per process (in `cpu_stats`) and per
 * thread (map `threads`, key tid), added at each scheduler transition.
 */
import type { Tracer } from '../../native';
import { registerLayout, u64 } from '../../records';

/** pm_time_class: numbers fixed forever (they index the kernel's counters). */
export const TimeClass = {
  None: 0, OnCpu: 1, Runq: 2, Throttled: 3, DState: 4, Fault: 5, Net: 6, Lock: 7, Timer: 8, Other: 9,
} as const;
export const TIME_CLASSES = 10;

/** Cumulative ns per class, indexed by TimeClass ([0] is always 0). */
export type TimeAcct = number[];

export const THREAD_TIME = registerLayout('thread_time', {
  size: 104,
  offsets: { since_ns: 0, tgid: 8, state: 12, preempted: 14, syscall: 16, time: 24 },
});

export function decodeTimeAcct(dv: DataView, offset: number): TimeAcct {
  const out = new Array<number>(TIME_CLASSES);
  for (let i = 0; i < TIME_CLASSES; i++) out[i] = u64(dv, offset + i * 8);
  return out;
}

/** One thread's entry: its process, its state now and its cumulative time. */
export interface ThreadTime {
  tid: number;
  tgid: number;
  /** The class it is in since sinceNs (CLOCK_MONOTONIC ns), not yet in `time`. */
  state: number;
  sinceNs: number;
  time: TimeAcct;
}

export function decodeThreadTime(tid: number, buf: ArrayBuffer, offset = 0): ThreadTime {
  const dv = new DataView(buf, offset, THREAD_TIME.size);
  const o = THREAD_TIME.offsets;
  return {
    tid, tgid: dv.getUint32(o.tgid, true), state: dv.getUint16(o.state, true), sinceNs: u64(dv, o.since_ns),
    time: decodeTimeAcct(dv, o.time),
  };
}

/** The entries of these threads that belong to `tgid` (a thread gone from the map is left out). */
export function readThreadTimes(tracer: Tracer, tgid: number, tids: Iterable<number>): ThreadTime[] {
  const out: ThreadTime[] = [];
  for (const tid of tids) {
    const v = tracer.mapLookup('runqlat', 'threads', tid);
    if (!v) continue;
    const t = decodeThreadTime(tid, v);
    if (t.tgid === tgid) out.push(t);
  }
  return out;
}

/** Forgets threads of a retired process (LRU would age them out; this frees the room now). */
export function forgetThreads(tracer: Tracer, tids: Iterable<number>): void {
  for (const tid of tids) tracer.mapDelete('runqlat', 'threads', tid);
}

/** x86_64 system call names, for the ones a worker blocks in (others print as their number). */
const SYSCALL_NAMES: Record<number, string> = {
  0: 'read', 1: 'write', 2: 'open', 3: 'close', 4: 'stat', 5: 'fstat', 6: 'lstat', 7: 'poll', 8: 'lseek', 9: 'mmap',
  10: 'mprotect', 11: 'munmap', 12: 'brk', 16: 'ioctl', 17: 'pread64', 18: 'pwrite64', 19: 'readv', 20: 'writev',
  21: 'access', 23: 'select', 26: 'msync', 28: 'madvise', 35: 'nanosleep', 40: 'sendfile', 42: 'connect', 43: 'accept',
  44: 'sendto', 45: 'recvfrom', 46: 'sendmsg', 47: 'recvmsg', 56: 'clone', 57: 'fork', 59: 'execve', 61: 'wait4',
  72: 'fcntl', 73: 'flock', 74: 'fsync', 75: 'fdatasync', 76: 'truncate', 77: 'ftruncate', 78: 'getdents', 82: 'rename',
  83: 'mkdir', 84: 'rmdir', 86: 'link', 87: 'unlink', 162: 'sync', 202: 'futex', 206: 'io_setup', 208: 'io_getevents',
  217: 'getdents64', 230: 'clock_nanosleep', 232: 'epoll_wait', 257: 'openat', 262: 'newfstatat', 263: 'unlinkat',
  264: 'renameat', 270: 'pselect6', 271: 'ppoll', 275: 'splice', 277: 'sync_file_range', 281: 'epoll_pwait',
  285: 'fallocate', 288: 'accept4', 295: 'preadv', 296: 'pwritev', 306: 'syncfs', 316: 'renameat2', 326: 'copy_file_range',
  327: 'preadv2', 328: 'pwritev2', 332: 'statx', 426: 'io_uring_enter', 441: 'epoll_pwait2', 449: 'futex_waitv',
};

/** "read" for the kernel's encoding 1 + nr; "" for 0 (none known). */
export function syscallName(encoded: number): string {
  if (!encoded) return '';
  const nr = encoded - 1;
  return SYSCALL_NAMES[nr] ?? `syscall ${nr}`;
}
