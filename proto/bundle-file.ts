/**
 * The post-mortem file: a protobuf premortem.v1.Bundle behind a fixed header,
 * as the agent's store writes it (<id>.pmb) and the viewer opens it.
 *
 *   offset 0   4 bytes  magic "PMB1"
 *   offset 4   4 bytes  payload length, u32 little-endian
 *   offset 8  32 bytes  SHA-256 of the payload
 *   offset 40  payload  protobuf premortem.v1.Bundle (proto/premortem.proto)
 *
 * Pure byte handling (no Node or browser API): the digest is computed by the
 * caller (the agent with node:crypto; the viewer trusts the length check).
 */
export const BUNDLE_FILE_MAGIC = 'PMB1';
export const BUNDLE_HEADER_BYTES = 40;
const DIGEST_OFFSET = 8;
const MAGIC = [0x50, 0x4d, 0x42, 0x31]; // "PMB1"

export class BundleFileError extends Error {
  readonly code = 'PREMORTEM_ERR_BUNDLE_CORRUPT';
}

/** The header of a payload of `payloadBytes` bytes whose SHA-256 is `sha256` (32 bytes). */
export function bundleFileHeader(payloadBytes: number, sha256: Uint8Array): Uint8Array {
  const header = new Uint8Array(BUNDLE_HEADER_BYTES);
  header.set(MAGIC, 0);
  new DataView(header.buffer).setUint32(4, payloadBytes, true);
  header.set(sha256.subarray(0, 32), DIGEST_OFFSET);
  return header;
}

export function hasBundleFileHeader(bytes: Uint8Array): boolean {
  return bytes.length >= BUNDLE_HEADER_BYTES && MAGIC.every((b, i) => bytes[i] === b);
}

/** The payload and the digest its header claims; BundleFileError saying what is wrong otherwise. */
export function splitBundleFile(bytes: Uint8Array): { payload: Uint8Array; sha256: Uint8Array } {
  if (bytes.length < BUNDLE_HEADER_BYTES) throw new BundleFileError(`${bytes.length} bytes is shorter than the header`);
  if (!hasBundleFileHeader(bytes)) throw new BundleFileError('bad magic (not a premortem bundle)');
  const length = new DataView(bytes.buffer, bytes.byteOffset + 4, 4).getUint32(0, true);
  if (bytes.length !== BUNDLE_HEADER_BYTES + length) {
    throw new BundleFileError(`header says ${length} payload bytes, file holds ${bytes.length - BUNDLE_HEADER_BYTES} (truncated?)`);
  }
  return { payload: bytes.subarray(BUNDLE_HEADER_BYTES), sha256: bytes.subarray(DIGEST_OFFSET, BUNDLE_HEADER_BYTES) };
}
