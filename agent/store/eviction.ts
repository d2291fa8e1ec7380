/**
 * Which bundles go, and when: retention (older than retentionDays) and room
 * for a new bundle (quota and count). Corrupt files go first, then the oldest.
 */
import type { BundleIndex, IndexEntry } from './bundle-index';

/** Deletes bundles created before cutoffMs; returns their ids. onEvict counts each file deleted. */
export async function applyRetention(index: BundleIndex, cutoffMs: number, onEvict: (e: IndexEntry) => void): Promise<string[]> {
  const gone: string[] = [];
  for (const e of index.evictionOrder()) {
    if (e.summary && e.createdMs < cutoffMs) {
      await index.unlink(e);
      onEvict(e);
      gone.push(e.summary.id);
    }
  }
  return gone;
}

/**
 * Deletes until a file of `bytes` fits both the quota and maxBundles; returns
 * the ids of the bundles deleted (corrupt files have none). A file about to be
 * replaced (same id) stays counted until the rename: the quota holds at every
 * instant, temp file included.
 */
export async function makeRoom(index: BundleIndex, bytes: number, quotaBytes: number, maxBundles: number, onEvict: (e: IndexEntry) => void): Promise<string[]> {
  const evicted: string[] = [];
  for (const e of index.evictionOrder()) {
    if (index.bytesUsed() + bytes <= quotaBytes && index.bundleCount() + 1 <= maxBundles) break;
    await index.unlink(e);
    onEvict(e);
    if (e.summary) evicted.push(e.summary.id);
  }
  return evicted;
}
