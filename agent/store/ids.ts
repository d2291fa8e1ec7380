/** Bundle ids and the file names they live under. */
import { randomBytes } from 'crypto';
import { StoreError } from './errors';

export const BUNDLE_FILE_EXT = '.pmb';

/** A file name on every file system, never a path: no separators, no leading dot, no "..". */
export const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidBundleId(id: string): boolean {
  return ID_RE.test(id) && !id.includes('..');
}

/** Throws PREMORTEM_ERR_BUNDLE_BAD_ID for anything that is not a bundle id. */
export function checkBundleId(id: string): void {
  if (typeof id !== 'string' || !isValidBundleId(id)) {
    throw new StoreError('PREMORTEM_ERR_BUNDLE_BAD_ID', `'${String(id)}' is not a bundle id`);
  }
}

/** "20251126-170003-412-4242-ab12": UTC time of death, pid, random suffix. */
export function makeBundleId(tMs: number, pid: number): string {
  const d = new Date(tMs);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${p(d.getUTCMilliseconds(), 3)}`;
  return `${stamp}-${pid}-${randomBytes(2).toString('hex')}`;
}

/** "<id>.pmb" */
export function bundleFileName(id: string): string {
  return id + BUNDLE_FILE_EXT;
}

/** The id of a bundle file name, or undefined when the name is not one. */
export function idOfFileName(name: string): string | undefined {
  if (!name.endsWith(BUNDLE_FILE_EXT) || name.startsWith('.')) return undefined;
  const id = name.slice(0, -BUNDLE_FILE_EXT.length);
  return isValidBundleId(id) ? id : undefined;
}
