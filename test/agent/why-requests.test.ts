/**
 * Requests in flight, end to end: a real ASGI worker (gunicorn with uvicorn's
 * worker class) holding three requests at once is OOM-killed in its memory
 * cgroup; the post-mortem lists all three (method, path, age) from what the
 * kernel saw it read and not answer. Answered requests are not listed, and
 * `--no-requests` (requests: false) captures nothing.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createAgent, Agent } from '../../agent/agent';
import { createLogger } from '../../agent/log';
import type { Death } from '../../proto/codec';
import { createBundleStore, BundleStore } from '../../agent/store';
import { workerKey } from '../../proto/codec';
import { killGroup, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, APPS_DIR, freePort, get, ready, workersOf } from '../helpers/services';
import { createMemoryCgroup, TestCgroup } from '../helpers/cgroup';
import { procStartTicks } from '../helpers/procs';

const MiB = 1 << 20;

let app: AppDir;
let dataDir: string;
let store: BundleStore;
const agents: Agent[] = [];
const cgroups: TestCgroup[] = [];

beforeAll(async () => {
  app = appDir('whyreq');
  fs.copyFileSync(path.join(APPS_DIR, 'asgi_hold.py'), path.join(app.dir, 'hold.py'));
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-whyreq-data-'));
  store = createBundleStore({ dir: dataDir, logger: createLogger({ level: 'error' }) });
  await store.ready();
});

afterAll(async () => {
  for (const a of agents) await a.stop();
  await store?.close();
  await stopAll();
  for (const cg of cgroups.reverse()) await cg.remove();
  app?.remove();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

async function startAgent(extra: { requests?: boolean } = {}): Promise<{ agent: Agent; deaths: Death[] }> {
  const deaths: Death[] = [];
  const agent = createAgent(
    { port: null, dataDir, intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, match: app.match, autoDiscover: false, discoveryIntervalMs: 500, ...extra },
    { store, logger: createLogger({ level: 'error' }) },
  );
  agent.on('death', (d: Death) => deaths.push(d));
  await agent.start();
  agents.push(agent);
  return { agent, deaths };
}

/** gunicorn + uvicorn's worker class (the usual production ASGI setup), one worker, in `cg`. */
async function asgiService(cg: TestCgroup) {
  const port = await freePort();
  const master = start(cg.prefix[0], [...cg.prefix.slice(1), '/usr/bin/python3', '/usr/bin/gunicorn', '--chdir', app.dir,
    '-b', `127.0.0.1:${port}`, '-w', '1', '-k', 'uvicorn.workers.UvicornWorker', '--timeout', '120', 'hold:app'], { cwd: app.dir });
  await ready(port);
  const [worker] = await workersOf(master, 1);
  return { port, master, worker, key: workerKey(worker, procStartTicks(worker)) };
}

test('an ASGI worker OOM-killed with three requests in flight: all three listed, with their ages', async () => {
  const { agent, deaths } = await startAgent();
  const cg = createMemoryCgroup(`pm-whyreq-${process.pid}`, 160 * MiB);
  cgroups.push(cg);
  const { port, master, worker, key } = await asgiService(cg);
  await waitFor(() => agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 10_000, 'the worker tracked');

  // An answered request leaves nothing behind.
  expect((await get(port, '/')).status).toBe(200);
  const pending = [get(port, '/hold/a?token=s3cret', 60_000), get(port, '/hold/b', 60_000)].map((p) => p.catch((e: Error) => e));
  // Both held requests are in flight in the live view before the third one starts.
  const live = await waitFor(() => {
    const w = agent.why(key);
    return w?.requests?.length === 2 && w;
  }, 10_000, 'two requests in flight, live');
  expect(live.requests!.map((r) => r.path).sort()).toEqual(['/hold/a', '/hold/b']);
  await sleep(300);
  pending.push(get(port, '/leak', 60_000).catch((e: Error) => e));

  const d = await waitFor(() => deaths.find((x) => x.identity?.pid === worker), 30_000, `the death of worker ${worker}`);
  await Promise.all(pending);
  const v = d.verdict!;
  expect(v.kind).toBe('oom-killed');
  const reqs = v.requestsInFlight!;
  expect(reqs.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /hold/a', 'GET /hold/b', 'GET /leak']); // oldest first
  for (const r of reqs) {
    expect(r.protocol).toBe('HTTP/1.1');
    expect(r.ageMs).toBeGreaterThan(0);
    expect(r.ageMs).toBeLessThan(60_000);
    expect(r.startedMs + r.ageMs).toBe(v.tMs);
  }
  expect(reqs[0].queryDropped).toBe(true);
  expect(reqs[0].ageMs).toBeGreaterThanOrEqual(reqs[2].ageMs + 300);
  expect(new Set(reqs.map((r) => r.fd)).size).toBe(3);
  expect(v.requestsNote).toBe('');
  expect(v.summary).toMatch(/3 requests were in flight: GET \/hold\/a \(\d+\.\d s\), GET \/hold\/b \(\d+\.\d s\) and GET \/leak \(\d+\.\d s\)\./);
  expect(v.summary).not.toMatch(/s3cret/);

  const bundle = await waitFor(async () => d.bundleId && (await store.list()).some((i) => i.id === d.bundleId), 5000, 'the bundle')
    .then(() => store.read(d.bundleId));
  expect(bundle.verdict!.requestsInFlight).toEqual(reqs);
  await killGroup(master);
}, 120_000);

test('--no-requests: nothing is captured, and the verdict says why none are listed', async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  const { agent, deaths } = await startAgent({ requests: false });
  expect(agent.features().find((f) => f.name === 'requests')).toMatchObject({ enabled: false });
  const cg = createMemoryCgroup(`pm-whyreq-off-${process.pid}`, 160 * MiB);
  cgroups.push(cg);
  const { port, master, worker, key } = await asgiService(cg);
  await waitFor(() => agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 10_000, 'the worker tracked');
  const pending = [get(port, '/hold/a', 60_000).catch((e: Error) => e)];
  await sleep(500);
  expect(agent.why(key)).toMatchObject({ requestsNote: 'not captured (--no-requests)' });
  expect(agent.why(key)!.requests).toBeUndefined();
  pending.push(get(port, '/leak', 60_000).catch((e: Error) => e));
  const d = await waitFor(() => deaths.find((x) => x.identity?.pid === worker), 30_000, `the death of worker ${worker}`);
  await Promise.all(pending);
  expect(d.verdict!.kind).toBe('oom-killed');
  expect(d.verdict!.requestsInFlight).toEqual([]);
  expect(d.verdict!.requestsNote).toBe('not captured (--no-requests)');
  expect(d.verdict!.summary).not.toMatch(/in flight|was running for/);
  await killGroup(master);
}, 120_000);
