/**
 * createBundleStore: the store's operations over its context. Mutations run
 * one at a time (quota accounting needs a single writer); at most
 * maxPendingWrites writes wait.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { entryFor } from './bundle-index';
import { createStoreContext, type StoreContext } from './context';
import { errnoOf, StoreError } from './errors';
import { decodeBundleFile } from './file-format';
import { bundleFileName, checkBundleId } from './ids';
import { openStoreDir } from './open';
import type { BundleStore, BundleStoreOptions, StoreHealth } from './types';
import { writeBundle } from './write';

async function readRaw(ctx: StoreContext, id: string): Promise<Uint8Array> {
  checkBundleId(id);
  let file: Buffer;
  try {
    file = await fsp.readFile(path.join(ctx.dir, bundleFileName(id)));
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') throw new StoreError('PREMORTEM_ERR_BUNDLE_NOT_FOUND', `no bundle ${id} in ${ctx.dir}`);
    throw new StoreError('PREMORTEM_ERR_STORE_IO', `cannot read bundle ${id}: ${(err as Error).message}`, { cause: err, errno: errnoOf(err) });
  }
  return decodeBundleFile(file, `bundle ${id}`);
}

/** Deletes a bundle; false when there was none. */
async function removeBundle(ctx: StoreContext, id: string): Promise<boolean> {
  const e = ctx.index.get(bundleFileName(id)) ?? entryFor(id);
  try {
    await fsp.access(path.join(ctx.dir, e.file));
  } catch {
    ctx.index.forget(e.file);
    return false;
  }
  try {
    await ctx.index.unlink(e);
  } catch (err) {
    throw ctx.failures.io(`cannot remove bundle ${id}`, err);
  }
  return true;
}

function healthOf(ctx: StoreContext, pendingWrites: number): StoreHealth {
  const { counters, failures, index } = ctx;
  return {
    dir: ctx.dir, writes: counters.writes, errors: failures.errors, lastError: failures.lastError, bytesUsed: index.bytesUsed(), quotaBytes: ctx.quotaBytes,
    bundles: index.bundleCount(), maxBundles: ctx.maxBundles, retentionDays: ctx.retentionDays, evicted: counters.evicted, corrupt: index.corruptCount(), pendingWrites,
  };
}

export function createBundleStore(options: BundleStoreOptions = {}): BundleStore {
  const ctx = createStoreContext(options);
  const { dir } = ctx;
  let readyPromise: Promise<void> | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  let pendingWrites = 0;
  let closed = false;

  /** Runs store mutations one at a time: quota accounting needs a single writer. */
  function serial<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  }

  function ready(): Promise<void> {
    if (!readyPromise) {
      readyPromise = openStoreDir(ctx).catch((err) => { readyPromise = null; throw err; });
    }
    return readyPromise;
  }

  const readOnlyError = () => new StoreError('PREMORTEM_ERR_STORE_READ_ONLY', `${dir} was opened read-only`);

  return {
    dir,
    ready,
    write(bundle) {
      if (ctx.readOnly) return Promise.reject(readOnlyError());
      if (closed) return Promise.reject(new StoreError('PREMORTEM_ERR_STORE_CLOSED', 'the bundle store is closed'));
      if (pendingWrites >= ctx.maxPendingWrites) {
        return Promise.reject(ctx.failures.fail('PREMORTEM_ERR_STORE_BUSY', `more than ${ctx.maxPendingWrites} bundle writes are waiting; bundle dropped`));
      }
      pendingWrites++;
      return serial(async () => { await ready(); return writeBundle(ctx, bundle); }).finally(() => { pendingWrites--; });
    },
    list() {
      return serial(async () => {
        await ready();
        try {
          await ctx.index.sync();
        } catch (err) {
          throw new StoreError('PREMORTEM_ERR_STORE_IO', `cannot read ${dir}: ${(err as Error).message}`, { cause: err, errno: errnoOf(err) });
        }
        return ctx.index.summaries();
      });
    },
    readRaw: (id) => readRaw(ctx, id),
    async read(id) {
      const payload = await readRaw(ctx, id);
      const r = ctx.codec().tryDecodeBundle(payload);
      if (!r.ok) throw new StoreError('PREMORTEM_ERR_BUNDLE_CORRUPT', `bundle ${id}: ${r.error.message}`, { cause: r.error });
      return r.value;
    },
    remove(id) {
      checkBundleId(id);
      if (ctx.readOnly) return Promise.reject(readOnlyError());
      return serial(async () => { await ready(); return removeBundle(ctx, id); });
    },
    health: () => healthOf(ctx, pendingWrites),
    async close() {
      closed = true;
      await queue;
    },
  };
}
