/**
 * The one shared protobuf codec for the viewer protocol and the bundle format.
 *
 * proto/premortem.proto is the source of truth. This module parses its text at
 * run time with protobufjs (no generated code, no hand-kept copies of the
 * schema) and offers typed encode/decode for ServerMessage, ClientMessage and
 * Bundle. It uses no Node API, so the viewer bundles it with esbuild:
 *
 *   // viewer (esbuild: loader { '.proto': 'text' })
 *   import protoText from '../../proto/premortem.proto';   // from viewer/src
 *   const codec = createCodec(protoText);
 *
 *   // agent (Node): proto/node.ts reads the file once
 *   import { loadCodec } from './node';
 *
 * Plain-object form (what encode takes and decode returns):
 *   - field names are lowerCamelCase (protobufjs default, proto3 JSON mapping);
 *   - 64-bit integers are JS numbers (exact below 2^53, which covers every
 *     time, byte count and counter premortem produces);
 *   - enums are kebab-case strings without their prefix: VERDICT_KIND_OOM_KILLED
 *     becomes 'oom-killed'; a value this reader does not know becomes the
 *     enum's zero value ('unknown', 'info', 'none');
 *   - decode fills every scalar, list and map with its default, so readers
 *     need no `?? 0`; singular sub-messages stay undefined when absent;
 *   - a oneof reports the member that is set in `body` ('hello', 'delta', ...).
 *
 * Decoding never throws anything but ProtoError (code PREMORTEM_ERR_PROTO_DECODE),
 * whatever bytes come in; the try* variants return a result instead.
 *
 * The types live in proto/types/, the conversion to and from plain objects in
 * plain.ts, the error in proto-error.ts; all of it is exported from here.
 */
import * as protobuf from 'protobufjs';
import { createPlainConverter } from './plain';
import { ProtoError } from './proto-error';
import type { Bundle, ClientMessage, Hello, ServerMessage } from './types';

/** Version of the viewer protocol this build speaks. */
export const PROTOCOL_VERSION = 1;
/** Oldest client protocol version this build still serves. */
export const MIN_CLIENT_VERSION = 1;
/** Version of the Bundle layout written by this build. */
export const BUNDLE_FORMAT_VERSION = 1;
/** Protobuf package of every message. */
export const PROTO_PACKAGE = 'premortem.v1';

// ---------------------------------------------------------------- types
// The types mirroring proto/premortem.proto live in proto/types/ (one module per
// thing described); every importer keeps importing them from here.

export * from './types';

/** What encode accepts: any subset of fields, at any depth. */
export type DeepPartial<T> = T extends (infer U)[] ? DeepPartial<U>[]
  : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

// ---------------------------------------------------------------- errors

export { ProtoError, type ProtoErrorCode } from './proto-error';

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: ProtoError };

// ---------------------------------------------------------------- codec

export interface Codec {
  /** The parsed schema, for tools that need reflection. */
  readonly root: protobuf.Root;
  /** Fills protocolVersion with PROTOCOL_VERSION when absent. Throws ProtoError. */
  encodeServerMessage(msg: DeepPartial<ServerMessage>): Uint8Array;
  decodeServerMessage(bytes: Uint8Array): ServerMessage;
  tryDecodeServerMessage(bytes: Uint8Array): DecodeResult<ServerMessage>;
  /** Fills protocolVersion with PROTOCOL_VERSION when absent. Throws ProtoError. */
  encodeClientMessage(msg: DeepPartial<ClientMessage>): Uint8Array;
  decodeClientMessage(bytes: Uint8Array): ClientMessage;
  tryDecodeClientMessage(bytes: Uint8Array): DecodeResult<ClientMessage>;
  /** Fills formatVersion with BUNDLE_FORMAT_VERSION when absent. Throws ProtoError. */
  encodeBundle(bundle: DeepPartial<Bundle>): Uint8Array;
  decodeBundle(bytes: Uint8Array): Bundle;
  tryDecodeBundle(bytes: Uint8Array): DecodeResult<Bundle>;
  /** Normalise a partial object to the decoded form (defaults filled), without bytes. */
  normalize<T>(typeName: string, obj: unknown): T;
  /** Like normalize, but absent sub-messages are null: every field appears (for JSON export). */
  toJSON(typeName: string, obj: unknown): Record<string, unknown>;
  /** Generic forms, by message name inside premortem.v1 ('Delta', 'IncidentSummary'...). */
  encode(typeName: string, obj: unknown): Uint8Array;
  decode<T>(typeName: string, bytes: Uint8Array): T;
}

function parseSchema(protoText: string): protobuf.Root {
  try {
    const root = protobuf.parse(protoText, { keepCase: false }).root;
    root.resolveAll();
    return root;
  } catch (err) {
    throw new ProtoError('PREMORTEM_ERR_PROTO_SCHEMA', `premortem.proto does not parse: ${(err as Error).message}`, { cause: err });
  }
}

/** Messages of premortem.v1 by name, looked up once each. */
function typeLookup(root: protobuf.Root): (name: string) => protobuf.Type {
  const types = new Map<string, protobuf.Type>();
  return (name) => {
    let t = types.get(name);
    if (!t) {
      try {
        t = root.lookupType(`${PROTO_PACKAGE}.${name}`);
      } catch (err) {
        throw new ProtoError('PREMORTEM_ERR_PROTO_SCHEMA', `premortem.proto has no message ${name}`, { cause: err });
      }
      types.set(name, t);
    }
    return t;
  };
}

/** Parse the .proto text once; every encode/decode afterwards uses reflection. */
export function createCodec(protoText: string): Codec {
  const root = parseSchema(protoText);
  const typeOf = typeLookup(root);
  for (const required of ['ServerMessage', 'ClientMessage', 'Bundle']) typeOf(required);

  const { toPlain, fromPlain } = createPlainConverter();

  function encode(typeName: string, obj: unknown): Uint8Array {
    const type = typeOf(typeName);
    const plain = fromPlain(type, obj, typeName) as Record<string, unknown>;
    const problem = type.verify(plain);
    if (problem) throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${typeName}: ${problem}`);
    try {
      return type.encode(type.fromObject(plain)).finish();
    } catch (err) {
      throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${typeName}: ${(err as Error).message}`, { cause: err });
    }
  }
  function decode<T>(typeName: string, bytes: Uint8Array): T {
    const type = typeOf(typeName);
    if (!(bytes instanceof Uint8Array)) {
      throw new ProtoError('PREMORTEM_ERR_PROTO_DECODE', `${typeName}: bytes expected`);
    }
    try {
      return toPlain(type, type.decode(bytes)) as T;
    } catch (err) {
      // protobufjs throws RangeError/Error on truncated or misframed input, and a
      // stack overflow is a RangeError too: all of it is the peer's fault.
      const reason = err instanceof Error ? err.message : String(err);
      throw new ProtoError('PREMORTEM_ERR_PROTO_DECODE', `malformed ${typeName} (${bytes.length} bytes): ${reason}`, { cause: err });
    }
  }
  function tryDecode<T>(typeName: string, bytes: Uint8Array): DecodeResult<T> {
    try {
      return { ok: true, value: decode<T>(typeName, bytes) };
    } catch (err) {
      if (err instanceof ProtoError) return { ok: false, error: err };
      return { ok: false, error: new ProtoError('PREMORTEM_ERR_PROTO_DECODE', String(err), { cause: err }) };
    }
  }
  function normalize<T>(typeName: string, obj: unknown, nulls = false): T {
    const type = typeOf(typeName);
    const plain = fromPlain(type, obj, typeName) as Record<string, unknown>;
    const problem = type.verify(plain);
    if (problem) throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${typeName}: ${problem}`);
    return toPlain(type, type.fromObject(plain), nulls) as T;
  }
  const withVersion = <T extends object>(obj: T, key: string, version: number): T =>
    ((obj as Record<string, unknown>)[key] == null ? { ...obj, [key]: version } : obj);

  return {
    root,
    encodeServerMessage: (m) => encode('ServerMessage', withVersion(m, 'protocolVersion', PROTOCOL_VERSION)),
    decodeServerMessage: (b) => decode<ServerMessage>('ServerMessage', b),
    tryDecodeServerMessage: (b) => tryDecode<ServerMessage>('ServerMessage', b),
    encodeClientMessage: (m) => encode('ClientMessage', withVersion(m, 'protocolVersion', PROTOCOL_VERSION)),
    decodeClientMessage: (b) => decode<ClientMessage>('ClientMessage', b),
    tryDecodeClientMessage: (b) => tryDecode<ClientMessage>('ClientMessage', b),
    encodeBundle: (m) => encode('Bundle', withVersion(m, 'formatVersion', BUNDLE_FORMAT_VERSION)),
    decodeBundle: (b) => decode<Bundle>('Bundle', b),
    tryDecodeBundle: (b) => tryDecode<Bundle>('Bundle', b),
    normalize: (typeName, obj) => normalize(typeName, obj),
    toJSON: (typeName, obj) => normalize<Record<string, unknown>>(typeName, obj, true),
    encode,
    decode,
  };
}

// ---------------------------------------------------------------- helpers

export interface VersionProblem { code: 'PREMORTEM_ERR_CLIENT_TOO_OLD' | 'PREMORTEM_ERR_CLIENT_TOO_NEW'; message: string }

/**
 * Whether a peer speaking `clientVersion` can be served by this build. The
 * message is meant for a human looking at the viewer.
 */
export function checkClientVersion(clientVersion: number): VersionProblem | null {
  if (clientVersion < MIN_CLIENT_VERSION) {
    return {
      code: 'PREMORTEM_ERR_CLIENT_TOO_OLD',
      message: `this viewer speaks protocol ${clientVersion}, the agent needs at least ${MIN_CLIENT_VERSION}: ` +
        'reload the page to get the viewer that matches the agent',
    };
  }
  if (clientVersion > PROTOCOL_VERSION) {
    return {
      code: 'PREMORTEM_ERR_CLIENT_TOO_NEW',
      message: `this viewer speaks protocol ${clientVersion}, the agent only knows up to ${PROTOCOL_VERSION}: ` +
        'upgrade the premortem agent or use the viewer it serves',
    };
  }
  return null;
}

/**
 * What a viewer should tell its user after Hello: null when it can go on.
 * `viewerVersion` is the PROTOCOL_VERSION the viewer was built with.
 */
export function checkServerHello(hello: Hello, viewerVersion: number = PROTOCOL_VERSION): string | null {
  if (viewerVersion < hello.minClientVersion) {
    return `this viewer (protocol ${viewerVersion}) is older than the agent supports ` +
      `(${hello.minClientVersion}..${hello.protocolVersion}): reload the page`;
  }
  if (viewerVersion > hello.protocolVersion) {
    return `the agent speaks protocol ${hello.protocolVersion}, older than this viewer (${viewerVersion}): ` +
      'upgrade the agent or use the viewer it serves';
  }
  return null;
}

/** "pid:start_ticks": the identity of a worker, stable across pid reuse. */
export function workerKey(pid: number, startTicks: number): string {
  return `${pid}:${startTicks}`;
}

export function parseWorkerKey(key: string): { pid: number; startTicks: number } | null {
  const m = /^(\d{1,10}):(\d{1,20})$/.exec(key);
  if (!m) return null;
  return { pid: Number(m[1]), startTicks: Number(m[2]) };
}
