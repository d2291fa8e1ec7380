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
 */
import * as protobuf from 'protobufjs';

/** Version of the viewer protocol this build speaks. */
export const PROTOCOL_VERSION = 1;
/** Oldest client protocol version this build still serves. */
export const MIN_CLIENT_VERSION = 1;
/** Version of the Bundle layout written by this build. */
export const BUNDLE_FORMAT_VERSION = 1;
/** Protobuf package of every message. */
export const PROTO_PACKAGE = 'premortem.v1';

// ---------------------------------------------------------------- types
// These mirror proto/premortem.proto; test/unit/proto.test.ts fails when a field or
// enum value exists on one side only.

export type Role = 'unknown' | 'master' | 'worker' | 'standalone';
export type ServiceKind =
  | 'unknown' | 'gunicorn' | 'uvicorn' | 'uwsgi' | 'hypercorn' | 'daphne' | 'celery' | 'python';
export type WorkerState = 'unknown' | 'alive' | 'dead';
export type Severity = 'info' | 'warning' | 'critical';
export type VerdictKind =
  | 'unknown' | 'oom-killed' | 'killed-by-master' | 'killed-by-other' | 'crashed' | 'exited';
export type OomScope = 'none' | 'cgroup' | 'global';
/** Who sent a fatal signal, by role (agent/deaths/roles.ts). */
export type SenderRole =
  | 'unknown' | 'master' | 'kernel-oom' | 'systemd-oomd' | 'systemd' | 'kubelet' | 'container-runtime'
  | 'supervisor' | 'operator' | 'script' | 'self' | 'kernel' | 'init' | 'other' | 'shell';

export interface Identity {
  pid: number; startTicks: number; comm: string; cmdline: string; serviceId: string;
  generation: number; role: Role; ppid: number; startedMs: number; slot: number;
}
export interface Service {
  id: string; name: string; kind: ServiceKind; masterPid: number; masterStartTicks: number;
  ports: number[]; cgroup: string; unit: string;
}
export interface Worker { identity?: Identity; state: WorkerState; lastVerdict?: Verdict; diedMs: number }
export interface Bucket {
  tMs: number; intervalMs: number;
  runqP50Us: number; runqP99Us: number; runqMaxUs: number; runqCount: number; runqHist: number[];
  involuntarySwitches: number; voluntarySwitches: number; cpuMs: number;
  minorFaults: number; majorFaults: number; rssBytes: number; rssSlopeBytesPerS: number;
  cgroupUsageBytes: number; cgroupLimitBytes: number; dstateNs: number; dstateMaxNs: number;
  bioReadBytes: number; bioWriteBytes: number; bioOps: number;
  gcPauses: number; gcPauseNs: number; gcMaxPauseNs: number; threads: number; gap: boolean;
  signalsReceived: number; bioLatP99Us: number; bioLatMaxUs: number;
}
export interface ServiceBucket {
  serviceId: string; tMs: number; socketStates: Record<string, number>;
  backlogDepth: number; backlogMax: number; retransmits: number; resetsSent: number;
  resetsReceived: number; listenDrops: number; cpuThrottledUs: number; nrThrottled: number;
  workersAlive: number; deaths: number; gap: boolean;
}
export interface HostBucket {
  tMs: number; psiMemSomeAvg10: number; psiMemFullAvg10: number; psiCpuSomeAvg10: number;
  psiIoSomeAvg10: number; load1: number; memTotalBytes: number; memAvailableBytes: number;
  psiIoFullAvg10: number; devices: DeviceBucket[];
}
export interface DeviceBucket {
  device: string; ops: number; readBytes: number; writeBytes: number; latP50Us: number; latP99Us: number;
  latMaxUs: number; slow: number; errors: number;
}
export interface Marker {
  tMs: number; kind: string; pid: number; startTicks: number; serviceId: string;
  severity: Severity; message: string; numbers: Record<string, number>; details: Record<string, string>;
}
export interface WorkerTimeline { identity?: Identity; buckets: Bucket[] }
export interface Evidence { what: string; value: string; tMs: number; number: number; unit: string }
export interface Verdict {
  kind: VerdictKind; exitCode: number; signal: number; coreDumped: boolean; senderPid: number;
  senderComm: string; oomScope: OomScope; cgroupPath: string; limitBytes: number; usageBytes: number;
  summary: string; evidence: Evidence[]; tMs: number; signalName: string; failure: boolean;
  /** Who sent the fatal (or stop) signal, by role; absent when no process sent one. */
  sender?: Sender;
  /** The Python frame it was in at its last stack before the kill (decode fills the times; writers may leave them out). */
  lastFrame?: PyFrame; lastFrameSinceMs?: number; lastFrameUntilMs?: number;
}
/** The sender of a signal as read from /proc when its record arrived. */
export interface Sender {
  role: SenderRole; pid: number; comm: string; exe: string; cmdline: string; ppid: number; tty: string;
  ancestors: string[]; reason: string; description: string; uid: number; readAtSignal: boolean;
}
export interface CgroupLimits {
  path: string; memoryMaxBytes: number; memoryHighBytes: number; memoryCurrentBytes: number;
  memoryPeakBytes: number; cpuQuotaUs: number; cpuPeriodUs: number; pidsMax: number;
  memoryEvents: Record<string, number>;
}
/** A Python frame read from outside the process (agent/python/stacks.ts); line 0: none. */
export interface PyFrame { file: string; function: string; line: number }
/** One thread's Python stack, innermost frame first. */
export interface PyThread { tid: number; name: string; frames: PyFrame[]; isMain: boolean; holdsGil: boolean; truncated: boolean }
/** Every thread of one process at one time; `error` is "" or "PREMORTEM_ERR_...: why". */
export interface PyStackSample { tMs: number; pid: number; threads: PyThread[]; error: string; pythonVersion: string }
export interface Bundle {
  formatVersion: number; id: string; createdMs: number; host: string; agentVersion: string;
  worker?: Identity; service?: Service; verdict?: Verdict; timelines: WorkerTimeline[];
  serviceBuckets: ServiceBucket[]; hostBuckets: HostBucket[]; markers: Marker[];
  cgroupLimits?: CgroupLimits; windowStartMs: number; windowEndMs: number; lostRecords: number;
  intervalMs: number; kernel: string;
  /** The dead worker's last Python stacks, oldest first (decode always fills it; writers may leave it out). */
  stacks?: PyStackSample[];
  /** How `stacks` were sampled; absent when stack sampling was off. */
  stackSampling?: StackSampling;
}
/** How a worker's Python stacks were sampled (agent/sampling/stacks.ts). */
export interface StackSampling {
  intervalMs: number; burstIntervalMs: number; samples: number; empty: number; failed: number; lastError: string;
  lastSampleMs: number; lastFramesMs: number; dropped: number;
}
export interface IncidentSummary {
  id: string; tMs: number; service: string; serviceId: string; pid: number; startTicks: number;
  verdictKind: VerdictKind; summary: string; failure: boolean; bytes: number;
}
export interface Feature { name: string; enabled: boolean; reason: string }
export interface Hello {
  agentVersion: string; protocolVersion: number; minClientVersion: number; features: Feature[];
  intervalMs: number; host: string; serverTimeMs: number; windowMs: number;
}
export interface Snapshot { tMs: number; services: Service[]; workers: Worker[] }
export interface WorkerBucket { pid: number; startTicks: number; serviceId: string; bucket?: Bucket }
export interface Delta {
  tMs: number; workers: WorkerBucket[]; services: ServiceBucket[]; host?: HostBucket;
  markers: Marker[]; intervalMs: number;
}
export interface Death { identity?: Identity; verdict?: Verdict; bundleId: string; tMs: number }
export interface BundleReady { incident?: IncidentSummary }
export interface Lost { probe: string; dropped: number; tMs: number; droppedTotal: number }
export interface History {
  requestId: number; timelines: WorkerTimeline[]; markers: Marker[]; fromMs: number; toMs: number;
  serviceBuckets: ServiceBucket[]; hostBuckets: HostBucket[];
}
export interface ProtoErrorMessage { code: string; message: string }

export type ServerBody =
  'hello' | 'snapshot' | 'delta' | 'death' | 'bundleReady' | 'lost' | 'history' | 'error';
export interface ServerMessage {
  protocolVersion: number;
  /** Which member of the oneof is set (filled by decode; ignored by encode). */
  body?: ServerBody;
  hello?: Hello; snapshot?: Snapshot; delta?: Delta; death?: Death; bundleReady?: BundleReady;
  lost?: Lost; history?: History; error?: ProtoErrorMessage;
}
export interface Subscribe { workerKeys: string[]; serviceIds: string[]; all: boolean }
export interface Unsubscribe { workerKeys: string[]; serviceIds: string[]; all: boolean }
export interface HistoryRequest { requestId: number; workerKey: string; fromMs: number; toMs: number; serviceId: string; host: boolean }
export type ClientBody = 'subscribe' | 'unsubscribe' | 'historyRequest';
export interface ClientMessage {
  protocolVersion: number;
  body?: ClientBody;
  subscribe?: Subscribe; unsubscribe?: Unsubscribe; historyRequest?: HistoryRequest;
}

/** What encode accepts: any subset of fields, at any depth. */
export type DeepPartial<T> = T extends (infer U)[] ? DeepPartial<U>[]
  : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

// ---------------------------------------------------------------- errors

export type ProtoErrorCode =
  | 'PREMORTEM_ERR_PROTO_DECODE'   // bytes are not a valid message of the expected type
  | 'PREMORTEM_ERR_PROTO_ENCODE'   // the object cannot be encoded (wrong type, unknown enum...)
  | 'PREMORTEM_ERR_PROTO_SCHEMA';  // the .proto text does not parse or lacks a message

export class ProtoError extends Error {
  readonly code: ProtoErrorCode;
  constructor(code: ProtoErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProtoError';
    this.code = code;
  }
}

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

const LONG_TYPES = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const UNSIGNED_TYPES = new Set(['uint32', 'uint64', 'fixed32', 'fixed64']);
const INT_TYPES = new Set([
  'int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'int64', 'uint64', 'sint64', 'fixed64', 'sfixed64',
]);

/** Per-enum tables between numeric values and kebab-case names. */
interface EnumTable { toName: Map<number, string>; toValue: Map<string, number>; zeroName: string }

function enumPrefix(name: string): string {
  // VerdictKind -> VERDICT_KIND_
  return name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase() + '_';
}

function buildEnumTable(e: protobuf.Enum): EnumTable {
  const prefix = enumPrefix(e.name);
  const toName = new Map<number, string>();
  const toValue = new Map<string, number>();
  for (const [full, value] of Object.entries(e.values)) {
    const bare = full.startsWith(prefix) ? full.slice(prefix.length) : full;
    const kebab = bare.toLowerCase().replace(/_/g, '-');
    if (!toName.has(value)) toName.set(value, kebab);
    toValue.set(kebab, value);
  }
  return { toName, toValue, zeroName: toName.get(0) ?? '' };
}

function longToNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && typeof (v as { toNumber?: unknown }).toNumber === 'function') {
    return (v as { toNumber(): number }).toNumber();
  }
  if (typeof v === 'string') return Number(v);
  return 0;
}

/** Parse the .proto text once; every encode/decode afterwards uses reflection. */
export function createCodec(protoText: string): Codec {
  let root: protobuf.Root;
  try {
    root = protobuf.parse(protoText, { keepCase: false }).root;
    root.resolveAll();
  } catch (err) {
    throw new ProtoError('PREMORTEM_ERR_PROTO_SCHEMA', `premortem.proto does not parse: ${(err as Error).message}`, { cause: err });
  }
  const types = new Map<string, protobuf.Type>();
  const enums = new Map<protobuf.Enum, EnumTable>();
  function typeOf(name: string): protobuf.Type {
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
  }
  function enumTable(e: protobuf.Enum): EnumTable {
    let t = enums.get(e);
    if (!t) { t = buildEnumTable(e); enums.set(e, t); }
    return t;
  }
  for (const required of ['ServerMessage', 'ClientMessage', 'Bundle']) typeOf(required);

  // ---- decoded message -> plain object
  function valueOut(field: protobuf.Field, v: unknown, nulls: boolean): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      const table = enumTable(rt);
      return table.toName.get(v as number) ?? table.zeroName;
    }
    if (rt instanceof protobuf.Type) return toPlain(rt, v as protobuf.Message, nulls);
    if (LONG_TYPES.has(field.type)) return longToNumber(v);
    return v;
  }
  function toPlain(type: protobuf.Type, m: protobuf.Message, nulls = false): Record<string, unknown> {
    const src = m as unknown as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const field of type.fieldsArray) {
      if (field.partOf && src[field.partOf.name] !== field.name) continue;
      const v = src[field.name];
      if (field.map) {
        const map: Record<string, unknown> = {};
        if (v && typeof v === 'object') {
          for (const k of Object.keys(v)) {
            if (k === '__proto__') continue; // never let a peer set a prototype
            map[k] = valueOut(field, (v as Record<string, unknown>)[k], nulls);
          }
        }
        out[field.name] = map;
      } else if (field.repeated) {
        out[field.name] = Array.isArray(v) ? v.map((x) => valueOut(field, x, nulls)) : [];
      } else if (field.resolvedType instanceof protobuf.Type) {
        if (v != null) out[field.name] = toPlain(field.resolvedType, v as protobuf.Message, nulls);
        else if (nulls && !field.partOf) out[field.name] = null;
      } else {
        out[field.name] = valueOut(field, v, nulls);
      }
    }
    for (const oneof of type.oneofsArray) {
      const set = src[oneof.name];
      if (typeof set === 'string') out[oneof.name] = set;
    }
    return out;
  }

  // ---- plain object -> protobufjs-ready object (enums numeric, ints checked)
  function valueIn(field: protobuf.Field, v: unknown, path: string): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Enum) {
      if (typeof v === 'number') return v;
      const value = enumTable(rt).toValue.get(String(v));
      if (value === undefined) {
        throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE',
          `${path}: '${String(v)}' is not one of ${[...enumTable(rt).toValue.keys()].join(', ')}`);
      }
      return value;
    }
    if (rt instanceof protobuf.Type) return fromPlain(rt, v, path);
    if (INT_TYPES.has(field.type) && typeof v === 'number') {
      if (!Number.isFinite(v)) throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${path}: ${v} is not a finite number`);
      // Integer fields get whole numbers: callers often compute ns / 1e6.
      const n = Math.round(v);
      if (n < 0 && UNSIGNED_TYPES.has(field.type)) {
        throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${path}: ${v} is negative but the field is unsigned`);
      }
      return n;
    }
    return v;
  }
  function fromPlain(type: protobuf.Type, obj: unknown, path: string): unknown {
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
      throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${path}: an object is expected for ${type.name}`);
    }
    const src = obj as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const field of type.fieldsArray) {
      const v = src[field.name];
      if (v === undefined || v === null) continue;
      const at = `${path}.${field.name}`;
      if (field.map) {
        if (typeof v !== 'object') throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${at}: an object (map) is expected`);
        const map: Record<string, unknown> = {};
        for (const k of Object.keys(v as object)) {
          if (k === '__proto__') continue;
          map[k] = valueIn(field, (v as Record<string, unknown>)[k], `${at}[${k}]`);
        }
        out[field.name] = map;
      } else if (field.repeated) {
        if (!Array.isArray(v)) throw new ProtoError('PREMORTEM_ERR_PROTO_ENCODE', `${at}: an array is expected`);
        out[field.name] = v.map((x, i) => valueIn(field, x, `${at}[${i}]`));
      } else {
        out[field.name] = valueIn(field, v, at);
      }
    }
    return out;
  }

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
