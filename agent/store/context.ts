/**
 * One store's settings and state, shared by its parts: options merged with
 * STORE_DEFAULTS once and checked, the index, the failure counters.
 */
import * as path from 'path';
import type { Codec } from '../../proto/codec';
import { loadCodec } from '../../proto/node';
import { log as defaultLogger } from '../log';
import { BundleIndex } from './bundle-index';
import { applyRetention } from './eviction';
import { StoreFailures, type StoreLog } from './failures';
import { BUNDLE_HEADER_BYTES } from './file-format';
import { STORE_DEFAULTS, type BundleStoreOptions } from './types';

export interface StoreContext {
  readonly dir: string;
  readonly quotaBytes: number;
  readonly maxBundles: number;
  readonly retentionDays: number;
  readonly maxPendingWrites: number;
  readonly readOnly: boolean;
  readonly now: () => number;
  readonly log: StoreLog;
  readonly codec: () => Codec;
  readonly index: BundleIndex;
  readonly failures: StoreFailures;
  readonly counters: { writes: number; evicted: number };
}

/** Throws TypeError with the exact reason for a limit that cannot work. */
export function createStoreContext(options: BundleStoreOptions): StoreContext {
  const dir = path.resolve(options.dir ?? STORE_DEFAULTS.dir);
  const quotaBytes = options.quotaBytes ?? STORE_DEFAULTS.quotaBytes;
  const maxBundles = options.maxBundles ?? STORE_DEFAULTS.maxBundles;
  const retentionDays = options.retentionDays ?? STORE_DEFAULTS.retentionDays;
  const maxPendingWrites = options.maxPendingWrites ?? STORE_DEFAULTS.maxPendingWrites;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? defaultLogger;
  const log: StoreLog = (level, message) => logger[level](message, { dir });
  for (const [name, v] of Object.entries({ quotaBytes, maxBundles, retentionDays, maxPendingWrites })) {
    if (!Number.isFinite(v) || v <= 0) throw new TypeError(`createBundleStore: ${name} must be a positive number, got ${v}`);
  }
  if (quotaBytes <= BUNDLE_HEADER_BYTES) throw new TypeError(`createBundleStore: quotaBytes ${quotaBytes} cannot hold any bundle`);
  let codecCache = options.codec;
  const codec = () => (codecCache ??= loadCodec());
  return {
    dir, quotaBytes, maxBundles, retentionDays, maxPendingWrites, readOnly: options.readOnly === true, now, log, codec,
    index: new BundleIndex(dir, codec, log),
    failures: new StoreFailures(dir, now, log),
    counters: { writes: 0, evicted: 0 },
  };
}

/** Retention as of now: deletes bundles older than retentionDays, returns their ids. */
export function retain(ctx: StoreContext): Promise<string[]> {
  return applyRetention(ctx.index, ctx.now() - ctx.retentionDays * 86_400_000, () => { ctx.counters.evicted++; });
}
