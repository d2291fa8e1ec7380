/**
 * An OOM post-mortem names the cgroup the kernel acted in — the same one in
 * the summary, the evidence, the verdict and the bundle's facts — whichever
 * server ran the worker and wherever in the hierarchy the limit sits. (A dying
 * task's /proc shows the root cgroup: read too late, it named "/".)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createAgent, Agent } from '../../agent/agent';
import { createBundleStore, BundleStore } from '../../agent/store';
import { createLogger } from '../../agent/log';
import type { Death } from '../../proto/codec';
import { killGroup, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { createCgroup, createMemoryCgroup, TestCgroup } from '../helpers/cgroup';

const MiB = 1024 * 1024;
let app: AppDir;
let dataDir: string;
let store: BundleStore;
let agent: Agent;
const deaths: Death[] = [];
const cgroups: TestCgroup[] = [];

beforeAll(async () => {
  app = appDir('oomcg');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-oomcg-data-'));
  store = createBundleStore({ dir: dataDir, logger: createLogger({ level: 'error' }) });
  await store.ready();
  agent = createAgent(
    { port: null, dataDir, intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, match: app.match, autoDiscover: false, discoveryIntervalMs: 500 },
    { store, logger: createLogger({ level: 'error' }) },
  );
  agent.on('death', (d: Death) => deaths.push(d));
  await agent.start();
});

afterAll(async () => {
  await agent?.stop();
  await store?.close();
  await stopAll();
  for (const cg of cgroups.reverse()) await cg.remove();
  app?.remove();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

/** Leaks in the worker until it is OOM-killed; returns its judged death and bundle. */
async function leakUntilKilled(port: number, worker: number) {
  await waitFor(() => agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 10_000, 'the worker tracked');
  await sleep(1000);
  for (let i = 0; i < 80; i++) {
    const r = await get(port, '/leak/8').catch(() => undefined);
    if (!r || r.status !== 200) break;
    await sleep(100);
  }
  const d = await waitFor(() => deaths.find((x) => x.identity?.pid === worker), 15_000, `the death of ${worker}`);
  const bundle = await waitFor(async () => d.bundleId && (await store.list()).some((i) => i.id === d.bundleId), 5000, 'the bundle')
    .then(() => store.read(d.bundleId));
  return { d, bundle };
}

function expectNamed(d: Death, bundle: Awaited<ReturnType<BundleStore['read']>>, cgPath: string, limit: number) {
  expect(d.verdict).toMatchObject({ kind: 'oom-killed', oomScope: 'cgroup', cgroupPath: cgPath, limitBytes: limit });
  expect(d.verdict!.summary).toContain(`the cgroup ${cgPath} limit is ${limit / MiB} MiB`);
  expect(d.verdict!.evidence.find((e) => e.what === 'oom cgroup')?.value).toBe(cgPath);
  expect(bundle.cgroupLimits).toMatchObject({ path: cgPath, memoryMaxBytes: limit });
}

test('uWSGI worker OOM-killed in its memory cgroup: summary, evidence and facts name that cgroup', async () => {
  const limit = 160 * MiB;
  const cg = createMemoryCgroup(`pm-oomcg-uwsgi-${process.pid}`, limit);
  cgroups.push(cg);
  const port = await freePort();
  const master = start(cg.prefix[0], [...cg.prefix.slice(1), '/usr/bin/uwsgi', '--plugin', 'python3', '--master', '--processes', '1',
    '--http-socket', `127.0.0.1:${port}`, '--chdir', app.dir, '--wsgi-file', 'app.py', '--callable', 'app', '--disable-logging']);
  await ready(port);
  const [worker] = await workersOf(master, 1);
  const { d, bundle } = await leakUntilKilled(port, worker);
  expectNamed(d, bundle, cg.path, limit);
  await killGroup(master);
}, 90_000);

test('the limit on a parent cgroup: the post-mortem names the parent, where the kernel found the limit', async () => {
  const limit = 160 * MiB;
  const parent = createMemoryCgroup(`pm-oomcg-parent-${process.pid}`, limit);
  cgroups.push(parent);
  const child = createCgroup('memory', `pm-oomcg-parent-${process.pid}/app`);
  cgroups.push(child);
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '1', '--timeout', '60'], { prefix: child.prefix });
  await ready(port);
  const [worker] = await workersOf(master, 1);
  const { d, bundle } = await leakUntilKilled(port, worker);
  expectNamed(d, bundle, parent.path, limit);
  await killGroup(master);
}, 90_000);
