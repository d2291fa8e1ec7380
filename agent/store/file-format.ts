/**
 * A bundle file: the header of proto/bundle-file.ts (magic, payload length,
 * SHA-256 of the payload), then the protobuf Bundle. Here the digest is made
 * and checked (node's crypto; proto/ stays free of Node).
 */
import { createHash } from 'crypto';
import { bundleFileHeader, splitBundleFile } from '../../proto/bundle-file';
import { StoreError } from './errors';

export { BUNDLE_HEADER_BYTES } from '../../proto/bundle-file';

/** Wraps a Bundle payload in the file header (proto/bundle-file.ts). */
export function encodeBundleFile(payload: Uint8Array): Buffer {
  const digest = createHash('sha256').update(payload).digest();
  return Buffer.concat([bundleFileHeader(payload.length, digest), payload]);
}

/** The payload of a bundle file, or a StoreError PREMORTEM_ERR_BUNDLE_CORRUPT saying what is wrong. */
export function decodeBundleFile(file: Uint8Array, name = 'bundle'): Uint8Array {
  const corrupt = (why: string) => new StoreError('PREMORTEM_ERR_BUNDLE_CORRUPT', `${name} is corrupt: ${why}`);
  let parts: ReturnType<typeof splitBundleFile>;
  try {
    parts = splitBundleFile(file);
  } catch (e) {
    throw corrupt((e as Error).message);
  }
  const digest = createHash('sha256').update(parts.payload).digest();
  if (!digest.equals(parts.sha256)) throw corrupt('SHA-256 mismatch');
  return parts.payload;
}
