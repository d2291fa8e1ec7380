/**
 * Where the time went when the CPU is the problem, on real gunicorn workers
 * asked about live over the agent's HTTP API (GET /api/workers/:worker/why,
 * through the real server process): a worker sharing one CPU with busy rivals
 * spends its time waiting for a CPU (runqueue); a worker in a cgroup with a
 * small CFS quota spends it throttled. Both are measured in the kernel from
 * the scheduler's own transitions, and the request they serve is in flight.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as http from 'http';
import { createLogger } from '../../agent/log';
import type { RequestInFlight, TimeBreakdown } from '../../proto/codec';
import { runPremortem, type Running } from '../../agent/run';
import { killGroup, procStartTicks, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { createCpuCgroup, TestCgroup } from '../helpers/cgroup';

const WINDOW_MS = 3000;
let app: AppDir;
let running: Running;
let dataDir: string;
const cgroups: TestCgroup[] = [];

beforeAll(async () => {
  app = appDir('whycpu');
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-whycpu-'));
  running = await runPremortem(
    { port: 0, dataDir, intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, match: app.match, autoDiscover: false, discoveryIntervalMs: 500 },
    { logger: createLogger({ level: 'error' }), metrics: false, privilegeSeparation: true },
  );
});

afterAll(async () => {
  await running?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  await stopAll();
  for (const cg of cgroups.reverse()) await cg.remove();
  app?.remove();
});

function getJson(urlPath: string): Promise<{ status: number; body: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return new Promise((resolve, reject) => {
    http.get(new URL(urlPath, running.url), { agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    }).on('error', reject);
  });
}

/** Starts a one-worker gunicorn, has it spin on a request, and asks where its last WINDOW_MS went. */
async function spinningWorker(prefix: string[]): Promise<{ t: TimeBreakdown; path: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '1', '--timeout', '120'], { prefix });
  await ready(port);
  const [worker] = await workersOf(master, 1);
  const key = `${worker}:${procStartTicks(worker)}`;
  await waitFor(() => running.agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 10_000, 'the worker tracked');
  const pending = get(port, '/spin/60', 90_000).catch((e: Error) => e);
  // Spin for more than the window (and a couple of ticks), then ask.
  await sleep(WINDOW_MS + 1500);
  const { status, body } = await getJson(`/api/workers/${key}/why?window_s=${WINDOW_MS / 1000}`);
  expect(status).toBe(200);
  expect(body.worker).toMatchObject({ pid: worker });
  expect((body.requestsInFlight as RequestInFlight[]).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /spin/60']);
  const t = body.timeBreakdown as TimeBreakdown;
  expect(t.windowMs).toBe(WINDOW_MS);
  expect(t.windowSource).toBe('asked for');
  // A single-threaded worker spinning the whole window: all of it is accounted, none of it asleep.
  const s = t.total!;
  const total = Object.values(s).reduce((a, b) => a + b, 0);
  expect(total).toBeGreaterThan(0.8 * WINDOW_MS * 1e6);
  expect(total).toBeLessThanOrEqual(1.05 * WINDOW_MS * 1e6 * Math.max(1, t.threads));
  expect(s.sleepNetNs + s.sleepLockNs + s.sleepTimerNs + s.sleepOtherNs + s.blockedIoNs).toBeLessThan(0.1 * WINDOW_MS * 1e6);
  expect(s.onCpuNs).toBeGreaterThan(0.02 * WINDOW_MS * 1e6);
  // By pid too; the server's timeout is the default window.
  const byPid = await getJson(`/api/workers/${worker}/why`);
  expect(byPid.body.timeBreakdown.windowSource).toMatch(/^gunicorn --timeout 120, cut to the 30 s kept|tracked for/);
  return { t, path: '/spin/60', stop: async () => { await killGroup(master); await pending; } };
}

test('a worker starved of CPU by rivals on its CPU: its time goes to the runqueue', async () => {
  // Three busy rivals pinned on CPU 0 with the worker: it gets about a quarter of it.
  const rivals = [0, 1, 2].map(() => start('taskset', ['-c', '0', '/usr/bin/python3.11', '-c', 'while True: pass'], { stdio: 'ignore' }));
  try {
    const { t, stop } = await spinningWorker(['taskset', '-c', '0']);
    expect(t.total!.runqWaitNs).toBeGreaterThan(0.4 * WINDOW_MS * 1e6);
    expect(t.total!.runqWaitNs).toBeGreaterThan(t.total!.onCpuNs);
    expect(t.total!.throttledNs).toBe(0);
    await stop();
  } finally {
    for (const r of rivals) await killGroup(r);
  }
}, 60_000);

test('the route answers 404 for no such worker and 400 for a bad window', async () => {
  expect(await getJson('/api/workers/1:1/why')).toMatchObject({ status: 404, body: { error: { code: 'PREMORTEM_ERR_NOT_FOUND' } } });
  expect(await getJson('/api/workers/1/why?window_s=0')).toMatchObject({ status: 400, body: { error: { code: 'PREMORTEM_ERR_BAD_REQUEST' } } });
});

test('a worker in a cgroup with a 10 % CPU quota: its time goes to throttling', async () => {
  const cg = createCpuCgroup(`pm-whycpu-${process.pid}`, 10_000, 100_000);
  cgroups.push(cg);
  const { t, stop } = await spinningWorker(cg.prefix);
  expect(t.total!.throttledNs).toBeGreaterThan(0.5 * WINDOW_MS * 1e6);
  expect(t.total!.throttledNs).toBeGreaterThan(t.total!.onCpuNs + t.total!.runqWaitNs);
  await stop();
}, 60_000);
