/**
 * One worker's recent Python stacks: the last distinct stacks that had
 * frames, each stamped with when it was first and last sampled, and counts of
 * every sample taken. A dying worker's very last samples are often empty (the
 * interpreter is tearing down) or fail (it is gone): those are counted, never
 * kept, so the stack it was in before the kill survives to the post-mortem.
 * Bounded: at most `maxStacks` distinct stacks (the oldest leave first).
 */
import type { PyStackSample, StackSampling } from '../../proto/codec';

/** A distinct stack: first sampled at `sample.tMs`, still the same at `untilMs`. */
export interface KeptStack {
  sample: PyStackSample;
  untilMs: number;
}

export interface FrozenStacks {
  /** Oldest first. */
  stacks: KeptStack[];
  sampling: StackSampling;
}

export interface StackRing {
  push(s: PyStackSample): void;
  /** The kept stacks and the counts, as the post-mortem records them. */
  freeze(): FrozenStacks;
  readonly size: number;
}

export interface StackRingOptions {
  maxStacks: number;
  intervalMs: number;
  burstIntervalMs: number;
}

/** What makes two samples the same stack: threads and their frames (not the GIL, which flips constantly). */
export function stackSignature(s: PyStackSample): string {
  let sig = '';
  for (const t of s.threads) {
    sig += `#${t.tid}`;
    for (const f of t.frames) sig += `|${f.function}@${f.file}:${f.line}`;
  }
  return sig;
}

export const hasFrames = (s: PyStackSample) => s.threads.some((t) => t.frames.length > 0);

export function createStackRing(o: StackRingOptions): StackRing {
  const kept: Array<KeptStack & { sig: string }> = [];
  const counts = { samples: 0, empty: 0, failed: 0, dropped: 0, lastError: '', lastSampleMs: 0, lastFramesMs: 0 };
  return {
    push(s) {
      counts.samples++;
      counts.lastSampleMs = s.tMs;
      if (s.error) {
        counts.failed++;
        counts.lastError = s.error;
        return;
      }
      if (!hasFrames(s)) {
        counts.empty++;
        return;
      }
      counts.lastFramesMs = s.tMs;
      const last = kept[kept.length - 1];
      // The sampler answers a process whose threads did not run with the same thread list.
      if (last && (last.sample.threads === s.threads || last.sig === stackSignature(s))) {
        last.untilMs = s.tMs;
        return;
      }
      kept.push({ sample: s, untilMs: s.tMs, sig: stackSignature(s) });
      if (kept.length > o.maxStacks) {
        kept.shift();
        counts.dropped++;
      }
    },
    freeze() {
      return {
        stacks: kept.map(({ sample, untilMs }) => ({ sample, untilMs })),
        sampling: {
          intervalMs: o.intervalMs, burstIntervalMs: o.burstIntervalMs, samples: counts.samples, empty: counts.empty,
          failed: counts.failed, lastError: counts.lastError, lastSampleMs: counts.lastSampleMs,
          lastFramesMs: counts.lastFramesMs, dropped: counts.dropped,
        },
      };
    },
    get size() {
      return kept.length;
    },
  };
}
