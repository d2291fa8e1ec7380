/**
 * Deaths wait here for the kernel's records about them. Each is due
 * deathSettleMs after it was seen; the deaths due together are judged together
 * after ONE tracer.sync(): every record the kernel submitted before that call
 * (so before these deaths: the signal, the OOM kill, the exit) has then been
 * read from the ring buffer and handed to ingest, however far behind the
 * reader was. One sync per batch, not per death: at high death rates the
 * event loop blocks once per batch (about the reader's poll interval).
 *
 * A reader that is paused or too slow makes sync() fail: the batch waits and
 * retries every SETTLE_LIMITS.retryMs, up to SETTLE_LIMITS.maxWaitMs after it
 * was due; then it is judged with what is known, and counted as unsynced.
 */
export const SETTLE_LIMITS = {
  /** Longest one sync may block the event loop (ms). */
  syncTimeoutMs: 50,
  /** A batch whose sync failed is retried this much later (ms). */
  retryMs: 100,
  /** ...until it has waited this long past its due time (ms). */
  maxWaitMs: 5000,
  /** Deaths waiting at most (each tracked process dies once: the registry's cap bounds it too). */
  maxPending: 16_384,
};

export interface SettleStats {
  batches: number;
  syncs: number;
  failedSyncs: number;
  /** Deaths judged without a completed sync (the reader stayed behind past maxWaitMs). */
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

/**
 * `sync` delivers every record submitted before it (false: it could not);
 * `judge` gets each due batch and whether it was synced.
 */
export function createSettleQueue<T>(sync: () => boolean, judge: (items: T[], synced: boolean) => void,
  limits: Partial<typeof SETTLE_LIMITS> = {}, now: () => number = Date.now): SettleQueue<T> {
  const lim = { ...SETTLE_LIMITS, ...limits };
  const pending: Array<{ item: T; dueMs: number; tryMs: number }> = [];
  const st = { batches: 0, syncs: 0, failedSyncs: 0, unsynced: 0, overflowed: 0 };
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
    if (pending.some((p) => p.tryMs <= t)) {
      st.syncs++;
      const synced = sync();
      if (!synced) st.failedSyncs++;
      const after = now();
      const due = new Set(pending.filter((p) => p.tryMs <= t && (synced || after - p.dueMs >= lim.maxWaitMs)));
      for (const p of pending) if (!due.has(p) && p.tryMs <= t) p.tryMs = after + lim.retryMs;
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
      pending.push({ item, dueMs, tryMs: dueMs });
      arm();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      pending.length = 0;
    },
    stats: () => ({ ...st, pending: pending.length }),
  };
}
