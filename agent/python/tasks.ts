/**
 * The threads of a process as the kernel sees them: their tids, the CPU time
 * each has run (ns, /proc/PID/task/TID/schedstat: exact, unlike the 10 ms
 * ticks of /proc/PID/stat) and their names (comm). A thread whose CPU time did
 * not move since the last look cannot have changed its Python stack.
 *
 * A watch keeps its /proc files open and re-reads them with pread: ~1 µs per
 * file instead of ~15 µs for open+read+close, and an open /proc/PID file
 * belongs to that process: once it is gone (or its pid reused) reads fail, so
 * identity comes free. Open files are counted against a budget shared by all
 * watches (FdBudget); past it a watch opens and closes files per read.
 */
import * as fs from 'fs';

export interface TaskInfo {
  tid: number;
  /** Nanoseconds on CPU (sum_exec_runtime); -1 when unreadable. */
  cpuNs: number;
}

/** Open /proc files shared by every watch of a sampler. */
export interface FdBudget {
  readonly max: number;
  open: number;
}

export interface ProcessWatch {
  /**
   * The process's start time (with the pid, its identity) and its threads
   * (main first, at most maxThreads) with their CPU time; null when it is gone or dead.
   */
  read(): { startTicks: number; tasks: TaskInfo[] } | null;
  close(): void;
}

const scratch = Buffer.alloc(1024);

/** pread of a kept file; null on error (the process is gone). */
function pread(fd: number): string | null {
  try {
    const n = fs.readSync(fd, scratch, 0, scratch.length, 0);
    return scratch.toString('latin1', 0, n);
  } catch {
    return null;
  }
}

function readOnce(path: string): string | null {
  try {
    return fs.readFileSync(path, 'latin1');
  } catch {
    return null;
  }
}

/** Fields of /proc/PID/stat after the command: [0] is the state (field 3), [17] num_threads, [19] starttime. */
const statFields = (s: string) => s.slice(s.lastIndexOf(')') + 2).split(' ', 20);
const cpuOf = (schedstat: string | null) => (schedstat === null ? -1 : Number(schedstat.slice(0, schedstat.indexOf(' '))));

export function watchProcess(pid: number, maxThreads: number, budget: FdBudget): ProcessWatch {
  const fds = new Map<string, number>(); // path -> fd
  const file = (path: string): string | null => {
    let fd = fds.get(path);
    if (fd === undefined) {
      if (budget.open >= budget.max) return readOnce(path);
      try {
        fd = fs.openSync(path, 'r');
      } catch {
        return null;
      }
      fds.set(path, fd);
      budget.open++;
    }
    return pread(fd);
  };
  const drop = (path: string) => {
    const fd = fds.get(path);
    if (fd === undefined) return;
    fs.closeSync(fd);
    fds.delete(path);
    budget.open--;
  };
  let tids: number[] = [];

  function relist(): boolean {
    let names: string[];
    try {
      names = fs.readdirSync(`/proc/${pid}/task`);
    } catch {
      return false;
    }
    const next = names.map(Number).filter((t) => t > 0).sort((a, b) => (a === pid ? -1 : b === pid ? 1 : a - b)).slice(0, maxThreads);
    for (const t of tids) if (!next.includes(t)) drop(`/proc/${pid}/task/${t}/schedstat`);
    tids = next;
    return true;
  }

  return {
    read() {
      const stat = file(`/proc/${pid}/stat`);
      if (stat === null) return null;
      const f = statFields(stat);
      if (f[0] === 'Z' || f[0] === 'X') return null;
      const threads = Math.min(Number(f[17]), maxThreads);
      if (threads !== tids.length && !relist()) return null;
      let out = tids.map((tid) => ({ tid, cpuNs: cpuOf(file(`/proc/${pid}/task/${tid}/schedstat`)) }));
      if (out.some((t) => t.cpuNs < 0)) {
        // A thread ended (and maybe another began): list them again.
        if (!relist()) return null;
        out = tids.map((tid) => ({ tid, cpuNs: cpuOf(file(`/proc/${pid}/task/${tid}/schedstat`)) }));
      }
      return { startTicks: Number(f[19]), tasks: out };
    },
    close() {
      for (const p of [...fds.keys()]) drop(p);
    },
  };
}

/** A thread's name (comm), '' when gone. */
export function taskName(pid: number, tid: number): string {
  return readOnce(`/proc/${pid}/task/${tid}/comm`)?.trim() ?? '';
}

/**
 * start_time of a live process (clock ticks since boot): with the pid, the
 * process's identity. null when it is gone, or dead and not yet reaped (a zombie has no memory).
 */
export function startTicks(pid: number): number | null {
  const stat = readOnce(`/proc/${pid}/stat`);
  if (stat === null) return null;
  const f = statFields(stat);
  return f[0] === 'Z' || f[0] === 'X' ? null : Number(f[19]);
}

/**
 * For a process inside its own PID namespace (a container), the tids its
 * threads see (what CPython stores as native_thread_id, what glibc stores in
 * struct pthread) mapped to the host's. null when it shares the agent's view
 * (NSpid lists one pid).
 */
export function namespaceTids(pid: number, hostTids: number[]): Map<number, number> | null {
  const inner = (status: string | null) => {
    const m = status ? /^NSpid:\s+([\d\s]+)$/m.exec(status) : null;
    return m ? m[1].trim().split(/\s+/).map(Number) : null;
  };
  const own = inner(readOnce(`/proc/${pid}/status`));
  if (!own || own.length < 2) return null;
  const map = new Map<number, number>();
  for (const tid of hostTids) {
    const ns = inner(readOnce(`/proc/${pid}/task/${tid}/status`));
    if (ns && ns.length > 1) map.set(ns[ns.length - 1], tid);
  }
  return map;
}
