/**
 * Per-thread time of multi-threaded workers (a gthread worker's main thread
 * vs its request threads): the kernel keeps cumulative counters per thread
 * (runqlat map `threads`); every THREAD_SNAPSHOT_MS the agent snapshots them
 * for each tracked process with more than one thread, and keeps the snapshots
 * of the last window. A window's per-thread time is the newest snapshot minus
 * the one taken at (or before) the window's start.
 */
import * as fs from 'fs';
import type { Tracer } from '../native';
import { readThreadTimes, TIME_CLASSES } from '../probes/runqlat';
import type { WorkerState } from '../registry/state';

/** How often the threads of a multi-threaded worker are read. */
export const THREAD_SNAPSHOT_MS = 5000;
/** Threads kept per worker (the main thread first, then by tid). */
export const MAX_THREADS_PER_WORKER = 64;

export interface ThreadSnapshot {
  tMs: number;
  /** tid -> cumulative ns per time class. */
  threads: Map<number, Float64Array>;
}

/** One thread's time over a window. */
export interface ThreadWindow {
  tid: number;
  name: string;
  time: number[];
}

export interface ThreadSampler {
  /** After a worker's bucket: snapshot its threads when due (always at its death, if it had several). */
  sample(w: WorkerState, tMs: number, final: boolean, threads: number): void;
  /** Per-thread time since `fromMs`, or undefined when the worker was never seen with several threads. */
  window(w: WorkerState, fromMs: number): ThreadWindow[] | undefined;
  /** Every tid ever snapshotted for the worker (to free their kernel entries once it is judged). */
  tids(w: WorkerState): number[];
}

interface History {
  snaps: ThreadSnapshot[];
  names: Map<number, string>;
}

function listTids(pid: number): number[] {
  try {
    const tids = fs.readdirSync(`/proc/${pid}/task`).map(Number).filter((t) => t > 0);
    tids.sort((a, b) => (a === pid ? -1 : b === pid ? 1 : a - b));
    return tids.slice(0, MAX_THREADS_PER_WORKER);
  } catch {
    return []; // gone
  }
}

function threadName(pid: number, tid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** `keepMs`: the longest window asked for (snapshots older than that, but one, are dropped). */
export function createThreadSampler(tracer: Tracer, loaded: ReadonlySet<string>, keepMs: number): ThreadSampler {
  const histories = new WeakMap<WorkerState, History>();
  const maxSnaps = Math.ceil(keepMs / THREAD_SNAPSHOT_MS) + 2;

  const snapshot = (w: WorkerState, h: History, tMs: number) => {
    const pid = w.identity.pid;
    const known = h.snaps.at(-1)?.threads.keys() ?? [];
    const tids = [...new Set([...listTids(pid), ...known])].slice(0, MAX_THREADS_PER_WORKER);
    const threads = new Map<number, Float64Array>();
    for (const t of readThreadTimes(tracer, pid, tids)) {
      threads.set(t.tid, Float64Array.from(t.time));
      if (!h.names.has(t.tid)) {
        const name = threadName(pid, t.tid);
        if (name !== undefined) h.names.set(t.tid, name);
      }
    }
    h.snaps.push({ tMs, threads });
    if (h.snaps.length > maxSnaps) h.snaps.shift();
  };

  return {
    sample(w, tMs, final, threads) {
      if (!loaded.has('runqlat')) return;
      let h = histories.get(w);
      if (!h) {
        if (threads <= 1 || final) return;
        h = { snaps: [], names: new Map() };
        histories.set(w, h);
      }
      const last = h.snaps.at(-1);
      if (final || !last || tMs - last.tMs >= THREAD_SNAPSHOT_MS) {
        try {
          snapshot(w, h, tMs);
        } catch {
          /* the probe went away: per-thread time is optional */
        }
      }
    },
    window(w, fromMs) {
      const h = histories.get(w);
      const newest = h?.snaps.at(-1);
      if (!h || !newest) return undefined;
      // The latest snapshot at or before the window's start (else the oldest kept: a shorter
      // window rather than a longer one); threads born after it start from zero.
      const older = h.snaps.slice(0, -1);
      const base = [...older].reverse().find((s) => s.tMs <= fromMs) ?? older[0];
      const out: ThreadWindow[] = [];
      for (const [tid, now] of newest.threads) {
        const before = base?.threads.get(tid);
        const time = new Array<number>(TIME_CLASSES).fill(0);
        for (let c = 0; c < TIME_CLASSES; c++) time[c] = Math.max(0, now[c] - (before?.[c] ?? 0));
        out.push({ tid, name: h.names.get(tid) ?? '', time });
      }
      return out;
    },
    tids(w) {
      const h = histories.get(w);
      return h ? [...new Set(h.snaps.flatMap((s) => [...s.threads.keys()]))] : [];
    },
  };
}
