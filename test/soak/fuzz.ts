/**
 * Fuzzing (reliability item 10), property-based with fast-check, for a fixed
 * budget of runs (short in npm test, long in the soak):
 *   - decodeBatch over every registered probe decoder: structured batches
 *     (valid headers of every known record type with random bodies, wrong sizes,
 *     truncated tails) and raw bytes. Only RecordFormatError may escape; each
 *     batch decodes in bounded time (no hang): a walk never goes backwards.
 *   - the client-message parser: tryDecodeClientMessage never throws (errors
 *     are values, ProtoError); arbitrary and mutated-valid ClientMessages.
 *   - the server's handling: random frames over a real WebSocket end in one of
 *     the documented close codes or are served; the server answers /api/health
 *     after every batch.
 */
import fc from 'fast-check';
import { decodeBatch, LAYOUT, RecordFormatError } from '../../agent/records';
import '../../agent/probes';
import { ProtoError, PROTOCOL_VERSION } from '../../proto/codec';
import { createServer } from '../../agent/server';
import { codec, connect, healthOf } from './harness';

const HDR = LAYOUT.hdr.size;
/** Known record types and their sizes, from the registered layouts. */
const KNOWN: Array<{ type: number; size: number }> = Object.values(LAYOUT)
  .filter((l): l is typeof l & { type: number } => typeof (l as { type?: number }).type === 'number')
  .map((l) => ({ type: (l as { type: number }).type, size: l.size }));

function record(type: number, size: number, body: Uint8Array): Uint8Array {
  const b = new Uint8Array(Math.max(size, HDR));
  b.set(body.subarray(0, b.length - HDR), HDR);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, type, true);
  dv.setUint16(2, size, true);
  return b;
}

const recordArb = fc.oneof(
  // A known type at its right size, random fields.
  fc.tuple(fc.constantFrom(...KNOWN), fc.uint8Array({ minLength: 0, maxLength: 600 }))
    .map(([k, body]) => record(k.type, k.size, body)),
  // A known type with a wrong size (short, long, odd, zero).
  fc.tuple(fc.constantFrom(...KNOWN), fc.integer({ min: 0, max: 2048 }), fc.uint8Array({ maxLength: 600 }))
    .map(([k, size, body]) => record(k.type, size, body).subarray(0, Math.max(size, HDR))),
  // Any type and size.
  fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), fc.uint8Array({ maxLength: 300 }))
    .map(([t, size, body]) => record(t, size, body).subarray(0, Math.min(Math.max(size, HDR), HDR + body.length))),
);

const batchArb = fc.oneof(
  fc.tuple(fc.array(recordArb, { maxLength: 40 }), fc.nat(64)).map(([recs, cut]) => {
    const total = recs.reduce((a, r) => a + r.length, 0);
    const out = new Uint8Array(total);
    let o = 0;
    for (const r of recs) { out.set(r, o); o += r.length; }
    return out.subarray(0, Math.max(0, total - (cut % 9 === 0 ? cut : 0)));
  }),
  fc.uint8Array({ maxLength: 4096 }),
);

export function fuzzDecoder(numRuns: number): { runs: number; records: number; typedErrors: number; maxMs: number } {
  let records = 0, typedErrors = 0, maxMs = 0;
  fc.assert(fc.property(batchArb, (bytes) => {
    const buf = bytes.slice().buffer;
    const t0 = performance.now();
    try {
      records += decodeBatch(buf, () => undefined);
    } catch (e) {
      if (!(e instanceof RecordFormatError)) throw e;
      typedErrors++;
    }
    const ms = performance.now() - t0;
    maxMs = Math.max(maxMs, ms);
    return ms < 1000; // a hang, not a loaded machine (a batch decodes in µs; 24 ms seen beside a CPU hog)
  }), { numRuns });
  return { runs: numRuns, records, typedErrors, maxMs };
}

const validClient = fc.record({
  protocolVersion: fc.oneof(fc.constant(PROTOCOL_VERSION), fc.nat(5)),
  subscribe: fc.option(fc.record({ workerKeys: fc.array(fc.string({ maxLength: 40 }), { maxLength: 20 }), serviceIds: fc.array(fc.string({ maxLength: 300 }), { maxLength: 5 }), all: fc.boolean() }), { nil: undefined }),
  historyRequest: fc.option(fc.record({ requestId: fc.nat(), workerKey: fc.string({ maxLength: 30 }), fromMs: fc.nat(), toMs: fc.nat() }), { nil: undefined }),
}).map((m) => {
  const msg: Record<string, unknown> = { protocolVersion: m.protocolVersion };
  if (m.subscribe) msg.subscribe = m.subscribe;
  else if (m.historyRequest) msg.historyRequest = m.historyRequest;
  return codec.encodeClientMessage(msg as never);
});
/** Valid messages with a few bytes flipped, cut or appended. */
const clientBytesArb = fc.oneof(
  validClient,
  fc.tuple(validClient, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }), fc.nat(), fc.uint8Array({ maxLength: 8 })).map(([b, flips, cut, tail]) => {
    const out = Buffer.concat([b.slice(0, b.length ? cut % (b.length + 1) : 0), tail]);
    for (const [i, v] of flips) if (out.length) out[i % out.length] = v;
    return new Uint8Array(out);
  }),
  fc.uint8Array({ maxLength: 512 }),
);

export function fuzzClientParser(numRuns: number): { runs: number; ok: number; errors: number } {
  let ok = 0, errors = 0;
  fc.assert(fc.property(clientBytesArb, (bytes) => {
    const r = codec.tryDecodeClientMessage(bytes);
    if (r.ok) ok++;
    else { errors++; if (!(r.error instanceof ProtoError)) throw r.error; }
  }), { numRuns });
  return { runs: numRuns, ok, errors };
}

const ALLOWED_CLOSE = new Set([1000, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 4001]);

/** Random frames over real WebSockets to a real server: documented closes only, and the server stays up. */
export async function fuzzServer(numRuns: number): Promise<{ runs: number; closes: Record<number, number>; served: number }> {
  const server = createServer({ host: '127.0.0.1', port: 0, logger: { debug() {}, info() {}, warn() {}, error() {} }, maxClientMessagesPerSec: 1000,
    hooks: { history: async () => ({ timelines: [], markers: [] }) } });
  const { url } = await server.listen();
  const ws = url.replace(/^http/, 'ws') + 'ws';
  const closes: Record<number, number> = {};
  let served = 0;
  try {
    const samples = fc.sample(fc.array(fc.oneof(clientBytesArb, fc.string({ maxLength: 20 }).map((s) => s as string | Uint8Array)), { minLength: 1, maxLength: 6 }), numRuns);
    for (const frames of samples) {
      const v = await connect(ws);
      for (const f of frames) v.ws.send(f);
      // A close comes at once; 500 ms leaves room for a loaded machine (a served connection costs it).
      const code = await Promise.race([v.closed.then((c) => c.code), new Promise<number>((r) => setTimeout(() => r(-1), 500))]);
      if (code === -1) { served++; v.ws.terminate(); } else {
        closes[code] = (closes[code] ?? 0) + 1;
        if (!ALLOWED_CLOSE.has(code)) throw new Error(`undocumented close ${code} for frames ${JSON.stringify(frames.map((f) => Buffer.from(f as Uint8Array).toString('hex')))}`);
      }
    }
    const h = await healthOf(url);
    if (!h.ok) throw new Error('the server stopped answering');
  } finally {
    await server.close();
  }
  return { runs: numRuns, closes, served };
}
