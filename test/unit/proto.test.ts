import * as fs from 'fs';
import * as path from 'path';
import * as protobuf from 'protobufjs';
import {
  createCodec, checkClientVersion, checkServerHello, parseWorkerKey, workerKey, ProtoError,
  PROTOCOL_VERSION, MIN_CLIENT_VERSION, BUNDLE_FORMAT_VERSION,
  type Bucket, type Bundle, type ClientMessage, type Death, type Delta, type Hello, type History,
  type Identity, type Marker, type ServerMessage, type Service, type ServiceBucket, type HostBucket, type DeviceBucket,
  type Verdict, type Evidence, type CgroupLimits, type WorkerTimeline, type IncidentSummary,
  type Worker, type Snapshot, type Feature, type WorkerBucket, type Lost, type BundleReady,
  type Subscribe, type Unsubscribe, type HistoryRequest, type ProtoErrorMessage, type PyFrame, type PyThread, type PyStackSample,
  type Sender, type StackSampling, type SenderRole,
} from '../../proto/codec';
import { loadCodec } from '../../proto/node';

const protoText = fs.readFileSync(path.join(__dirname, '..', '..', 'proto', 'premortem.proto'), 'utf8');
const codec = loadCodec();

// Complete samples: `Required<...>` makes tsc (npm run build) fail when the TS
// interface gains a field the sample lacks; the reflection test below fails when
// the .proto and the interface disagree. Together they keep the two in step.
const identity: Required<Identity> = {
  pid: 4242, startTicks: 2 ** 40 + 7, comm: 'gunicorn', cmdline: 'gunicorn app:app -w 2',
  serviceId: 'gunicorn:8000', generation: 3, role: 'worker', ppid: 4200, startedMs: 1764170000123, slot: 1,
};
const bucket: Required<Bucket> = {
  tMs: 1764170001000, intervalMs: 1000, runqP50Us: 12, runqP99Us: 900, runqMaxUs: 4000, runqCount: 311,
  runqHist: [0, 3, 9, 200, 99], involuntarySwitches: 17, voluntarySwitches: 400, cpuMs: 250,
  minorFaults: 1200, majorFaults: 2, rssBytes: 180 * 2 ** 20, rssSlopeBytesPerS: 1.5e6,
  cgroupUsageBytes: 300 * 2 ** 20, cgroupLimitBytes: 512 * 2 ** 20, dstateNs: 5e6, dstateMaxNs: 3e6,
  bioReadBytes: 4096, bioWriteBytes: 8192, bioOps: 3, gcPauses: 2, gcPauseNs: 4e6, gcMaxPauseNs: 3e6,
  threads: 4, gap: true, signalsReceived: 1, bioLatP99Us: 2048, bioLatMaxUs: 3100,
};
const service: Required<Service> = {
  id: 'gunicorn:8000', name: 'app:app', kind: 'gunicorn', masterPid: 4200, masterStartTicks: 99,
  ports: [8000, 8001], cgroup: '/system.slice/app.service', unit: 'app.service',
};
const serviceBucket: Required<ServiceBucket> = {
  serviceId: 'gunicorn:8000', tMs: 1764170001000, socketStates: { ESTABLISHED: 4, CLOSE_WAIT: 12 },
  backlogDepth: 7, backlogMax: 128, retransmits: 1, resetsSent: 2, resetsReceived: 3, listenDrops: 4,
  cpuThrottledUs: 5000, nrThrottled: 2, workersAlive: 2, deaths: 1, gap: false,
};
const hostBucket: Required<HostBucket> = {
  tMs: 1764170001000, psiMemSomeAvg10: 1.25, psiMemFullAvg10: 0.5, psiCpuSomeAvg10: 12.5,
  psiIoSomeAvg10: 0.25, load1: 1.75, memTotalBytes: 8 * 2 ** 30, memAvailableBytes: 2 ** 30, psiIoFullAvg10: 0.125,
  devices: [],
};
const deviceBucket: Required<DeviceBucket> = {
  device: 'loop0', ops: 12, readBytes: 49152, writeBytes: 0, latP50Us: 256, latP99Us: 262144, latMaxUs: 250000, slow: 4, errors: 0,
};
hostBucket.devices = [deviceBucket];
const marker: Required<Marker> = {
  tMs: 1764170001500, kind: 'memory-near-limit', pid: 4242, startTicks: 2 ** 40 + 7, serviceId: 'gunicorn:8000',
  severity: 'critical', message: 'RSS reaches the cgroup limit in ~12 s',
  numbers: { rss_bytes: 480 * 2 ** 20, limit_bytes: 512 * 2 ** 20, seconds_to_limit: 12.5 },
  details: { cgroup: '/test.slice' },
};
const evidence: Required<Evidence> = { what: 'cgroup memory.max', value: '512 MiB', tMs: 1764170002000, number: 512 * 2 ** 20, unit: 'bytes' };
const pyFrame: Required<PyFrame> = { file: '/srv/app.py', function: 'slow_report', line: 8 };
const sender: Required<Sender> = {
  role: 'operator', pid: 4300, comm: 'bash', exe: '/usr/bin/bash', cmdline: 'bash -c kill -9 4242', ppid: 4100, tty: 'pts/3',
  ancestors: ['sshd[4100]', 'sshd[900]'], reason: 'kill -9', description: "an operator's shell (bash on pts/3)", uid: 1000, readAtSignal: true,
};
const verdict: Required<Verdict> = {
  kind: 'oom-killed', exitCode: 0, signal: 9, coreDumped: false, senderPid: 0, senderComm: '', oomScope: 'cgroup',
  cgroupPath: '/test.slice', limitBytes: 512 * 2 ** 20, usageBytes: 512 * 2 ** 20 - 4096,
  summary: 'RSS rose from 180 MiB to 512 MiB in 40 s; the kernel OOM-killed pid 4242', evidence: [evidence],
  tMs: 1764170003000, signalName: 'SIGKILL', failure: true,
  sender, lastFrame: pyFrame, lastFrameSinceMs: 1764169990000, lastFrameUntilMs: 1764170002500,
};
const timeline: Required<WorkerTimeline> = { identity, buckets: [bucket, { ...bucket, tMs: bucket.tMs + 1000 }] };
const cgroupLimits: Required<CgroupLimits> = {
  path: '/test.slice', memoryMaxBytes: 512 * 2 ** 20, memoryHighBytes: 0, memoryCurrentBytes: 500 * 2 ** 20,
  memoryPeakBytes: 512 * 2 ** 20, cpuQuotaUs: 50000, cpuPeriodUs: 100000, pidsMax: 512, memoryEvents: { oom: 1, oom_kill: 1 },
};
const pyThread: Required<PyThread> = { tid: 4242, name: 'gunicorn: worke', frames: [pyFrame], isMain: true, holdsGil: false, truncated: false };
const pyStackSample: Required<PyStackSample> = { tMs: 1764170002500, pid: 4242, threads: [pyThread], error: '', pythonVersion: '3.11.2' };
const stackSampling: Required<StackSampling> = {
  intervalMs: 1000, burstIntervalMs: 200, samples: 31, empty: 1, failed: 2, lastError: 'PREMORTEM_ERR_PROCESS_GONE: process 4242 is gone',
  lastSampleMs: 1764170002900, lastFramesMs: 1764170002500, dropped: 3,
};
const bundle: Required<Bundle> = {
  formatVersion: BUNDLE_FORMAT_VERSION, id: '20251126-170003-4242-ab12', createdMs: 1764170003100, host: 'host1',
  agentVersion: '0.1.0', worker: identity, service, verdict, timelines: [timeline], serviceBuckets: [serviceBucket],
  hostBuckets: [hostBucket], markers: [marker], cgroupLimits, windowStartMs: 1764169703000, windowEndMs: 1764170003000,
  lostRecords: 5, intervalMs: 1000, kernel: '6.18.0', stacks: [pyStackSample], stackSampling,
};
const incident: Required<IncidentSummary> = {
  id: bundle.id, tMs: 1764170003000, service: 'app:app', serviceId: 'gunicorn:8000', pid: 4242, startTicks: 2 ** 40 + 7,
  verdictKind: 'oom-killed', summary: verdict.summary, failure: true, bytes: 12345,
};
const feature: Required<Feature> = { name: 'gc-usdt', enabled: false, reason: 'python3.11 lacks USDT probes' };
const hello: Required<Hello> = {
  agentVersion: '0.1.0', protocolVersion: PROTOCOL_VERSION, minClientVersion: MIN_CLIENT_VERSION,
  features: [feature, { name: 'runqlat', enabled: true, reason: '' }], intervalMs: 1000, host: 'host1',
  serverTimeMs: 1764170000000, windowMs: 600000,
};
const worker: Required<Worker> = { identity, state: 'dead', lastVerdict: verdict, diedMs: 1764170003000 };
const snapshot: Required<Snapshot> = { tMs: 1764170000000, services: [service], workers: [worker] };
const workerBucket: Required<WorkerBucket> = { pid: 4242, startTicks: 2 ** 40 + 7, serviceId: 'gunicorn:8000', bucket };
const delta: Required<Delta> = {
  tMs: 1764170001000, workers: [workerBucket], services: [serviceBucket], host: hostBucket, markers: [marker], intervalMs: 1000,
};
const death: Required<Death> = { identity, verdict, bundleId: bundle.id, tMs: 1764170003000 };
const bundleReady: Required<BundleReady> = { incident };
const lost: Required<Lost> = { probe: 'runqlat', dropped: 1000, tMs: 1764170001000, droppedTotal: 5000 };
const history: Required<History> = { requestId: 7, timelines: [timeline], markers: [marker], fromMs: 1, toMs: 2, serviceBuckets: [], hostBuckets: [] };
const errorMessage: Required<ProtoErrorMessage> = { code: 'PREMORTEM_ERR_X', message: 'x' };
const subscribe: Required<Subscribe> = { workerKeys: ['4242:1099511627783'], serviceIds: ['gunicorn:8000'], all: false };
const unsubscribe: Required<Unsubscribe> = { workerKeys: ['1:2'], serviceIds: [], all: true };
const historyRequest: Required<HistoryRequest> = { requestId: 7, workerKey: '4242:1099511627783', fromMs: 10, toMs: 20, serviceId: 'svc', host: true };

describe('schema and TypeScript types stay in step', () => {
  const samples: Record<string, object> = {
    Identity: identity, Bucket: bucket, Service: service, ServiceBucket: serviceBucket, HostBucket: hostBucket, DeviceBucket: deviceBucket,
    Marker: marker, Evidence: evidence, Verdict: verdict, WorkerTimeline: timeline, CgroupLimits: cgroupLimits,
    Bundle: bundle, IncidentSummary: incident, Feature: feature, Hello: hello, Worker: worker, Snapshot: snapshot,
    WorkerBucket: workerBucket, Delta: delta, Death: death, BundleReady: bundleReady, Lost: lost, History: history,
    Error: errorMessage, Subscribe: subscribe, Unsubscribe: unsubscribe, HistoryRequest: historyRequest,
    PyFrame: pyFrame, PyThread: pyThread, PyStackSample: pyStackSample, Sender: sender, StackSampling: stackSampling,
  };

  test('every message of the .proto has a sample whose keys are exactly its fields', () => {
    const pkg = codec.root.lookup('premortem.v1') as protobuf.Namespace;
    const messages = pkg.nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type)
      .map((t) => t.name).filter((n) => n !== 'ServerMessage' && n !== 'ClientMessage');
    expect(messages.sort()).toEqual(Object.keys(samples).sort());
    for (const [name, sample] of Object.entries(samples)) {
      const type = codec.root.lookupType(`premortem.v1.${name}`);
      expect([name, Object.keys(sample).sort()]).toEqual([name, type.fieldsArray.map((f) => f.name).sort()]);
    }
  });

  test('enum names in TypeScript match the .proto values', () => {
    const names = (e: string) => Object.keys(codec.root.lookupEnum(`premortem.v1.${e}`).values);
    expect(names('VerdictKind')).toEqual(['VERDICT_KIND_UNKNOWN', 'VERDICT_KIND_OOM_KILLED', 'VERDICT_KIND_KILLED_BY_MASTER',
      'VERDICT_KIND_KILLED_BY_OTHER', 'VERDICT_KIND_CRASHED', 'VERDICT_KIND_EXITED']);
    const kinds: Verdict['kind'][] = ['unknown', 'oom-killed', 'killed-by-master', 'killed-by-other', 'crashed', 'exited'];
    for (const kind of kinds) {
      const back = codec.decode<Verdict>('Verdict', codec.encode('Verdict', { kind }));
      expect(back.kind).toBe(kind);
    }
    for (const role of ['unknown', 'master', 'worker', 'standalone'] as const) {
      expect(codec.normalize<Identity>('Identity', { role }).role).toBe(role);
    }
    for (const kind of ['unknown', 'gunicorn', 'uvicorn', 'uwsgi', 'hypercorn', 'daphne', 'celery', 'python'] as const) {
      expect(codec.normalize<Service>('Service', { kind }).kind).toBe(kind);
    }
    for (const severity of ['info', 'warning', 'critical'] as const) {
      expect(codec.normalize<Marker>('Marker', { severity }).severity).toBe(severity);
    }
    for (const oomScope of ['none', 'cgroup', 'global'] as const) {
      expect(codec.normalize<Verdict>('Verdict', { oomScope }).oomScope).toBe(oomScope);
    }
    for (const state of ['unknown', 'alive', 'dead'] as const) {
      expect(codec.normalize<Worker>('Worker', { state }).state).toBe(state);
    }
    const roles: SenderRole[] = ['unknown', 'master', 'kernel-oom', 'systemd-oomd', 'systemd', 'kubelet', 'container-runtime',
      'supervisor', 'operator', 'script', 'self', 'kernel', 'init', 'other', 'shell'];
    expect(names('SenderRole')).toHaveLength(roles.length);
    for (const role of roles) expect(codec.normalize<Sender>('Sender', { role }).role).toBe(role);
  });
});

describe('round trips', () => {
  const bodies: Array<[keyof ServerMessage, object]> = [
    ['hello', hello], ['snapshot', snapshot], ['delta', delta], ['death', death], ['bundleReady', bundleReady],
    ['lost', lost], ['history', history], ['error', errorMessage],
  ];
  test.each(bodies)('ServerMessage %s', (body, value) => {
    const bytes = codec.encodeServerMessage({ [body]: value } as Partial<ServerMessage>);
    const back = codec.decodeServerMessage(bytes);
    expect(back.protocolVersion).toBe(PROTOCOL_VERSION);
    expect(back.body).toBe(body);
    expect(back[body]).toEqual(value);
    // Only the member that is set appears.
    const others = bodies.map(([b]) => b).filter((b) => b !== body);
    for (const other of others) expect(back[other]).toBeUndefined();
  });

  test.each([['subscribe', subscribe], ['unsubscribe', unsubscribe], ['historyRequest', historyRequest]] as const)(
    'ClientMessage %s', (body, value) => {
      const back = codec.decodeClientMessage(codec.encodeClientMessage({ [body]: value } as Partial<ClientMessage>));
      expect(back.body).toBe(body);
      expect(back[body]).toEqual(value);
    });

  test('Bundle, with 64-bit values above 2^32 and every series', () => {
    const bytes = codec.encodeBundle(bundle);
    const back = codec.decodeBundle(bytes);
    expect(back).toEqual(bundle);
    expect(back.worker!.startTicks).toBe(2 ** 40 + 7);
    expect(back.timelines[0].buckets[0].runqHist).toEqual([0, 3, 9, 200, 99]);
  });

  test('decode fills defaults; absent sub-messages stay undefined', () => {
    const back = codec.decodeBundle(codec.encodeBundle({ id: 'x' }));
    expect(back.formatVersion).toBe(BUNDLE_FORMAT_VERSION);
    expect(back.id).toBe('x');
    expect(back.createdMs).toBe(0);
    expect(back.timelines).toEqual([]);
    expect(back.verdict).toBeUndefined();
    const d = codec.decodeServerMessage(codec.encodeServerMessage({ delta: { workers: [{ pid: 1 }] } }));
    expect(d.delta!.workers[0]).toEqual({ pid: 1, startTicks: 0, serviceId: '' });
    expect(d.delta!.markers).toEqual([]);
  });

  test('a bundle written before senders and stack sampling existed still opens: the new fields are absent or zero', () => {
    // Encoded with the fields an older agent wrote (no Verdict 20-23, no Bundle 25).
    const old = { ...bundle, stackSampling: undefined, verdict: { ...verdict, sender: undefined, lastFrame: undefined, lastFrameSinceMs: 0, lastFrameUntilMs: 0 } };
    const back = codec.decodeBundle(codec.encodeBundle(old));
    expect(back.stackSampling).toBeUndefined();
    expect(back.verdict!.sender).toBeUndefined();
    expect(back.verdict!.lastFrame).toBeUndefined();
    expect(back.verdict!.lastFrameSinceMs).toBe(0);
    expect(back.verdict!.summary).toBe(verdict.summary);
    // ...and a reader that predates them skips them: the old fields decode the same.
    const oldReader = createCodec(protoText.replace(/\n  Sender sender = 20;[^\n]*|\n  PyFrame last_frame = 21;[^\n]*|\n  uint64 last_frame_(since|until)_ms = 2[23];[^\n]*|\n  StackSampling stack_sampling = 25;[^\n]*/g, ''));
    const seen = oldReader.decodeBundle(codec.encodeBundle(bundle));
    expect(seen.verdict!.summary).toBe(verdict.summary);
    expect(seen.stacks).toEqual(bundle.stacks);
    expect((seen.verdict as unknown as Record<string, unknown>).sender).toBeUndefined();
  });

  test('the codec builds from the .proto text alone (the viewer path, no fs)', () => {
    const viewerCodec = createCodec(protoText);
    const bytes = codec.encodeServerMessage({ delta });
    expect(viewerCodec.decodeServerMessage(bytes).delta).toEqual(delta);
  });

  test('non-integer numbers for integer fields are rounded', () => {
    const back = codec.decode<Bucket>('Bucket', codec.encode('Bucket', { cpuMs: 2.6, rssSlopeBytesPerS: 2.5 }));
    expect(back.cpuMs).toBe(3);
    expect(back.rssSlopeBytesPerS).toBe(2.5);
  });
});

describe('hostile and malformed input', () => {
  const expectDecodeError = (bytes: Uint8Array) => {
    let thrown: unknown;
    try { codec.decodeClientMessage(bytes); } catch (err) { thrown = err; }
    expect(thrown).toBeInstanceOf(ProtoError);
    expect((thrown as ProtoError).code).toBe('PREMORTEM_ERR_PROTO_DECODE');
    const r = codec.tryDecodeClientMessage(bytes);
    expect(r.ok).toBe(false);
  };

  test('truncated messages are a typed error', () => {
    const full = codec.encodeServerMessage({ delta });
    for (const cut of [1, 3, 5, 17, full.length >> 1, full.length - 1]) {
      const r = codec.tryDecodeServerMessage(full.subarray(0, cut));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('PREMORTEM_ERR_PROTO_DECODE');
    }
  });

  test('invalid wire types, oversize lengths and endless varints are typed errors', () => {
    expectDecodeError(Uint8Array.from([0x0f]));                         // field 1, wire type 7
    expectDecodeError(Uint8Array.from([0x12, 0xff, 0xff, 0xff, 0x0f])); // length 2^32-1, no payload
    expectDecodeError(Uint8Array.from(Array(11).fill(0xff)));           // a varint that never ends
    expectDecodeError(Uint8Array.from([0x13, ...Array(20000).fill(0x13)])); // 20k nested open groups
  });

  test('random bytes never throw anything but ProtoError (8k inputs)', () => {
    let seed = 0x9e3779b9;
    const rand = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 2 ** 32; };
    const valid = codec.encodeServerMessage({ delta });
    let failures = 0;
    for (let i = 0; i < 8000; i++) {
      let bytes: Uint8Array;
      if (i % 2) {
        bytes = Uint8Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256));
      } else { // mutate a valid message: the nastier case
        bytes = Uint8Array.from(valid);
        for (let k = 0; k < 3; k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      }
      for (const r of [codec.tryDecodeClientMessage(bytes), codec.tryDecodeServerMessage(bytes), codec.tryDecodeBundle(bytes)]) {
        if (!r.ok) { failures++; expect(r.error).toBeInstanceOf(ProtoError); }
      }
    }
    expect(failures).toBeGreaterThan(0);
  });

  test('a map key "__proto__" from a peer does not touch prototypes', () => {
    const w = protobuf.Writer.create();
    // Marker.details (field 9) entry { key: "__proto__", value: "x" }
    const entry = protobuf.Writer.create().uint32(0x0a).string('__proto__').uint32(0x12).string('x').finish();
    w.uint32((9 << 3) | 2).bytes(entry);
    const m = codec.decode<Marker>('Marker', w.finish());
    expect(Object.getPrototypeOf(m.details)).toBe(Object.prototype);
    expect(Object.keys(m.details)).toEqual([]);
  });

  test('unknown fields and enum values from a newer agent are tolerated', () => {
    const w = protobuf.Writer.create();
    w.uint32((1 << 3) | 0).uint32(99);               // Verdict.kind = 99, unknown here
    w.uint32((200 << 3) | 2).string('from the future'); // an unknown field
    const v = codec.decode<Verdict>('Verdict', w.finish());
    expect(v.kind).toBe('unknown');
  });

  test('encode refuses what it cannot represent, with a reason', () => {
    const codeOf = (f: () => unknown) => { try { f(); } catch (e) { return [(e as ProtoError).code, (e as Error).message]; } return null; };
    expect(codeOf(() => codec.encode('Verdict', { kind: 'eaten-by-grue' }))).toEqual(
      ['PREMORTEM_ERR_PROTO_ENCODE', expect.stringContaining('eaten-by-grue')]);
    expect(codeOf(() => codec.encode('Bucket', { rssBytes: -1 }))).toEqual(['PREMORTEM_ERR_PROTO_ENCODE', expect.stringContaining('negative')]);
    expect(codeOf(() => codec.encode('Bucket', { rssBytes: NaN }))).toEqual(['PREMORTEM_ERR_PROTO_ENCODE', expect.stringContaining('finite')]);
    expect(codeOf(() => codec.encode('Bucket', { comm: 3, tMs: 'soon' }))).toEqual(['PREMORTEM_ERR_PROTO_ENCODE', expect.any(String)]);
    expect(codeOf(() => codec.encodeServerMessage({ hello: {}, delta: {} }))).toEqual(
      ['PREMORTEM_ERR_PROTO_ENCODE', expect.stringContaining('body')]);
    expect(codeOf(() => createCodec('syntax = "proto3"; message {'))).toEqual(['PREMORTEM_ERR_PROTO_SCHEMA', expect.any(String)]);
  });
});

describe('versions', () => {
  test('a client older than MIN_CLIENT_VERSION or newer than PROTOCOL_VERSION is told why', () => {
    expect(checkClientVersion(PROTOCOL_VERSION)).toBeNull();
    expect(checkClientVersion(MIN_CLIENT_VERSION)).toBeNull();
    expect(checkClientVersion(MIN_CLIENT_VERSION - 1)).toEqual({ code: 'PREMORTEM_ERR_CLIENT_TOO_OLD', message: expect.stringContaining('reload') });
    expect(checkClientVersion(PROTOCOL_VERSION + 1)).toEqual({ code: 'PREMORTEM_ERR_CLIENT_TOO_NEW', message: expect.stringContaining('upgrade') });
  });

  test('a viewer reads Hello and says what to do when versions do not meet', () => {
    const newerAgent = { ...hello, protocolVersion: PROTOCOL_VERSION + 2, minClientVersion: PROTOCOL_VERSION + 1 };
    expect(checkServerHello(newerAgent)).toContain('reload the page');
    const olderAgent = { ...hello, protocolVersion: PROTOCOL_VERSION, minClientVersion: 1 };
    expect(checkServerHello(olderAgent, PROTOCOL_VERSION + 1)).toContain('upgrade the agent');
    expect(checkServerHello(hello)).toBeNull();
  });

  test('worker keys round trip and reject junk', () => {
    expect(parseWorkerKey(workerKey(4242, 2 ** 40))).toEqual({ pid: 4242, startTicks: 2 ** 40 });
    for (const junk of ['', '4242', 'a:b', '1:2:3', '-1:2', `${'9'.repeat(11)}:1`]) expect(parseWorkerKey(junk)).toBeNull();
  });
});
