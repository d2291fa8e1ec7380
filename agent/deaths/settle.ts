/**
 * Deaths wait here for the kernel's records about them. Each is due
 * deathSettleMs after it was seen; the deaths due together are judged together
 * once every record the kernel submitted before they were seen (the signal, the
 * OOM kill, the exit) has been read from the ring buffer and handed to ingest,
 * however far behind the reader was.
 *
 * The barrier is cheap in the normal case and never blocks per death: when a
 * death is scheduled the reader's pass count is marked; once the reader has
 * polled PASSES_AFTER_MARK more times (and is not paused), a pass that started
 * after the mark has consumed the ring buffer and queued its batches, so a
 * non-blocking flush() delivers them. Only when the reader is behind (paused,
 * or stuck waiting for JS) does a batch call tracer.sync() — one per batch,
 * bounded by SETTLE_LIMITS.syncTimeoutMs. If that fails too, the batch retries
 * every retryMs for up to maxWaitMs, then is judged with what is known and
 * counted as unsynced (its verdict says so).
 */
import type { Tracer } from '../native';

export const SETTLE_LIMITS = {
  /** Longest one sync may block the event loop (ms). */
  syncTimeoutMs: 50,
  /** A batch whose records could not be delivered is retried this much later (ms). */
  retryMs: 100,
  /** ...until it has waited this long past its due time (ms). */
  maxWaitMs: 5000,
  /** Deaths waiting at most (each tracked process dies once: the registry's cap bounds it too). */
  maxPending: 16_384,
};

/**
 * Reader passes after the mark that prove a whole pass (poll, consume, hand-over) began after it:
 * the pass under way at the mark may have consumed before it, and one pass may be cut short by a pause.
 */
export const PASSES_AFTER_MARK = 3;

/** Delivers every record submitted before a mark. */
export interface RecordBarrier {
  mark(): number;
  /** false: the records could not be delivered now (the reader is paused or behind). */
  deliver(mark: number): boolean;
  /** Deliveries that needed a blocking sync. */
  readonly syncs: number;
}

export function tracerBarrier(tracer: Tracer): RecordBarrier {
  let syncs = 0;
  return {
    mark: () => tracer.stats().polls,
    deliver(mark) {
      const s = tracer.stats();
      if (!s.paused && s.polls >= mark + PASSES_AFTER_MARK) {
        tracer.flush();
        return true;
      }
      syncs++;
      return tracer.sync(SETTLE_LIMITS.syncTimeoutMs);
    },
    get syncs() {
      return syncs;
    },
  };
}

export interface SettleStats {
  batches: number;
  /** Batches whose records needed a blocking sync (the reader was behind). */
  syncs: number;
  /** Attempts that could not deliver (the batch waited and retried). */
  failedDeliveries: number;
  /** Deaths judged without their records delivered (the reader stayed behind past maxWaitMs). */
  unsynced: number;
  /** Deaths judged at once because the queue was full. */
  overflowed: number;
  pending: number;
}

export interface SettleQueue<T> {
  add(item: T, dueMs: number): void;
  stop(): void;
  stats(): SettleStats;
}

/** `judge` gets each due batch and whether its records were delivered. */
export function createSettleQueue<T>(barrier: RecordBarrier, judge: (items: T[], synced: boolean) => void,
  limits: Partial<typeof SETTLE_LIMITS> = {}, now: () => number = Date.now): SettleQueue<T> {
  const lim = { ...SETTLE_LIMITS, ...limits };
  const pending: Array<{ item: T; dueMs: number; tryMs: number; mark: number }> = [];
  const st = { batches: 0, failedDeliveries: 0, unsynced: 0, overflowed: 0 };
  let timer: NodeJS.Timeout | undefined;
  let timerAt = Infinity;
  let stopped = false;

  const arm = () => {
    if (stopped || !pending.length) return;
    let at = Infinity;
    for (const p of pending) if (p.tryMs < at) at = p.tryMs;
    if (timer && at >= timerAt) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(run, Math.max(0, at - now()));
  };

  const run = () => {
    timer = undefined;
    timerAt = Infinity;
    if (stopped) return;
    const t = now();
    const ready = pending.filter((p) => p.tryMs <= t);
    if (ready.length) {
      let mark = Infinity;
      for (const p of ready) if (p.mark < mark) mark = p.mark;
      const synced = barrier.deliver(mark);
      if (!synced) st.failedDeliveries++;
      const after = now();
      const due = new Set(ready.filter((p) => synced || after - p.dueMs >= lim.maxWaitMs));
      for (const p of ready) if (!due.has(p)) p.tryMs = after + lim.retryMs;
      if (due.size) {
        const rest = pending.filter((p) => !due.has(p));
        pending.length = 0;
        pending.push(...rest);
        st.batches++;
        if (!synced) st.unsynced += due.size;
        judge([...due].map((p) => p.item), synced);
      }
    }
    arm();
  };

  return {
    add(item, dueMs) {
      if (stopped) return;
      if (pending.length >= lim.maxPending) {
        st.overflowed++;
        judge([item], false);
        return;
      }
      pending.push({ item, dueMs, tryMs: dueMs, mark: barrier.mark() });
      arm();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      pending.length = 0;
    },
    stats: () => ({ ...st, syncs: barrier.syncs, pending: pending.length }),
  };
}
