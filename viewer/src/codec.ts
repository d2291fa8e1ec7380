/**
 * The viewer's codec: the agent's own loader (agent/proto.ts) over the schema
 * text that esbuild embeds at build time. No second copy of the schema exists.
 */
import protoText from '../../proto/premortem.proto';
import { createCodec, type Bundle, type Codec } from '../../agent/proto';

export {
  PROTOCOL_VERSION, checkServerHello, workerKey,
} from '../../agent/proto';
export type {
  Bucket, Bundle, Death, Delta, Evidence, Hello, HostBucket, Identity, IncidentSummary, Lost, Marker, Service,
  ServiceBucket, ServerMessage, Snapshot, Verdict, VerdictKind, Worker, WorkerTimeline, Feature, History,
} from '../../agent/proto';

let cached: Codec | undefined;

export function codec(): Codec {
  return (cached ??= createCodec(protoText));
}

/** On-disk bundle files (agent/store.ts) start with this header before the protobuf payload. */
const FILE_MAGIC = [0x50, 0x4d, 0x42, 0x31]; // "PMB1"
const FILE_HEADER_BYTES = 40;

/**
 * A post-mortem from bytes: the raw protobuf Bundle (GET /api/incidents/:id.pb,
 * `premortem export --format pb`) or a store file (.pmb, "PMB1" header first).
 * Throws an Error whose message says what is wrong with the file.
 */
export function decodeBundleBytes(bytes: Uint8Array): Bundle {
  let payload = bytes;
  if (bytes.length >= FILE_HEADER_BYTES && FILE_MAGIC.every((b, i) => bytes[i] === b)) {
    const len = new DataView(bytes.buffer, bytes.byteOffset + 4, 4).getUint32(0, true);
    if (FILE_HEADER_BYTES + len !== bytes.length) {
      throw new Error(`this premortem bundle file is truncated or corrupt (header says ${len} bytes of payload, file has ${bytes.length - FILE_HEADER_BYTES})`);
    }
    payload = bytes.subarray(FILE_HEADER_BYTES);
  }
  const r = codec().tryDecodeBundle(payload);
  if (!r.ok) throw new Error(`not a premortem bundle: ${r.error.message}`);
  const b = r.value;
  if (!b.id && !b.worker && !b.timelines.length) throw new Error('not a premortem bundle: it holds no worker, verdict or timeline');
  return b;
}
