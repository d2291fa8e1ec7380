/**
 * The viewer's codec: the agent's own loader (proto/codec.ts) over the schema
 * text that esbuild embeds at build time. No second copy of the schema exists.
 */
import protoText from '../../proto/premortem.proto';
import { createCodec, type Bundle, type Codec } from '../../proto/codec';
import { hasBundleFileHeader, splitBundleFile } from '../../proto/bundle-file';

export {
  PROTOCOL_VERSION, checkServerHello, workerKey,
} from '../../proto/codec';
export type {
  Bucket, Bundle, Death, Delta, Evidence, Hello, HostBucket, Identity, IncidentSummary, Lost, Marker, Service,
  ServiceBucket, ServerMessage, Snapshot, Verdict, VerdictKind, Worker, WorkerTimeline, Feature, History,
} from '../../proto/codec';

let cached: Codec | undefined;

export function codec(): Codec {
  return (cached ??= createCodec(protoText));
}

/**
 * A post-mortem from bytes: the raw protobuf Bundle (GET /api/incidents/:id.pb,
 * `premortem export --format pb`) or a store file (.pmb, "PMB1" header first).
 * Throws an Error whose message says what is wrong with the file.
 */
export function decodeBundleBytes(bytes: Uint8Array): Bundle {
  let payload = bytes;
  if (hasBundleFileHeader(bytes)) {
    try {
      payload = splitBundleFile(bytes).payload;
    } catch (e) {
      throw new Error(`this premortem bundle file is truncated or corrupt: ${(e as Error).message}`);
    }
  }
  const r = codec().tryDecodeBundle(payload);
  if (!r.ok) throw new Error(`not a premortem bundle: ${r.error.message}`);
  const b = r.value;
  if (!b.id && !b.worker && !b.timelines.length) throw new Error('not a premortem bundle: it holds no worker, verdict or timeline');
  return b;
}
