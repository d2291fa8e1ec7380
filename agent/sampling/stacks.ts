/**
 * Python stacks of tracked workers (and single-process servers), sampled from
 * outside (agent/python/stacks.ts) at a low bounded rate: each every
 * stackIntervalMs, spread over the interval, and every stackBurstIntervalMs for
 * stackBurstMs after a warning marker on it or a stop/abort signal to it
 * (gunicorn's timeout path: SIGABRT, then SIGKILL; a graceful stop: SIGTERM).
 * Each worker's last distinct stacks with frames wait in a bounded ring
 * (stack-ring.ts) until its death freezes them into the post-mortem.
 *
 * Sampling runs on the event loop, so every pass is bounded twice: at most
 * STACK_PASS.maxSamplesPerPass samples and STACK_PASS.passBudgetMs of time; the
 * most overdue workers go first and the rest wait for the next pass (counted).
 * At most STACK_PASS.maxBurstWorkers workers burst at once (the rest counted), and
 * sampling takes at most STACK_PASS.budgetMsPerSecond per second in all. A process
 * that cannot be read (not Python, an unsupported version) is asked rarely.
 */
import type { AgentOptions } from '../config';
import type { ErrorCounter } from '../core/errors';
import type { Marker } from '../../proto/codec';
import { workerKey } from '../../proto/codec';
import type { StackSampler } from '../python/stacks';
import type { Registry } from '../registry/registry';
import type { WorkerState } from '../registry/state';
import type { SignalFacts } from '../deaths/verdict';
import { createStackRing, FrozenStacks, StackRing } from './stack-ring';

export const STACK_PASS = {
  /** How often the pass runs (ms): the finest sampling interval. */
  passMs: 50,
  /** Samples taken in one pass at most. */
  maxSamplesPerPass: 64,
  /** A pass stops once it has spent this long sampling (ms). */
  passBudgetMs: 20,
  /**
   * Sampling time per second at most (ms, a token bucket): whatever the pool size, the fork churn
   * or the bursts, stack sampling takes at most this share of the event loop (5 %).
   */
  budgetMsPerSecond: 50,
  /** A process that is not a Python this agent reads (not CPython, 3.8...) is asked again only this often (ms). */
  unreadableRetryMs: 30_000,
  /** Dead or forgotten workers' rings are swept this often (ms). */
  sweepMs: 5000,
  /**
   * Workers sampled at the burst rate at once: host-wide trouble (CPU contention) raises markers
   * on every worker, and 256 workers in burst would cost five times the base rate.
   */
  maxBurstWorkers: 16,
};

/** Signals that start a burst: a stop or an abort gives the worker seconds to live, and its stack says where it was. */
const BURST_SIGNALS: ReadonlySet<number> = new Set([2, 3, 6, 15]);

export interface StackWatchStats {
  /** Workers with a ring. */
  workers: number;
  samples: number;
  /** Wall time spent in sample(), total (µs). */
  sampleUs: number;
  /** CPU time of the passes, total (µs): sampling plus bookkeeping. */
  cpuUs: number;
  passes: number;
  /** Samples due but left for a later pass (pass bound, time budget or the per-second budget reached). */
  deferred: number;
  bursts: number;
  /** Bursts not started because maxBurstWorkers were bursting already. */
  burstsRefused: number;
  longestPassMs: number;
}

export interface StackWatch {
  start(): void;
  stop(): void;
  /** Markers raised in one tick: their workers are sampled faster for a while. */
  onMarkers(markers: Marker[]): void;
  /** The worker's kept stacks and counts (undefined when it was never sampled); its ring is released. */
  freeze(w: WorkerState): FrozenStacks | undefined;
  /** Takes every due sample now (tests, benchmarks); returns the number taken. */
  passNow(): number;
  stats(): StackWatchStats;
}

export interface StackWatchDeps {
  options: AgentOptions;
  registry: Registry;
  sampler: StackSampler;
  errors: ErrorCounter;
  now?: () => number;
}

interface Watched {
  key: string;
  pid: number;
  ring: StackRing;
  nextMs: number;
  burstUntilMs: number;
  /** The newest signal already looked at (the worker's list is bounded and shifts). */
  lastSignal?: SignalFacts;
}

/** Errors that will not change while the process runs the same program. */
const UNREADABLE = /^PREMORTEM_ERR_(NOT_PYTHON|PYTHON_VERSION)\b/;

const sampled = (w: WorkerState) => w.alive && !w.judging && (w.identity.role === 'worker' || w.identity.role === 'standalone');

export function createStackWatch(d: StackWatchDeps): StackWatch {
  const o = d.options;
  const now = d.now ?? Date.now;
  const watched = new Map<string, Watched>();
  const st: StackWatchStats = { workers: 0, samples: 0, sampleUs: 0, cpuUs: 0, passes: 0, deferred: 0, bursts: 0, burstsRefused: 0, longestPassMs: 0 };
  let timer: NodeJS.Timeout | undefined;
  let lastSweepMs = 0;
  let spread = 0;
  // Sampling time left (ms) in the per-second budget, refilled as time passes.
  let tokens = STACK_PASS.budgetMsPerSecond;
  let refilledMs = now();

  const bursting = (t: number) => {
    let n = 0;
    for (const x of watched.values()) if (x.burstUntilMs > t) n++;
    return n;
  };

  const burst = (x: Watched, t: number) => {
    if (o.stackBurstMs <= 0) return;
    if (x.burstUntilMs <= t) {
      if (bursting(t) >= STACK_PASS.maxBurstWorkers) {
        st.burstsRefused++;
        return;
      }
      st.bursts++;
    }
    x.burstUntilMs = t + o.stackBurstMs;
    x.nextMs = Math.min(x.nextMs, t);
  };

  const watchedOf = (w: WorkerState, t: number): Watched => {
    let x = watched.get(w.key);
    if (!x) {
      // New workers are spread over the interval, so that a pool started at once is not sampled at once.
      spread = (spread + 0.618034) % 1;
      x = {
        key: w.key, pid: w.identity.pid, nextMs: t + Math.floor(spread * o.stackIntervalMs), burstUntilMs: 0,
        ring: createStackRing({ maxStacks: o.maxStacksPerWorker, intervalMs: o.stackIntervalMs, burstIntervalMs: o.stackBurstIntervalMs }),
        lastSignal: w.signals[w.signals.length - 1],
      };
      watched.set(w.key, x);
    }
    return x;
  };

  /** Workers due now, the most overdue first; a new stop or abort signal makes a worker due at once. */
  const dueWorkers = (t: number): Watched[] => {
    const due: Watched[] = [];
    for (const w of d.registry.workers.values()) {
      if (!sampled(w)) continue;
      const x = watchedOf(w, t);
      const sig = w.signals[w.signals.length - 1];
      if (sig && sig !== x.lastSignal) {
        x.lastSignal = sig;
        if (!sig.kernel && BURST_SIGNALS.has(sig.sig)) burst(x, t);
      }
      if (x.nextMs <= t) due.push(x);
    }
    return due.sort((a, b) => a.nextMs - b.nextMs);
  };

  const sweep = (t: number) => {
    lastSweepMs = t;
    for (const [key, x] of watched) {
      const w = d.registry.workers.get(key);
      if (!w || (!w.alive && !w.judging)) {
        d.sampler.forget(x.pid);
        watched.delete(key);
      }
    }
  };

  const pass = (): number => {
    const t0 = now();
    const cpu0 = process.cpuUsage();
    tokens = Math.min(STACK_PASS.budgetMsPerSecond, tokens + ((t0 - refilledMs) * STACK_PASS.budgetMsPerSecond) / 1000);
    refilledMs = t0;
    const due = dueWorkers(t0);
    let taken = 0;
    for (const x of due) {
      if (taken >= STACK_PASS.maxSamplesPerPass || now() - t0 >= STACK_PASS.passBudgetMs || tokens <= 0) {
        st.deferred += due.length - taken;
        break;
      }
      const h = process.hrtime.bigint();
      const s = d.sampler.sample(x.pid);
      const us = Number(process.hrtime.bigint() - h) / 1000;
      st.sampleUs += us;
      tokens -= us / 1000;
      x.ring.push(s);
      taken++;
      const t = now();
      x.nextMs = t + (UNREADABLE.test(s.error) ? STACK_PASS.unreadableRetryMs : x.burstUntilMs > t ? o.stackBurstIntervalMs : o.stackIntervalMs);
    }
    st.samples += taken;
    st.passes++;
    if (t0 - lastSweepMs >= STACK_PASS.sweepMs) sweep(t0);
    const cpu = process.cpuUsage(cpu0);
    st.cpuUs += cpu.user + cpu.system;
    st.longestPassMs = Math.max(st.longestPassMs, now() - t0);
    return taken;
  };

  const safePass = () => {
    try {
      pass();
    } catch (e) {
      d.errors.count('stack-sample', e);
    }
  };

  return {
    start() {
      if (o.stackIntervalMs <= 0 || timer) return;
      timer = setInterval(safePass, Math.min(STACK_PASS.passMs, o.stackBurstIntervalMs));
      timer.unref?.();
    },
    stop() {
      clearInterval(timer);
      timer = undefined;
      watched.clear();
      d.sampler.close();
    },
    onMarkers(markers) {
      const t = now();
      for (const m of markers) {
        if (!m.pid || m.severity === 'info') continue;
        const x = watched.get(workerKey(m.pid, m.startTicks));
        if (x) burst(x, t);
      }
    },
    freeze(w) {
      const x = watched.get(w.key);
      if (!x) return undefined;
      watched.delete(w.key);
      d.sampler.forget(x.pid);
      return x.ring.freeze();
    },
    passNow: pass,
    stats: () => ({ ...st, workers: watched.size }),
  };
}
