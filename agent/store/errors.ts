/** The store's errors: one class, stable codes (catalogued in proto/errors.ts). */

export type StoreErrorCode =
  | 'PREMORTEM_ERR_STORE_NO_SPACE'     // ENOSPC / EDQUOT: the disk is full
  | 'PREMORTEM_ERR_STORE_READ_ONLY'    // EROFS / EACCES / EPERM: cannot write there (or a read-only store)
  | 'PREMORTEM_ERR_STORE_NOT_FOUND'    // read-only open: the directory does not exist
  | 'PREMORTEM_ERR_STORE_UNREADABLE'   // read-only open: not a directory, or no permission to list it
  | 'PREMORTEM_ERR_STORE_IO'           // any other I/O failure
  | 'PREMORTEM_ERR_STORE_BUSY'         // more than maxPendingWrites waiting
  | 'PREMORTEM_ERR_STORE_CLOSED'
  | 'PREMORTEM_ERR_BUNDLE_TOO_LARGE'   // larger than the whole quota
  | 'PREMORTEM_ERR_BUNDLE_INVALID'     // cannot be encoded
  | 'PREMORTEM_ERR_BUNDLE_NOT_FOUND'
  | 'PREMORTEM_ERR_BUNDLE_CORRUPT'
  | 'PREMORTEM_ERR_BUNDLE_BAD_ID';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly errno?: string;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown; errno?: string }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
    this.errno = options?.errno;
  }
}

/** The errno name of a Node fs error ('ENOENT'), if it has one. */
export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
