/**
 * Writing one bundle: id and encoding, the quota check, retention and
 * eviction to make room, then the atomic write and the index entry.
 */
import { promises as fsp } from 'fs';
import { BUNDLE_FORMAT_VERSION, type Bundle, type DeepPartial } from '../../proto/codec';
import { incidentOf } from './bundle-index';
import { retain, type StoreContext } from './context';
import { writeFileAtomic } from './disk';
import { makeRoom } from './eviction';
import { encodeBundleFile } from './file-format';
import { bundleFileName, ID_RE, isValidBundleId, makeBundleId } from './ids';
import type { WriteResult } from './types';

/** The bundle as a file's bytes, with its id and creation time filled in; throws counted StoreErrors. */
function encode(ctx: StoreContext, bundle: DeepPartial<Bundle>): { id: string; createdMs: number; data: Buffer } {
  const createdMs = bundle.createdMs || ctx.now();
  const id = bundle.id || makeBundleId(bundle.verdict?.tMs || createdMs, bundle.worker?.pid ?? 0);
  if (!isValidBundleId(id)) throw ctx.failures.fail('PREMORTEM_ERR_BUNDLE_BAD_ID', `bundle id '${id}' must match ${ID_RE}`);
  let payload: Uint8Array;
  try {
    payload = ctx.codec().encodeBundle({ ...bundle, id, createdMs, formatVersion: bundle.formatVersion || BUNDLE_FORMAT_VERSION });
  } catch (err) {
    throw ctx.failures.fail('PREMORTEM_ERR_BUNDLE_INVALID', `bundle ${id} cannot be encoded: ${(err as Error).message}`, err);
  }
  const data = encodeBundleFile(payload);
  if (data.length > ctx.quotaBytes) {
    throw ctx.failures.fail('PREMORTEM_ERR_BUNDLE_TOO_LARGE',
      `bundle ${id} is ${data.length} bytes, more than the whole quota of ${ctx.quotaBytes} bytes; raise quotaBytes or shorten the post-mortem window`);
  }
  return { id, createdMs, data };
}

/** Writes a bundle (the store is ready, writes are serialised by the caller). */
export async function writeBundle(ctx: StoreContext, bundle: DeepPartial<Bundle>): Promise<WriteResult> {
  const { id, createdMs, data } = encode(ctx, bundle);
  const file = bundleFileName(id);
  const evicted: string[] = [];
  try {
    evicted.push(...await retain(ctx));
    evicted.push(...await makeRoom(ctx.index, data.length, ctx.quotaBytes, ctx.maxBundles, () => { ctx.counters.evicted++; }));
  } catch (err) {
    throw ctx.failures.io(`cannot evict old bundles to make room for ${id}`, err);
  }
  let final: string;
  try {
    final = await writeFileAtomic(ctx.dir, file, data);
  } catch (err) {
    throw ctx.failures.io(`cannot write bundle ${id}`, err);
  }
  const st = await fsp.stat(final).catch(() => null);
  const incident = incidentOf({ ...bundle, createdMs }, id, data.length);
  ctx.index.set({ file, size: data.length, mtimeMs: st?.mtimeMs ?? 0, summary: incident, createdMs: incident.tMs });
  ctx.counters.writes++;
  return { id, path: final, bytes: data.length, evicted, incident };
}
