/**
 * Per thread where it matters: a real gunicorn gthread worker (a main thread
 * that polls, request threads that work) dies with one request thread busy;
 * its breakdown is thread time across its threads, and the per-thread list
 * tells the busy request thread from the main thread.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createAgent, Agent } from '../../agent/agent';
import { createLogger } from '../../agent/log';
import type { Death } from '../../proto/codec';
import { killGroup, sleep, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, freePort, get, gunicorn, ready, workersOf } from '../helpers/services';

let app: AppDir;
let agent: Agent;
let dataDir: string;
const deaths: Death[] = [];

beforeAll(async () => {
  app = appDir('whythreads');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-whythreads-'));
  agent = createAgent(
    { port: null, dataDir, intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, match: app.match, autoDiscover: false, discoveryIntervalMs: 500 },
    { logger: createLogger({ level: 'error' }) },
  );
  agent.on('death', (d: Death) => deaths.push(d));
  await agent.start();
});

afterAll(async () => {
  await agent?.stop();
  await stopAll();
  app?.remove();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('a gthread worker killed while a request thread spins: time across its threads, the busy thread named', async () => {
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '1', '--threads', '4', '-k', 'gthread', '--timeout', '8']);
  await ready(port);
  const [worker] = await workersOf(master, 1);
  await waitFor(() => agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 10_000, 'the worker tracked');
  const pending = get(port, '/spin/60', 90_000).catch((e: Error) => e);
  // Long enough for per-thread snapshots on both sides of the 8 s window's start.
  await sleep(12_000);
  process.kill(worker, 'SIGKILL');
  const d = await waitFor(() => deaths.find((x) => x.identity?.pid === worker), 15_000, `the death of ${worker}`);
  await pending;
  const t = d.verdict!.timeBreakdown!;
  expect(t.windowSource).toBe('gunicorn --timeout 8');
  expect(t.threads).toBeGreaterThanOrEqual(2);
  expect(d.verdict!.summary).toMatch(new RegExp(`Of its last 8 s, across its ${t.threads} threads, `));
  const main = t.threadTimes.find((x) => x.isMain)!;
  expect(main).toBeDefined();
  expect(main.tid).toBe(worker);
  // The busiest thread is the request thread spinning (on CPU or waiting for one), not the main thread.
  const busiest = t.threadTimes[0];
  expect(busiest.isMain).toBe(false);
  expect(busiest.time!.onCpuNs + busiest.time!.runqWaitNs).toBeGreaterThan(0.5 * t.windowMs * 1e6);
  expect(main.time!.onCpuNs + main.time!.runqWaitNs).toBeLessThan(busiest.time!.onCpuNs + busiest.time!.runqWaitNs);
  // The request it was serving was read by that thread.
  expect(d.verdict!.requestsInFlight!.map((r) => [r.path, r.tid])).toEqual([['/spin/60', busiest.tid]]);
  await killGroup(master);
}, 60_000);
