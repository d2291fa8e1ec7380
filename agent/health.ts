/**
 * Liveness and readiness of a running agent, for GET /api/health and
 * GET /api/ready (and the DaemonSet's probes, which use exactly these paths).
 *
 * Live: the tracer answered within max(LIVENESS_MIN_MS, 3 x interval). It
 * answered when its stats, read every PROBE_MS by this monitor, show the
 * reader thread at work (its poll count or its batch count moved since the
 * previous read) and the tracer is not closed. A closed tracer, a reader
 * thread that stopped polling, or an event loop too blocked to read the
 * stats all make the agent not live: a restart is the cure.
 *
 * Ready: the agent started and its first tick ran (timelines have a bucket,
 * /metrics has values).
 */
import type { Agent } from './agent';

/** The shortest silence that fails liveness: scheduling hiccups on a loaded host stay below it. */
export const LIVENESS_MIN_MS = 10_000;
/** How often the tracer's stats are read. */
const PROBE_MS = 1000;

export interface Liveness {
  live: boolean;
  /** Why not, when not live. */
  reason?: string;
  /** Unix ms of the tracer's last answer (0: never). */
  lastAnswerMs: number;
  silentMs: number;
  limitMs: number;
}

export interface Readiness {
  ready: boolean;
  reason?: string;
  firstTickMs?: number;
}

export interface HealthMonitor {
  liveness(): Liveness;
  readiness(): Readiness;
  close(): void;
}

export function livenessLimitMs(intervalMs: number): number {
  return Math.max(LIVENESS_MIN_MS, 3 * intervalMs);
}

export function createHealthMonitor(agent: Agent, intervalMs: number, now: () => number = Date.now): HealthMonitor {
  const limitMs = livenessLimitMs(intervalMs);
  let lastAnswerMs = now(); // the grace period starts with the monitor
  let lastPolls = -1, lastBatches = -1;
  let answeredOnce = false;
  let stopReason: string | undefined;
  let firstTickMs: number | undefined;

  const probe = () => {
    const tracer = agent.nativeTracer();
    if (!tracer) { stopReason = 'the tracer is not started'; return; }
    try {
      const st = tracer.stats();
      if (st.closed) { stopReason = 'the tracer is closed'; return; }
      if (st.polls !== lastPolls || st.batches !== lastBatches) {
        lastPolls = st.polls; lastBatches = st.batches;
        lastAnswerMs = now();
        answeredOnce = true;
        stopReason = undefined;
      } else {
        stopReason = `the tracer's reader has not polled the ring buffer since ${new Date(lastAnswerMs).toISOString()}`;
      }
    } catch (e) {
      stopReason = `reading the tracer's stats failed: ${(e as Error).message}`;
    }
  };
  const timer = setInterval(probe, PROBE_MS);
  timer.unref();
  probe();
  const onTick = () => { firstTickMs ??= now(); };
  agent.once('tick', onTick);

  return {
    liveness() {
      const silentMs = now() - lastAnswerMs;
      if (silentMs <= limitMs) return { live: true, lastAnswerMs: answeredOnce ? lastAnswerMs : 0, silentMs, limitMs };
      return {
        live: false, lastAnswerMs: answeredOnce ? lastAnswerMs : 0, silentMs, limitMs,
        reason: `the tracer has not answered for ${Math.round(silentMs / 1000)} s (limit ${limitMs / 1000} s): ${stopReason ?? 'the agent is not reading its stats (event loop blocked?)'}`,
      };
    },
    readiness() {
      if (firstTickMs === undefined) return { ready: false, reason: 'the agent has not completed its first interval yet' };
      return { ready: true, firstTickMs };
    },
    close() {
      clearInterval(timer);
      agent.off('tick', onTick);
    },
  };
}
