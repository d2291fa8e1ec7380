/**
 * The threads of a process as the kernel sees them: their tids, the CPU time
 * each has run (ns, /proc/PID/task/TID/schedstat: exact, unlike the 10 ms
 * ticks of /proc/PID/stat) and their names (comm). A thread whose CPU time did
 * not move since the last look cannot have changed its Python stack.
 */
import * as fs from 'fs';

export interface TaskInfo {
  tid: number;
  /** Nanoseconds on CPU (sum_exec_runtime); -1 when unreadable. */
  cpuNs: number;
}

/** The tasks of `pid`, at most `max` of them (the main thread first); null when the process is gone. */
export function readTasks(pid: number, max: number): TaskInfo[] | null {
  let names: string[];
  try {
    names = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  const tids = names.map(Number).filter((t) => t > 0).sort((a, b) => (a === pid ? -1 : b === pid ? 1 : a - b)).slice(0, max);
  return tids.map((tid) => ({ tid, cpuNs: readCpuNs(pid, tid) }));
}

function readCpuNs(pid: number, tid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1');
    const n = Number(s.slice(0, s.indexOf(' ')));
    return Number.isFinite(n) ? n : -1;
  } catch {
    return -1;
  }
}

/** A thread's name (comm), '' when gone. */
export function taskName(pid: number, tid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * start_time of a live process (clock ticks since boot): with the pid, the
 * process's identity. null when it is gone, or dead and not yet reaped (a zombie has no memory).
 */
export function startTicks(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' || fields[0] === 'X' ? null : Number(fields[19]);
  } catch {
    return null;
  }
}
