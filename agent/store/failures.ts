/**
 * Failures the store reports: each becomes a StoreError with a stable code, is
 * logged, and is counted for health() (errors, the last one).
 */
import { errnoOf, StoreError, type StoreErrorCode } from './errors';
import type { StoreHealth } from './types';

export type StoreLog = (level: 'info' | 'warn' | 'error', message: string) => void;

export class StoreFailures {
  errors = 0;
  lastError: StoreHealth['lastError'] = null;

  constructor(private readonly dir: string, private readonly now: () => number, private readonly log: StoreLog) {}

  /** A counted, logged StoreError (the caller throws it). */
  fail(code: StoreErrorCode, message: string, cause?: unknown): StoreError {
    const err = new StoreError(code, message, { cause, errno: errnoOf(cause) });
    this.errors++;
    this.lastError = { code, message, tMs: this.now() };
    this.log('error', message);
    return err;
  }

  /** An fs error as a StoreError that says what to do: disk full, not writable, or other I/O. */
  io(what: string, cause: unknown): StoreError {
    if (cause instanceof StoreError) return cause;
    const errno = errnoOf(cause);
    const detail = (cause as Error)?.message ?? String(cause);
    if (errno === 'ENOSPC' || errno === 'EDQUOT') {
      return this.fail('PREMORTEM_ERR_STORE_NO_SPACE', `${what}: the disk holding ${this.dir} is full (${errno}); free space or lower quotaBytes`, cause);
    }
    if (errno === 'EROFS' || errno === 'EACCES' || errno === 'EPERM') {
      return this.fail('PREMORTEM_ERR_STORE_READ_ONLY', `${what}: ${this.dir} is not writable (${errno}); fix its mount or permissions, or choose another --data-dir`, cause);
    }
    return this.fail('PREMORTEM_ERR_STORE_IO', `${what}: ${detail}`, cause);
  }
}
