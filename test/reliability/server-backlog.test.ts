/**
 * The privilege-separated server child falls behind (starved of CPU beside a
 * fork storm; here stopped with SIGSTOP, deterministically) while the agent
 * announces thousands of deaths a second. Found by the soaks: every death was
 * posted to the child unbounded (the agent's RSS grew with the backlog: 443 MiB
 * in the 60 s churn soak), and a bundle request was refused as busy while that
 * backlog lasted, which the HTTP side answered 500.
 *
 * Asserted, with a real store on disk: the messages in flight to a stopped child
 * stay within their bounds (the rest dropped and counted); once it runs again, a
 * listed bundle downloads (200, its bytes); a bundle that is gone (evicted)
 * answers 404 PREMORTEM_ERR_BUNDLE_NOT_FOUND; no viewer: no death is sent at all.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { startServerProcess, SERVER_PROCESS_DEFAULTS, type ServerProcess } from '../../agent/server/process';
import { BUNDLE_HEADER_BYTES, createBundleStore, type BundleStore } from '../../agent/store';
import type { Death, DeepPartial, Bundle } from '../../proto/codec';
import { waitFor } from '../helpers/procs';
import { codec, connect, httpGet, quietLogger, type Viewer } from '../soak/harness';

/** Many more deaths than any bound: what a 2,000 forks/s storm announces in 10 s. */
const DEATHS = 20_000;

let dir: string;
let store: BundleStore;
let sp: ServerProcess;
let base: string;

const bundle = (i: number): DeepPartial<Bundle> => ({
  id: `bk${i}`, createdMs: Date.now(), host: 'h',
  worker: { pid: 5000 + i, startTicks: 9, serviceId: 'svc', role: 'worker' },
  service: { id: 'svc', name: 'app:app', kind: 'gunicorn' },
  verdict: { kind: 'killed-by-other', tMs: Date.now(), summary: `worker ${5000 + i} killed`, failure: true },
});

const death = (i: number): Death => ({
  identity: { pid: 10_000 + i, startTicks: i, comm: 'forker', cmdline: 'forker churn', serviceId: 'svc', generation: i, slot: 0, role: 'worker', ppid: 1, startedMs: 0, nsPid: 0 },
  verdict: { kind: 'exited', tMs: Date.now(), summary: 'exited with code 0', failure: false, evidence: [], exitCode: 0, signal: 0 },
  bundleId: '', tMs: Date.now(),
} as unknown as Death);

function stopChild(sig: 'SIGSTOP' | 'SIGCONT'): void {
  process.kill(sp.pid!, sig);
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-backlog-'));
  store = createBundleStore({ dir: path.join(dir, 'data'), logger: { info() {}, warn() {}, error() {} } });
  await store.ready();
  sp = startServerProcess({ config: { host: '127.0.0.1', port: 0 }, store, hooks: {}, logger: quietLogger() });
  base = (await sp.listen()).url.replace(/\/?$/, '/');
}, 30_000);

afterAll(async () => {
  if (sp?.pid) try { stopChild('SIGCONT'); } catch { /* gone */ }
  await sp?.close();
  await store?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('no viewer: deaths are not sent to the child', async () => {
  const before = sp.eventsNotSent;
  for (let i = 0; i < 1000; i++) sp.broadcastDeath(death(i));
  expect(sp.eventsNotSent - before).toBe(1000);
  expect(sp.pendingMessages.events).toBe(0);
});

test('a stopped child: bounded backlog, dropped counted; then a listed bundle downloads and a gone one is 404', async () => {
  const { id, bytes } = await store.write(bundle(1));
  const gone = (await store.write(bundle(2))).id;
  const viewer: Viewer = await connect(base.replace(/^http/, 'ws') + 'ws');
  try {
    viewer.send({ subscribe: { all: true } });
    await waitFor(() => sp.counters().clients === 1, 5000, 'the child to report the viewer');
    stopChild('SIGSTOP');
    const dropped0 = sp.droppedMessages;
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < DEATHS; i++) sp.broadcastDeath(death(i));
    const pending = sp.pendingMessages;
    const rssGrowthMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
    console.log(`stopped child after ${DEATHS} deaths: in flight ${JSON.stringify(pending)}, dropped ${sp.droppedMessages - dropped0}, RSS +${rssGrowthMiB.toFixed(1)} MiB`);
    expect(pending.events).toBeLessThanOrEqual(SERVER_PROCESS_DEFAULTS.maxPendingEvents);
    expect(sp.droppedMessages - dropped0).toBeGreaterThanOrEqual(DEATHS - SERVER_PROCESS_DEFAULTS.maxPendingEvents);

    // The bundle is listed by the store and on disk; evicted meanwhile, the other one is not.
    expect((await store.list()).map((x) => x.id)).toEqual(expect.arrayContaining([id, gone]));
    expect(await store.remove(gone)).toBe(true);

    // Asked the moment the child runs again, while it still reads its backlog.
    stopChild('SIGCONT');
    const pb = await httpGet(`${base}api/incidents/${id}.pb`);
    expect([pb.status, pb.body.toString().slice(0, 200)]).toEqual([200, expect.anything()]);
    expect(pb.body.length).toBe(bytes - BUNDLE_HEADER_BYTES); // the payload, without the file header
    expect(codec.decodeBundle(pb.body).id).toBe(id);

    for (const ext of ['.pb', '.json', '']) {
      const r = await httpGet(`${base}api/incidents/${gone}${ext}`);
      expect([ext, r.status, JSON.parse(r.body.toString()).error.code]).toEqual([ext, 404, 'PREMORTEM_ERR_BUNDLE_NOT_FOUND']);
    }
  } finally {
    try { stopChild('SIGCONT'); } catch { /* gone */ }
    viewer.ws.terminate();
  }
}, 60_000);
