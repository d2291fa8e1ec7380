/**
 * Per-network-namespace caches of what /proc/PID/net/* shows: every service
 * in a container or pod has its own socket table, read from the host through
 * a process inside that namespace (/proc/PID/net/tcp shows PID's namespace,
 * not the reader's). A table is read at most once per `maxAgeMs` per
 * namespace, whatever the number of services sharing it, and at most
 * MAX_CACHED_NETNS namespaces are kept (the least recently used goes first).
 */
import { nsInode } from '../procfs';

/** Namespaces whose tables are kept between reads (a host with more pods reads the rest afresh). */
export const MAX_CACHED_NETNS = 256;

export interface NetnsCache<T> {
  /**
   * The table of namespace `netns`, read through the first of `pids` still inside it when the
   * cached one is older than `maxAgeMs`; null when none of them is (all gone or moved).
   */
  get(netns: number, pids: readonly number[], maxAgeMs: number): T | null;
  forget(netns: number): void;
  readonly size: number;
}

export function createNetnsCache<T>(read: (pid: number) => T, bound = MAX_CACHED_NETNS): NetnsCache<T> {
  if (!(bound >= 1)) throw new TypeError(`createNetnsCache: bound must be >= 1, got ${bound}`);
  const entries = new Map<number, { tMs: number; value: T }>(); // insertion order = least recently used first
  return {
    get(netns, pids, maxAgeMs) {
      const now = Date.now();
      const hit = entries.get(netns);
      if (hit && now - hit.tMs < maxAgeMs) {
        entries.delete(netns); // move to the back: recently used
        entries.set(netns, hit);
        return hit.value;
      }
      // The namespace is checked before and after the read: a pid reused by a process
      // elsewhere, or one that moved, must not lend its table to this namespace.
      for (const pid of pids) {
        if (nsInode(pid, 'net') !== netns) continue;
        const value = read(pid);
        if (nsInode(pid, 'net') !== netns) continue;
        entries.delete(netns);
        entries.set(netns, { tMs: now, value });
        while (entries.size > bound) entries.delete(entries.keys().next().value!);
        return value;
      }
      return null;
    },
    forget(netns) {
      entries.delete(netns);
    },
    get size() {
      return entries.size;
    },
  };
}
