/** The store's public shape: options and their defaults, what it answers, its health. */
import type { Bundle, Codec, DeepPartial, IncidentSummary } from '../../proto/codec';
import type { Logger } from '../log';
import type { StoreErrorCode } from './errors';

export const STORE_DEFAULTS = {
  dir: '/var/lib/premortem',
  quotaBytes: 256 * 1024 * 1024,
  maxBundles: 500,
  retentionDays: 14,
  maxPendingWrites: 16,
} as const;

export interface BundleStoreOptions {
  dir?: string;
  quotaBytes?: number;
  maxBundles?: number;
  retentionDays?: number;
  maxPendingWrites?: number;
  /** Only read the directory: never create, chmod, clean or evict (the read commands). */
  readOnly?: boolean;
  codec?: Codec;
  /** Clock for retention (tests). */
  now?: () => number;
  /** Defaults to the agent's one logger. */
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export interface WriteResult { id: string; path: string; bytes: number; evicted: string[]; incident: IncidentSummary }

export interface StoreHealth {
  dir: string;
  writes: number;
  errors: number;
  lastError: { code: StoreErrorCode; message: string; tMs: number } | null;
  bytesUsed: number;
  quotaBytes: number;
  bundles: number;
  maxBundles: number;
  retentionDays: number;
  evicted: number;
  corrupt: number;
  pendingWrites: number;
}

export interface BundleStore {
  readonly dir: string;
  /**
   * Creates the directory, deletes stale temp files, applies retention, indexes bundles
   * (read-only: checks the directory can be listed, indexes bundles). Idempotent; retried after a failure.
   */
  ready(): Promise<void>;
  /** Fills id and createdMs when absent. Rejects with StoreError. */
  write(bundle: DeepPartial<Bundle>): Promise<WriteResult>;
  /** Complete, verified bundles, newest first. */
  list(): Promise<IncidentSummary[]>;
  read(id: string): Promise<Bundle>;
  /** The protobuf Bundle bytes (no file header): what `export --format pb` writes. */
  readRaw(id: string): Promise<Uint8Array>;
  remove(id: string): Promise<boolean>;
  health(): StoreHealth;
  /** Waits for queued writes; later calls reject with PREMORTEM_ERR_STORE_CLOSED. */
  close(): Promise<void>;
}
