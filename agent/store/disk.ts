/**
 * The store's file system work: creating the directory, writing a file
 * atomically (temp file, fsync, rename, fsync of the directory) and removing
 * the temp files of writers that died mid-write.
 */
import { randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { errnoOf } from './errors';

/** Temp files are ".tmp-<writer pid>-<random>" in the store's directory. */
const TEMP_PREFIX = '.tmp-';
/** A temp file whose writer is alive is left alone unless it is this old. */
const STALE_TEMP_MS = 10 * 60_000;

/**
 * mkdir -p, one level at a time. Node's recursive mkdir loops forever where the
 * kernel answers ENOENT for a parent that exists (e.g. under /proc/1/); this
 * walks each component once and fails with the real errno.
 */
export async function makeDirs(dir: string, mode: number): Promise<void> {
  const parts = path.resolve(dir).split(path.sep).filter(Boolean);
  let cur: string = path.sep;
  for (const part of parts) {
    cur = path.join(cur, part);
    try {
      await fsp.mkdir(cur, { mode });
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      const st = await fsp.stat(cur);
      if (!st.isDirectory()) throw Object.assign(new Error(`${cur} exists and is not a directory`), { code: 'ENOTDIR' });
    }
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try { await fh.sync(); } finally { await fh.close(); }
}

/**
 * Writes dir/name (mode 0600) so that a crash leaves either the old state or
 * the whole file: never half a file. Returns the file's path; on failure the
 * temp file is removed and the fs error thrown.
 */
export async function writeFileAtomic(dir: string, name: string, data: Uint8Array): Promise<string> {
  const tmp = path.join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
  const final = path.join(dir, name);
  try {
    const fh = await fsp.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, final);
    await fsyncDir(dir);
  } catch (err) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
  return final;
}

/** Whether the writer of a temp file still runs (EPERM: it runs as another user). */
function writerAlive(tempName: string): boolean {
  const writer = Number(/^\.tmp-(\d+)-/.exec(tempName)?.[1] ?? 0);
  if (writer <= 0) return false;
  try { process.kill(writer, 0); return true; } catch (err) { return errnoOf(err) === 'EPERM'; }
}

/** Deletes temp files left by writers that died (or stalled for STALE_TEMP_MS). */
export async function removeStaleTemps(dir: string, now: () => number, log: (level: 'info' | 'warn', message: string) => void): Promise<void> {
  for (const name of await fsp.readdir(dir)) {
    if (!name.startsWith(TEMP_PREFIX)) continue;
    const full = path.join(dir, name);
    const alive = writerAlive(name);
    try {
      const st = await fsp.stat(full);
      if (alive && now() - st.mtimeMs < STALE_TEMP_MS) continue;
      await fsp.unlink(full);
      log('info', `removed stale temp file ${name} (a writer died mid-write)`);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') log('warn', `cannot remove stale temp file ${name}: ${(err as Error).message}`);
    }
  }
}
