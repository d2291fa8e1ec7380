/**
 * The post-mortem bundle store: one file per bundle in a data directory, with a
 * disk quota, a count cap and a retention period.
 *
 * File format (<id>.pmb, mode 0600, directory 0700): proto/bundle-file.ts (a
 * 40-byte header with the payload's length and SHA-256, then the protobuf Bundle).
 * A file whose size, magic or digest disagrees is corrupt: never listed, never
 * served, counted in health() and evicted first.
 *
 * Atomic writes: the file is written as ".tmp-<writer pid>-<random>" in the same
 * directory, fsynced, renamed to <id>.pmb, then the directory is fsynced. A
 * writer killed at any point leaves a temp file (deleted at the next start) or a
 * complete bundle, never a half one.
 *
 * Bounds, enforced before each write: a bundle larger than quotaBytes is refused
 * (PREMORTEM_ERR_BUNDLE_TOO_LARGE); bundles older than retentionDays go first,
 * then the oldest until both the quota (apparent file sizes, temp file included)
 * and maxBundles hold. Writes are serialised; at most maxPendingWrites wait.
 *
 * Failures never throw out of the store's caller context unexpectedly: every
 * operation rejects with a StoreError carrying a stable code, and health()
 * counts them (the agent shows health() in /api/health and the viewer).
 *
 * Read-only mode (`readOnly: true`, what `premortem list/show/export` use):
 * the directory is only read. No mkdir, no chmod, no temp-file cleanup, no
 * retention or eviction; write() and remove() reject with
 * PREMORTEM_ERR_STORE_READ_ONLY. A missing directory is
 * PREMORTEM_ERR_STORE_NOT_FOUND, one that cannot be read (permissions, not a
 * directory) PREMORTEM_ERR_STORE_UNREADABLE.
 *
 * This file is the store's front door: what the rest of the code imports. The
 * parts live in agent/store/:
 *   bundle-store.ts  createBundleStore: the operations, serialised writes
 *   context.ts       options merged and checked once, the state the parts share
 *   open.ts          opening the directory (writable or read-only)
 *   write.ts         one bundle: encode, quota, make room, write, index
 *   bundle-index.ts  what is on disk: entries, sizes, summaries, corrupt files
 *   eviction.ts      retention and making room (corrupt first, then the oldest)
 *   disk.ts          mkdir -p, atomic write through a temp file, stale temps
 *   file-format.ts   the file header's digest (encode, verify)
 *   ids.ts           bundle ids and their file names
 *   failures.ts      StoreErrors that say what to do, counted for health()
 *   errors.ts, types.ts  the error class and codes; the public interfaces
 */
export { createBundleStore } from './store/bundle-store';
export { STORE_DEFAULTS, type BundleStore, type BundleStoreOptions, type StoreHealth, type WriteResult } from './store/types';
export { StoreError, type StoreErrorCode } from './store/errors';
export { BUNDLE_FILE_EXT, isValidBundleId, makeBundleId } from './store/ids';
export { BUNDLE_HEADER_BYTES, decodeBundleFile, encodeBundleFile } from './store/file-format';
export { incidentOf } from './store/bundle-index';
export { makeDirs } from './store/disk';
