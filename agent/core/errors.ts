/**
 * Errors the agent survives (a /proc file gone, a map lookup refused) are
 * counted per place, shown in /api/health and /metrics, and logged a few times
 * rather than on every occurrence.
 */
import type { Logger } from '../log';

/** The first occurrences of each error are logged, then every LOG_EVERY-th. */
const LOG_FIRST = 3;
const LOG_EVERY = 100;

export interface ErrorCounter {
  count(where: string, e: unknown): void;
  counts(): Record<string, number>;
}

export function createErrorCounter(log: Logger): ErrorCounter {
  const errors: Record<string, number> = {};
  return {
    count(where, e) {
      const n = (errors[where] = (errors[where] ?? 0) + 1);
      if (n <= LOG_FIRST || n % LOG_EVERY === 0)
        log.warn(`${where} failed`, { error: (e as Error)?.message?.split('\n')[0] ?? String(e), count: n });
    },
    counts: () => ({ ...errors }),
  };
}
