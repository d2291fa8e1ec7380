/**
 * GET /api/health (liveness) and GET /api/ready (readiness) of the real agent,
 * served by the capability-less server process as in production:
 *   - ready answers 503 until the first tick ran, then 200;
 *   - health answers 200 while the tracer answers, and 503 with the reason
 *     within max(10 s, 3 x interval) after the native tracer of the running
 *     agent is really closed;
 *   - when the agent's event loop is stuck past the same limit, the server
 *     process answers 503 itself instead of hanging the probe; a shorter stall
 *     (a busy agent) is still live.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../../agent/run';
import { createLogger } from '../../agent/log';
import { LIVENESS_MIN_MS } from '../../agent/health';
import { sleep, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, freePort, gunicorn, ready, workersOf } from '../helpers/services';
import { getText } from '../helpers/metrics';

jest.setTimeout(90_000);

let app: AppDir;
let tmp: string;
let running: Running | undefined;
const quiet = createLogger({ level: 'error' });

beforeAll(() => {
  app = appDir('health');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-health-'));
});

afterAll(async () => {
  await running?.stop();
  await stopAll();
  app?.remove();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const json = async (url: string) => {
  const r = await getText(url);
  return { status: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
};

test('/api/ready: 503 before the first tick, 200 after it; /api/health 200 meanwhile', async () => {
  // Ticks fall on multiples of the interval: start just after one, so the first is ~10 s away.
  const intervalMs = 10_000;
  while (Date.now() % intervalMs > 300) await sleep(50);
  running = await runPremortem(
    { host: '127.0.0.1', port: 0, dataDir: path.join(tmp, 'a'), intervalMs, windowMs: 600_000, bundleWindowMs: 300_000, match: app.match, autoDiscover: false },
    { logger: quiet, privilegeSeparation: true, metrics: false },
  );
  const ticked = new Promise((r) => running!.agent.once('tick', r));
  try {
  if (running.health.readiness().ready) throw new Error('the agent took a whole interval (10 s) to start: cannot observe readiness before the first tick');
  const before = await json(new URL('api/ready', running.url).toString());
  expect(before.status).toBe(503);
  expect(before.body).toMatchObject({ ready: false, reason: expect.stringMatching(/first interval/) });
  const health = await json(new URL('api/health', running.url).toString());
  expect(health.status).toBe(200);
  expect(health.body).toMatchObject({ ok: true, live: true, limitMs: 3 * intervalMs });
  await ticked;
  const after = await json(new URL('api/ready', running.url).toString());
  expect(after.status).toBe(200);
  expect(after.body).toMatchObject({ ready: true, firstTickMs: expect.any(Number) });
  } finally {
    await running.stop();
    running = undefined;
  }
});

test('/api/health: 503 with the reason once the native tracer of a running agent is closed; 503 from the server process when the agent is stuck', async () => {
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '1']);
  await ready(port);
  await workersOf(master, 1);
  running = await runPremortem(
    { host: '127.0.0.1', port: 0, dataDir: path.join(tmp, 'b'), intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, match: app.match, autoDiscover: false },
    { logger: quiet, privilegeSeparation: true },
  );
  const url = new URL('api/health', running.url).toString();
  await waitFor(() => running!.health.readiness().ready, 10_000, 'the first tick');
  expect((await json(url)).status).toBe(200);

  // The agent's event loop stuck for 13 s. Two probes from their own processes: one asks 1 s into the
  // stall (the agent is busy, not dead: 200), one 9 s in (by its answer the agent has been silent
  // past the 10 s limit: 503, from the server process, without waiting on the agent).
  const probe = (delayMs: number) => {
    const child = spawn(process.execPath, ['-e', `console.log('ready'); setTimeout(() => require('http').get(${JSON.stringify(url)}, { agent: false }, (r) => { let b = ''; r.on('data', (d) => b += d); r.on('end', () => console.log(r.statusCode + ' ' + b)); }), ${delayMs})`]);
    let out = '';
    const started = new Promise<void>((resolve) => child.stdout.on('data', (d) => { out += d; if (out.includes('ready')) resolve(); }));
    const answer = new Promise<{ status: number; body: Record<string, unknown> }>((resolve) => child.once('exit', () => {
      const line = out.replace('ready\n', '');
      resolve({ status: Number(line.slice(0, 3)), body: JSON.parse(line.slice(4)) });
    }));
    return { started, answer };
  };
  const early = probe(1000);
  const late = probe(9000);
  await Promise.all([early.started, late.started]);
  const stuckUntil = Date.now() + 13_000;
  while (Date.now() < stuckUntil) { /* the agent's loop is stuck */ }
  const busy = await early.answer;
  expect(busy.status).toBe(200);
  expect(busy.body).toMatchObject({ ok: true, live: true, partial: true, reason: expect.stringMatching(/agent is busy/) });
  const stuck = await late.answer;
  expect(stuck.status).toBe(503);
  expect(stuck.body).toMatchObject({ ok: false, live: false, reason: expect.stringMatching(/agent did not answer: nothing heard from it for \d+ ms \(limit 10000 ms\)/) });
  expect((await json(url)).status).toBe(200); // the loop runs again: live again

  // The tracer stops answering for real.
  const closedAt = Date.now();
  running.agent.nativeTracer()!.close();
  let last: { status: number; body: Record<string, unknown> };
  for (;;) {
    last = await json(url);
    if (last.status === 503) break;
    if (Date.now() - closedAt > 3 * LIVENESS_MIN_MS) throw new Error(`/api/health still ${last.status} ${JSON.stringify(last.body).slice(0, 300)} ${Date.now() - closedAt} ms after the tracer closed`);
    await sleep(250);
  }
  const elapsed = Date.now() - closedAt;
  expect(elapsed).toBeGreaterThanOrEqual(LIVENESS_MIN_MS - 1500); // the last answer came at most one probe (1 s) before the close
  expect(last.body).toMatchObject({ ok: false, live: false, reason: expect.stringMatching(/tracer is closed/) });
  // Readiness is not liveness: the agent started and ticked.
  expect((await json(new URL('api/ready', running.url).toString())).status).toBe(200);
});
