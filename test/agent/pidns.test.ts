/**
 * A gunicorn pool inside its own PID namespace (unshare --pid --fork
 * --mount-proc: the master is pid 1 inside, as in a container) and its own
 * cgroup v2, on the host's network. gunicorn's --timeout kills a worker
 * blocked in a handler: the verdict must name the master and both pids of the
 * worker — the host's and the one its own log printed ("Booting worker with
 * pid: N") — and the bundle, `premortem show` and the service must carry them,
 * with the PSI of the service's own cgroup.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createAgent, Agent } from '../../agent/agent';
import { formatBundle } from '../../agent/cli/format';
import { createLogger } from '../../agent/log';
import type { Bundle, Death } from '../../proto/codec';
import { createBundleStore, BundleStore } from '../../agent/store';
import { createCgroup2, TestCgroup2 } from '../helpers/metrics';
import { printed, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, freePort, get, gunicorn, ready } from '../helpers/services';

let app: AppDir;
let dataDir: string;
let store: BundleStore;
let agent: Agent;
let cg: TestCgroup2 | undefined;
const deaths: Death[] = [];
const bundles: Bundle[] = [];

beforeAll(async () => {
  app = appDir('pidns');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-pidns-data-'));
  store = createBundleStore({ dir: dataDir, logger: createLogger({ level: 'error' }) });
  await store.ready();
  agent = createAgent(
    { port: null, dataDir, intervalMs: 500, windowMs: 120_000, bundleWindowMs: 60_000, match: app.match, autoDiscover: false, discoveryIntervalMs: 500 },
    { store, logger: createLogger({ level: 'warn' }) },
  );
  agent.on('death', (d) => deaths.push(d));
  agent.on('bundle', (_i, b) => bundles.push(b));
  await agent.start();
});

afterAll(async () => {
  await agent?.stop();
  await store?.close();
  await stopAll();
  await cg?.remove();
  app?.remove();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a worker in a PID namespace killed by its master after --timeout: the verdict names both pids and the master', async () => {
  cg = createCgroup2(`pm-pidns-${process.pid}`);
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '1', '--timeout', '2', '--graceful-timeout', '1'], {
    prefix: [...cg.prefix(), '/usr/bin/unshare', '--pid', '--fork', '--mount-proc'],
  });
  let log = '';
  master.stderr!.on('data', (d) => (log += d));
  const booted = await printed(master, /Booting worker with pid: (\d+)/);
  const nsWorkerPid = Number(/Booting worker with pid: (\d+)/.exec(booted)![1]);
  await ready(port);

  // The pool's master is the python process under unshare: pid 1 inside.
  const svc = await waitFor(() => agent.snapshot().services.find((s) => s.cgroup === cg!.path), 15_000, 'the service in its cgroup');
  const tracked = await waitFor(() => {
    const ws = agent.snapshot().workers.filter((w) => w.identity?.serviceId === svc.id && w.state === 'alive');
    const m = ws.find((w) => w.identity?.role === 'master');
    const wk = ws.find((w) => w.identity?.role === 'worker');
    return m && wk ? { m: m.identity!, w: wk.identity! } : undefined;
  }, 15_000, 'master and worker tracked');
  expect(svc.ownPidNs).toBe(true);
  expect(svc.ownNetNs).toBe(false);
  expect(tracked.m.nsPid).toBe(1);
  expect(tracked.w.nsPid).toBe(nsWorkerPid);
  expect(tracked.w.pid).not.toBe(nsWorkerPid);
  expect(fs.readFileSync(`/proc/${tracked.w.pid}/status`, 'utf8')).toMatch(new RegExp(`^NSpid:\\s+${tracked.w.pid}\\s+${nsWorkerPid}$`, 'm'));

  await get(port, '/block/30', 20_000).catch(() => undefined);
  const d = await waitFor(() => deaths.find((x) => x.identity?.pid === tracked.w.pid), 20_000, 'the worker\'s death');
  expect(d.verdict).toMatchObject({ kind: 'killed-by-master', senderPid: tracked.m.pid, failure: true });
  expect(log).toMatch(new RegExp(`WORKER TIMEOUT \\(pid:${nsWorkerPid}\\)`)); // gunicorn names the namespaced pid
  const s = d.verdict!.summary;
  expect(s).toContain(`master pid ${tracked.m.pid}`);
  expect(s).toContain(`worker pid ${tracked.w.pid}`);
  expect(s).toContain(`Inside its PID namespace the worker is pid ${nsWorkerPid} and its master pid 1 (host pids ${tracked.w.pid} and ${tracked.m.pid}).`);
  expect(d.verdict!.evidence).toContainEqual(expect.objectContaining({ what: 'pid in its namespace', value: `${nsWorkerPid}; master 1` }));

  const b = await waitFor(() => bundles.find((x) => x.worker?.pid === tracked.w.pid), 20_000, 'the bundle');
  expect(b.worker!.nsPid).toBe(nsWorkerPid);
  expect(b.timelines.find((t) => t.identity?.role === 'master')?.identity?.nsPid).toBe(1);
  expect(b.service).toMatchObject({ ownPidNs: true, cgroup: cg.path });
  // PSI of the service's own cgroup v2 (this machine's unified hierarchy has per-cgroup pressure files).
  expect(b.service!.pressure?.path).toBe(cg.path);
  const text = formatBundle(await store.read(d.bundleId));
  expect(text).toContain(`worker    pid ${tracked.w.pid} (${nsWorkerPid} in its PID namespace)`);
  expect(text).toContain(`Inside its PID namespace the worker is pid ${nsWorkerPid}`);
});
