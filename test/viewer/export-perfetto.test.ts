/**
 * The Perfetto/Chrome JSON trace export, read back by an independent reader:
 * Python's json module (strict: NaN/Infinity refused) parses the file, and a
 * Trace Event Format checker written here (not the writer's types) enforces
 * the format's rules: required fields per phase, numeric ts/dur, counters with
 * numeric args only, ts monotonic per track, metadata naming every process.
 * Then tracks, counters and event times are compared with the bundle: a real
 * one from the real agent (a gunicorn worker killed by SIGKILL) and a
 * synthetic one carrying GC pauses, slow wakeups and an OOM kill.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { exportBundle, SERVICE_TRACK_PID } from '../../agent/export/perfetto';
import { loadCodec } from '../../proto/node';
import type { Bundle, Role } from '../../proto/codec';
import { produceRealBundle, RealBundle } from '../helpers/real-bundle';
import { main } from '../../agent/cli';

jest.setTimeout(50_000);

// ------------------------------------------------------------ independent reader

type Ev = Record<string, unknown>;

interface Checked {
  events: Ev[];
  processNames: Map<number, Ev>;
  threadNames: Map<string, Ev>;
  /** Counter samples by "pid/name": [ts µs, args]. */
  counters: Map<string, Array<[number, Record<string, number>]>>;
  slices: Ev[];
  instants: Ev[];
}

/** Strict JSON with Python (another parser than the writer's JSON.stringify). */
function pythonParse(file: string): unknown {
  const out = execFileSync('/usr/bin/python3', ['-c', `
import json, sys
def no_const(c): raise ValueError("non-standard JSON constant " + c)
with open(sys.argv[1], encoding="utf-8") as f:
    doc = json.load(f, parse_constant=no_const)
json.dump(doc, sys.stdout)
`, file], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(out.toString('utf8'));
}

const isInt = (v: unknown) => typeof v === 'number' && Number.isInteger(v);
const isNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

/** Trace Event Format rules (JSON Object Format) for the phases a trace may use. */
function checkTrace(doc: unknown): Checked {
  const errors: string[] = [];
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as Ev).traceEvents)) throw new Error('not a JSON Object Format trace: traceEvents[] missing');
  const d = doc as Ev;
  if (d.displayTimeUnit !== undefined && d.displayTimeUnit !== 'ms' && d.displayTimeUnit !== 'ns') errors.push(`displayTimeUnit ${String(d.displayTimeUnit)}`);
  const events = d.traceEvents as Ev[];
  const out: Checked = { events, processNames: new Map(), threadNames: new Map(), counters: new Map(), slices: [], instants: [] };
  const lastTs = new Map<string, number>();
  events.forEach((e, i) => {
    const at = `event ${i} (${String(e.ph)} ${String(e.name)})`;
    if (typeof e.ph !== 'string') return errors.push(`${at}: ph missing`);
    if (typeof e.name !== 'string' || !e.name) errors.push(`${at}: name missing`);
    if (!isInt(e.pid) || !isInt(e.tid)) errors.push(`${at}: pid/tid must be integers`);
    if (e.args !== undefined && (typeof e.args !== 'object' || e.args === null || Array.isArray(e.args))) errors.push(`${at}: args must be an object`);
    if (e.ph === 'M') {
      if (!['process_name', 'process_labels', 'process_sort_index', 'thread_name', 'thread_sort_index'].includes(e.name as string)) errors.push(`${at}: unknown metadata`);
      const args = (e.args ?? {}) as Ev;
      if (e.name === 'process_name' || e.name === 'thread_name') {
        if (typeof args.name !== 'string') errors.push(`${at}: args.name missing`);
        if (e.name === 'process_name') out.processNames.set(e.pid as number, args);
        else out.threadNames.set(`${e.pid}/${e.tid}`, args);
      }
      if (e.name === 'process_sort_index' && !isInt(args.sort_index)) errors.push(`${at}: sort_index`);
      return undefined;
    }
    if (!isNum(e.ts)) return errors.push(`${at}: ts must be a number`);
    const ts = e.ts as number;
    let track: string;
    switch (e.ph) {
      case 'C': {
        const args = e.args as Record<string, unknown> | undefined;
        if (!args || !Object.keys(args).length) errors.push(`${at}: counter without values`);
        for (const [k, v] of Object.entries(args ?? {})) if (!isNum(v)) errors.push(`${at}: counter ${k} = ${String(v)} is not a number`);
        track = `C ${e.pid}/${e.name}`;
        const key = `${e.pid}/${e.name}`;
        if (!out.counters.has(key)) out.counters.set(key, []);
        out.counters.get(key)!.push([ts, args as Record<string, number>]);
        break;
      }
      case 'X':
        if (!isNum(e.dur) || (e.dur as number) < 0) errors.push(`${at}: X needs dur >= 0`);
        track = `T ${e.pid}/${e.tid}`;
        out.slices.push(e);
        break;
      case 'i': case 'I':
        if (e.s !== undefined && !['g', 'p', 't'].includes(e.s as string)) errors.push(`${at}: instant scope ${String(e.s)}`);
        track = `T ${e.pid}/${e.tid}`;
        out.instants.push(e);
        break;
      default:
        return errors.push(`${at}: phase ${e.ph} not expected in a post-mortem trace`);
    }
    const prev = lastTs.get(track);
    if (prev !== undefined && ts < prev) errors.push(`${at}: ts ${ts} goes back on track ${track} (previous ${prev})`);
    lastTs.set(track, ts);
    return undefined;
  });
  // Every pid that has events is named.
  for (const e of events) if (e.ph !== 'M' && !out.processNames.has(e.pid as number)) errors.push(`pid ${String(e.pid)} has events but no process_name`);
  if (errors.length) throw new Error(`invalid trace:\n${[...new Set(errors)].slice(0, 20).join('\n')}`);
  return out;
}

function writeAndRead(bundle: Bundle, dir: string, name: string): Checked {
  const file = path.join(dir, name);
  fs.writeFileSync(file, exportBundle(bundle));
  return checkTrace(pythonParse(file));
}

// ------------------------------------------------------------ fixtures

let tmp: string;
let real: RealBundle;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-perfetto-'));
  real = await produceRealBundle('perfetto');
});

afterAll(async () => {
  await real?.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('a real killed-by-other post-mortem: one track per worker, counters per bucket, the signal and the exit at their times', () => {
  const b = real.bundle;
  expect(b.verdict!.kind).toBe('killed-by-other');
  const t = writeAndRead(b, tmp, 'real.json');
  // One process track per timeline (dead worker, sibling, master), named with pid, comm, role; the dead one with its verdict.
  expect(b.timelines.length).toBeGreaterThanOrEqual(3);
  for (const tl of b.timelines) {
    const p = t.processNames.get(tl.identity!.pid);
    expect(p).toBeDefined();
    expect(p).toMatchObject({ pid: tl.identity!.pid, comm: tl.identity!.comm, role: tl.identity!.role });
    expect(p!.name).toContain(`pid ${tl.identity!.pid}`);
    expect(t.threadNames.get(`${tl.identity!.pid}/${tl.identity!.pid}`)).toBeDefined();
    // Counter samples: one per bucket, at the bucket's time, with its value.
    // (The master's replacement worker, forked after the kill, may have no bucket yet: then no samples.)
    const series = (name: string) => t.counters.get(`${tl.identity!.pid}/${name}`) ?? [];
    const rss = series('RSS');
    expect(rss.map(([ts]) => ts)).toEqual(tl.buckets.map((x) => x.tMs * 1000));
    expect(rss.map(([, a]) => a.bytes)).toEqual(tl.buckets.map((x) => x.rssBytes));
    expect(series('runqueue latency p99').map(([, a]) => a.us)).toEqual(tl.buckets.map((x) => x.runqP99Us));
    expect(series('page faults').map(([, a]) => a.minor)).toEqual(tl.buckets.map((x) => x.minorFaults));
    expect(series('D-state time').map(([, a]) => a.ms)).toEqual(tl.buckets.map((x) => x.dstateNs / 1e6));
  }
  const dead = t.processNames.get(real.workerPid)!;
  expect(dead).toMatchObject({ verdict: 'killed-by-other', role: 'worker' });
  expect(t.processNames.get(real.masterPid)).toMatchObject({ role: 'master' });
  expect(b.timelines[0].buckets.some((x) => x.rssBytes > 1024 * 1024)).toBe(true);
  // Service backlog depth per service bucket.
  const backlog = t.counters.get(`${SERVICE_TRACK_PID}/backlog depth`)!;
  expect(backlog.map(([ts]) => ts)).toEqual(b.serviceBuckets.map((x) => x.tMs * 1000));
  expect(backlog.map(([, a]) => a.depth)).toEqual(b.serviceBuckets.map((x) => x.backlogDepth));
  // The SIGKILL and the exit: instants on the dead worker's track at the markers' times, details in args.
  const sigMarker = b.markers.find((m) => m.kind === 'signal' && m.pid === real.workerPid)!;
  expect(sigMarker).toBeDefined();
  const sig = t.instants.find((e) => e.pid === real.workerPid && e.cat === 'signal')!;
  expect(sig.ts).toBe(sigMarker.tMs * 1000);
  expect(sig.args).toMatchObject({ signal: 'SIGKILL', senderPid: process.pid });
  const exit = t.instants.find((e) => e.pid === real.workerPid && e.cat === 'exit')!;
  expect(exit.ts).toBe(b.verdict!.tMs * 1000);
  expect(exit.args).toMatchObject({ verdict: 'killed-by-other', summary: b.verdict!.summary });
  expect(exit.ts as number).toBeGreaterThanOrEqual(sig.ts as number);
});

test('the CLI writes the same trace: premortem export ID --format perfetto', async () => {
  // The CLI reads from a store: put the real bundle in one.
  const { createBundleStore } = await import('../../agent/store');
  const dir = path.join(tmp, 'store');
  const store = createBundleStore({ dir });
  await store.ready();
  const { id } = await store.write(real.bundle);
  await store.close();
  const out = path.join(tmp, 'cli.json');
  expect(await main(['export', id, '--format', 'perfetto', '--data-dir', dir, '--out', out])).toBe(0);
  const t = checkTrace(pythonParse(out));
  expect(t.processNames.get(real.workerPid)).toMatchObject({ verdict: 'killed-by-other' });
});

test('a synthetic OOM post-mortem: GC pauses and slow wakeups as slices, OOM and exit as instants, sockets by state', () => {
  const codec = loadCodec();
  const t0 = 1_700_000_000_000;
  const id = (pid: number, role: Role, gen = 0) => ({ pid, startTicks: pid * 10, comm: role === 'master' ? 'gunicorn' : 'gunicorn: worker', role, generation: gen, serviceId: 'svc', cmdline: 'gunicorn app:app' });
  const buckets = (n: number, f: (i: number) => object) => Array.from({ length: n }, (_, i) => ({ tMs: t0 + i * 1000, intervalMs: 1000, ...f(i) }));
  const bundle = codec.decodeBundle(codec.encodeBundle({
    id: 'synthetic-oom', agentVersion: 'test', host: 'h', kernel: '6.18', intervalMs: 1000, windowStartMs: t0, windowEndMs: t0 + 10_000,
    worker: id(101, 'worker', 3), service: { id: 'svc', name: 'app:app', ports: [8000] },
    verdict: { kind: 'oom-killed', summary: 'The kernel OOM-killed pid 101', tMs: t0 + 9_500, signal: 9, signalName: 'SIGKILL', failure: true },
    timelines: [
      { identity: id(101, 'worker', 3), buckets: buckets(10, (i) => ({ rssBytes: (i + 1) * 50e6, runqP99Us: 100 * i, minorFaults: 1000 * i, majorFaults: i % 2, dstateNs: 2e6 * i, cpuMs: 900 })) },
      { identity: id(102, 'worker'), buckets: buckets(10, () => ({ rssBytes: 40e6, runqP99Us: 50 })) },
      { identity: id(100, 'master'), buckets: buckets(10, () => ({ rssBytes: 30e6 })) },
    ],
    serviceBuckets: buckets(10, (i) => ({ serviceId: 'svc', backlogDepth: i, backlogMax: 128, socketStates: i > 4 ? { ESTABLISHED: 2, CLOSE_WAIT: i } : { ESTABLISHED: 1 } })),
    hostBuckets: buckets(10, () => ({ psiMemSomeAvg10: 1.5 })),
    markers: [
      { tMs: t0 + 2_000, kind: 'gc-pause', pid: 101, startTicks: 1010, serviceId: 'svc', severity: 'warning', message: 'GC pause of 120.0 ms', numbers: { pauseMs: 120, generation: 2, collected: 5000 } },
      { tMs: t0 + 3_000, kind: 'slow-wakeup', pid: 102, startTicks: 1020, serviceId: 'svc', severity: 'warning', message: 'waited 35 ms', numbers: { waitMs: 35.5, culpritPid: 7 }, details: { culprit: 'stress' } },
      { tMs: t0 + 7_000, kind: 'backlog-near-full', pid: 0, serviceId: 'svc', severity: 'warning', message: 'listen backlog', numbers: { depth: 7, max: 8 } },
      { tMs: t0 + 8_000, kind: 'memory-near-limit', pid: 101, startTicks: 1010, serviceId: 'svc', severity: 'critical', message: 'near', numbers: { ratio: 0.95 } },
      { tMs: t0 + 8_500, kind: 'records-lost', severity: 'warning', message: 'lost', numbers: { dropped: 12 } },
      { tMs: t0 + 9_400, kind: 'oom', pid: 101, startTicks: 1010, serviceId: 'svc', severity: 'critical', message: 'the kernel OOM-killer chose pid 101', numbers: { rssBytes: 500e6, limitBytes: 512e6 }, details: { scope: 'cgroup' } },
      { tMs: t0 + 9_450, kind: 'signal', pid: 101, startTicks: 1010, serviceId: 'svc', severity: 'warning', message: 'SIGKILL from the kernel', numbers: { sig: 9 }, details: { signal: 'SIGKILL', sender: 'kernel' } },
      { tMs: t0 + 9_500, kind: 'oom-kill', pid: 101, startTicks: 1010, serviceId: 'svc', severity: 'critical', message: 'The kernel OOM-killed pid 101', numbers: { signal: 9 }, details: { verdict: 'oom-killed' } },
    ],
  }));
  const t = writeAndRead(bundle, tmp, 'synthetic.json');
  expect([...t.processNames.keys()].filter((p) => [100, 101, 102].includes(p)).sort()).toEqual([100, 101, 102]);
  expect(t.processNames.get(101)).toMatchObject({ verdict: 'oom-killed', role: 'worker', generation: 3 });
  // Slices: start = the record's time minus the duration.
  const gc = t.slices.find((e) => e.cat === 'gc')!;
  expect(gc).toMatchObject({ pid: 101, ts: (t0 + 2_000 - 120) * 1000, dur: 120_000 });
  expect(gc.args).toMatchObject({ generation: 2, collected: 5000 });
  const wait = t.slices.find((e) => e.cat === 'sched')!;
  expect(wait).toMatchObject({ pid: 102, ts: (t0 + 3_000) * 1000 - 35_500, dur: 35_500 });
  expect(wait.args).toMatchObject({ culprit: 'stress' });
  // Instants: OOM, the kernel's SIGKILL and the exit with the verdict, in that order, on the victim's track.
  const onVictim = t.instants.filter((e) => e.pid === 101 && ['oom', 'signal', 'exit'].includes(e.cat as string));
  expect(onVictim.map((e) => [e.cat, e.ts])).toEqual([['oom', (t0 + 9_400) * 1000], ['signal', (t0 + 9_450) * 1000], ['exit', (t0 + 9_500) * 1000]]);
  expect(onVictim[0].args).toMatchObject({ scope: 'cgroup', limitBytes: 512e6 });
  expect(onVictim[2].args).toMatchObject({ verdict: 'oom-killed', summary: 'The kernel OOM-killed pid 101' });
  // Service and host markers land on their own tracks.
  expect(t.instants.find((e) => e.name === 'backlog-near-full')!.pid).toBe(SERVICE_TRACK_PID);
  expect(t.instants.find((e) => e.name === 'records-lost')!.s).toBe('g');
  // Counters: values per bucket; socket states continuous (0 where absent).
  expect(t.counters.get('101/RSS')!.map(([, a]) => a.bytes)).toEqual(bundle.timelines[0].buckets.map((x) => x.rssBytes));
  expect(t.counters.get('101/major page faults')!.map(([, a]) => a.major)).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
  const sockets = t.counters.get(`${SERVICE_TRACK_PID}/sockets`)!;
  expect(sockets[0][1]).toEqual({ CLOSE_WAIT: 0, ESTABLISHED: 1 });
  expect(sockets[9][1]).toEqual({ CLOSE_WAIT: 9, ESTABLISHED: 2 });
  expect(t.counters.get(`${SERVICE_TRACK_PID}/backlog depth`)!.map(([, a]) => a.depth)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});
