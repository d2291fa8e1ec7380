/**
 * Records the kernel could not hand over (the ring buffer was full), per tick:
 * how many were lost in this interval (its buckets carry the gap flag), per
 * record type (the viewer's Lost notice), and since when (a bundle says how
 * many records its window lost).
 */
import type { TracerStats } from '../native';
import { RECORD_TYPE_NAMES } from '../records';

/** Drop-counter history kept to tell how many records a bundle window lost (one entry per tick). */
const MAX_DROP_HISTORY = 4096;

export interface LostNotice {
  /** The record type's name ('RunqSlow', 'Exit'...). */
  probe: string;
  /** Lost since the previous notice. */
  dropped: number;
  tMs: number;
  droppedTotal: number;
}

export interface LossLedger {
  /** Reads the tracer's counters at a tick; the notices per record type that lost records since the last. */
  tick(tMs: number, stats: TracerStats): LostNotice[];
  /** Records lost in the interval of the last tick. */
  readonly thisInterval: number;
  readonly total: number;
  /** Records lost between two times (a bundle's window). */
  between(fromMs: number, toMs: number): number;
}

export function createLossLedger(): LossLedger {
  const history: Array<[number, number]> = [];
  let seen = 0;
  let byType: number[] = [];
  let thisInterval = 0;
  return {
    tick(tMs, stats) {
      const total = stats.dropped.reduce((a, b) => a + b, 0);
      thisInterval = total - seen;
      const notices: LostNotice[] = [];
      if (thisInterval > 0) {
        stats.dropped.forEach((n, type) => {
          const delta = n - (byType[type] ?? 0);
          if (delta > 0) notices.push({ probe: RECORD_TYPE_NAMES[type] ?? `type ${type}`, dropped: delta, tMs, droppedTotal: total });
        });
      }
      byType = stats.dropped.slice();
      seen = total;
      history.push([tMs, total]);
      if (history.length > MAX_DROP_HISTORY) history.shift();
      return notices;
    },
    get thisInterval() {
      return thisInterval;
    },
    get total() {
      return seen;
    },
    between(fromMs, toMs) {
      let first: number | undefined, last: number | undefined;
      for (const [t, total] of history) {
        if (t < fromMs) continue;
        if (t > toMs) break;
        if (first === undefined) first = total;
        last = total;
      }
      const before = history.filter(([t]) => t < fromMs).pop()?.[1] ?? first ?? 0;
      return Math.max(0, (last ?? seen) - before);
    },
  };
}
