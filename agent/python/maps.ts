/**
 * /proc/PID/maps: the files a process has mapped, with the device and inode
 * the kernel itself maps (for a container's overlay filesystem, the real
 * file's: the one a uprobe attaches to), so that one file is one key whatever
 * path or mount namespace it is seen through.
 */
import * as fs from 'fs';

/** Bound on the maps text read (a Python worker's is ~30–100 KiB). */
export const MAX_MAPS_BYTES = 8 << 20;

export interface Mapping {
  start: number;
  end: number;
  perms: string;
  /** File offset of `start`. */
  offset: number;
  /** major:minor in hex, as maps prints it. */
  dev: string;
  inode: number;
  /** The path as the process sees it (inside its mount namespace); may end with " (deleted)". */
  path: string;
}

/** Parses maps text; lines without a file are left out. */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split('\n')) {
    // start-end perms offset dev inode path
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s+(\/.*)$/.exec(line);
    if (!m || m[6] === '0') continue;
    out.push({
      start: parseInt(m[1], 16), end: parseInt(m[2], 16), perms: m[3], offset: parseInt(m[4], 16),
      dev: m[5], inode: Number(m[6]), path: m[7],
    });
  }
  return out;
}

/** The file mappings of a process; null when it is gone or unreadable. */
export function readMaps(pid: number): Mapping[] | null {
  let text: string;
  try {
    const fd = fs.openSync(`/proc/${pid}/maps`, 'r');
    try {
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const b = Buffer.alloc(256 << 10);
        const n = fs.readSync(fd, b, 0, b.length, null);
        if (n <= 0) break;
        chunks.push(b.subarray(0, n));
        total += n;
        if (total >= MAX_MAPS_BYTES) break; // bound: the interpreter is mapped near the start
      }
      text = Buffer.concat(chunks).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
  return parseMaps(text);
}

/** The identity of a mapped file: device and inode as the kernel maps them. */
export const fileKey = (m: Mapping) => `${m.dev}:${m.inode}`;

/** The path this agent opens a process's mapped file through (its own root, so its mount namespace). */
export function openPathOf(pid: number, mappedPath: string): string {
  return `/proc/${pid}/root${mappedPath}`;
}
