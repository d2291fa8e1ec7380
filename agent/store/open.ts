/**
 * Opening a store's directory. Writable: create it (mode 0700), delete stale
 * temp files, index, apply retention. Read-only: the directory must exist and
 * be listable; nothing is changed.
 */
import { promises as fsp } from 'fs';
import { errnoOf, StoreError } from './errors';
import { makeDirs, removeStaleTemps } from './disk';
import { retain, type StoreContext } from './context';

async function openReadOnly(ctx: StoreContext): Promise<void> {
  const { dir } = ctx;
  try {
    const st = await fsp.stat(dir);
    if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    await ctx.index.sync();
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT') {
      throw new StoreError('PREMORTEM_ERR_STORE_NOT_FOUND',
        `${dir} does not exist: no post-mortems there (the agent creates it on its first run; check --data-dir or PREMORTEM_DATA_DIR)`, { cause: err, errno });
    }
    throw new StoreError('PREMORTEM_ERR_STORE_UNREADABLE',
      `cannot read the bundle directory ${dir} (${errno ?? (err as Error).message}): ${errno === 'ENOTDIR' ? 'it is not a directory' : 'check its permissions, or run as the agent\'s user'}`, { cause: err, errno });
  }
}

export async function openStoreDir(ctx: StoreContext): Promise<void> {
  if (ctx.readOnly) return openReadOnly(ctx);
  const { dir, log } = ctx;
  try {
    await makeDirs(dir, 0o700);
  } catch (err) {
    throw ctx.failures.io(`cannot create the bundle directory ${dir}`, err);
  }
  try {
    const st = await fsp.stat(dir);
    if ((st.mode & 0o077) !== 0) await fsp.chmod(dir, 0o700);
  } catch (err) {
    log('warn', `cannot set ${dir} to mode 0700: ${(err as Error).message}`);
  }
  try {
    await removeStaleTemps(dir, ctx.now, log);
    await ctx.index.sync();
  } catch (err) {
    throw ctx.failures.io(`cannot read the bundle directory ${dir}`, err);
  }
  try {
    await retain(ctx);
  } catch (err) {
    log('warn', `retention could not delete old bundles in ${dir}: ${(err as Error).message}`);
  }
}
