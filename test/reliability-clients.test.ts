/**
 * Reliability 7: slow and hostile WebSocket clients, end to end against
 * runPremortem with a real agent ticking (its server in the unprivileged child
 * process). 10 clients stop reading while asking for history as fast as the
 * rate limit allows: they are dropped at the backlog bound, the server
 * process's and the agent's RSS rise by < 50 MiB, and a healthy viewer keeps
 * getting every Delta within 1 s of its interval. Then hostile input: an
 * oversized message (1009), malformed protobuf (Error frame + 1007), a text
 * frame (1003), a flood of tiny fragments (1009 at the size bound), oversized
 * headers (431), and the connection cap (503 + Retry-After). Nothing crashes
 * or stalls: ticks and /api/health continue.
 * Existing coverage: test/server.test.ts checks each rule on the bare server.
 *
 * FAILS TODAY (reported): with the server's default per-client backlog bound
 * (SERVER_DEFAULTS.maxClientBacklogBytes = 8 MiB) ten stalled clients can hold
 * 80 MiB; measured +65 MiB RSS in the server process before the ping bound
 * (15 s) drops them. A 4 MiB default (or one budget shared by all clients)
 * keeps ten under 50 MiB.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../agent/run';
import { SERVER_DEFAULTS } from '../agent/server';
import { python, printed, sleep, stopAll, waitFor } from './helpers/procs';
import { connect, healthOf, MiB, quietLogger, rssBytes, upgradeStatus, type Viewer } from './soak/harness';

let running: Running;
let dataDir: string;
const viewers: Viewer[] = [];
afterAll(async () => {
  for (const v of viewers) v.ws.terminate();
  await running?.stop();
  await stopAll();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-clients-'));
  const busy = python('print("ready", flush=True)\nimport time\nwhile True: time.sleep(0.001)', { stdio: ['ignore', 'pipe', 'pipe'] });
  await printed(busy, /ready/);
  running = await runPremortem({ port: 0, dataDir, autoDiscover: false, pids: [busy.pid!], intervalMs: 100, windowMs: 300_000, bundleWindowMs: 60_000 },
    { logger: quietLogger() });
  await sleep(8000); // ~80 buckets of history to ask for (tens of KiB per answer)
});

const wsUrl = () => running.url!.replace(/^http/, 'ws') + 'ws';
const serverPid = () => (running.server as unknown as { pid: number }).pid;

test('10 clients that stop reading: dropped at the bound, RSS < +50 MiB, a healthy viewer keeps up', async () => {
  const healthy = await connect(wsUrl());
  viewers.push(healthy);
  healthy.send({ subscribe: { all: true } });
  const key = running.agent.snapshot().workers[0];
  const workerKey = `${key.identity!.pid}:${key.identity!.startTicks}`;
  const rss0 = { server: rssBytes(serverPid()), agent: rssBytes(process.pid) };
  const slow: Viewer[] = [];
  for (let i = 0; i < 10; i++) {
    const v = await connect(wsUrl());
    v.collect = false;
    viewers.push(v);
    slow.push(v);
    v.send({ subscribe: { all: true } });
    (v.ws as unknown as { _socket: net.Socket })._socket.pause(); // stops reading; the server's sends pile up
  }
  // Each asks for its worker's whole history 40 times a second (under the 50/s limit).
  const pump = setInterval(() => {
    for (const v of slow) if (v.ws.readyState === v.ws.OPEN) for (let k = 0; k < 4; k++)
      v.send({ historyRequest: { requestId: k, workerKey, fromMs: 0, toMs: Date.now() + 1000 } });
  }, 100);
  let peak = { ...rss0 };
  const t0 = Date.now();
  try {
    await waitFor(() => {
      peak = { server: Math.max(peak.server, rssBytes(serverPid())), agent: Math.max(peak.agent, rssBytes(process.pid)) };
      const c = running.server!.counters();
      return c.droppedSlowClients + c.deadPeers >= 10; // the backlog bound or the ping bound, whichever comes first
    }, 60_000, '10 slow clients dropped');
  } catch (e) {
    throw new Error(`${(e as Error).message}: ${JSON.stringify(running.server!.counters())} rss ${JSON.stringify(peak)} vs ${JSON.stringify(rss0)}`);
  } finally {
    clearInterval(pump);
  }
  const dropMs = Date.now() - t0;
  const deltas = healthy.messages.filter((m) => m.body === 'delta' && m.atMs >= t0).map((m) => m.atMs);
  const gaps = deltas.slice(1).map((t, i) => t - deltas[i]);
  expect(deltas.length).toBeGreaterThan(dropMs / 100 / 2);
  expect(Math.max(...gaps)).toBeLessThan(100 + 1000);
  expect((peak.server - rss0.server) / MiB).toBeLessThan(50);
  expect((peak.agent - rss0.agent) / MiB).toBeLessThan(50);
  const h = await healthOf(running.url!);
  expect(h.server.droppedSlowClients + h.server.deadPeers).toBeGreaterThanOrEqual(10);
  console.log(`slow clients: 10 dropped after ${dropMs} ms (${h.server.droppedSlowClients} at the ${SERVER_DEFAULTS.maxClientBacklogBytes / MiB} MiB backlog bound, ${h.server.deadPeers} at the ${SERVER_DEFAULTS.pingIntervalMs} ms ping bound); server RSS +${((peak.server - rss0.server) / MiB).toFixed(1)} MiB, agent RSS +${((peak.agent - rss0.agent) / MiB).toFixed(1)} MiB; healthy viewer: ${deltas.length} Deltas, max gap ${Math.max(...gaps)} ms`);
}, 90_000);

test('hostile input closes with the right code; the agent goes on ticking', async () => {
  const closeOf = async (act: (v: Viewer) => void) => {
    const v = await connect(wsUrl());
    viewers.push(v);
    act(v);
    return (await v.closed).code;
  };
  const codes: Record<string, number> = {};
  codes.oversize = await closeOf((v) => v.ws.send(Buffer.alloc(SERVER_DEFAULTS.maxMessageBytes + 1)));
  codes.malformed = await closeOf((v) => v.ws.send(Buffer.from([0x12, 0x05, 0x01]))); // subscribe: 5 bytes announced, 1 sent
  codes.text = await closeOf((v) => v.ws.send('hello'));
  codes.fragments = await closeOf((v) => {
    for (let i = 0; i <= SERVER_DEFAULTS.maxMessageBytes; i += 16) v.ws.send(Buffer.alloc(16), { fin: false, binary: true });
    v.ws.send(Buffer.alloc(16), { fin: true, binary: true });
  });
  expect(codes).toEqual({ oversize: 1009, malformed: 1007, text: 1003, fragments: 1009 });
  // The malformed one got an Error frame first.
  const m = await connect(wsUrl());
  viewers.push(m);
  m.ws.send(Buffer.from([0x12, 0x05, 0x01]));
  await m.closed;
  expect(m.messages.some((x) => x.body === 'error' && /MALFORMED/.test(x.error!.code))).toBe(true);
  // Oversized headers: 431.
  const port = Number(new URL(running.url!).port);
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`));
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
  });
  expect(reply).toMatch(/^HTTP\/1\.1 431/);
  // The cap: maxClients viewers, then 503 with Retry-After.
  const open = (running.server!.counters().clients);
  const extra: Viewer[] = [];
  for (let i = open; i < SERVER_DEFAULTS.maxClients; i++) { const v = await connect(wsUrl()); v.collect = false; extra.push(v); viewers.push(v); }
  expect(await upgradeStatus(wsUrl())).toBe(503);
  for (const v of extra) v.ws.terminate();
  // Still alive and ticking.
  const v = await connect(wsUrl());
  viewers.push(v);
  v.send({ subscribe: { all: true } });
  await waitFor(() => v.messages.some((x) => x.body === 'delta'), 3000, 'a Delta after the abuse');
  const h = await healthOf(running.url!);
  expect(h.server.malformedMessages).toBeGreaterThanOrEqual(2);
  expect(h.server.oversizeMessages).toBeGreaterThanOrEqual(2);
  expect(h.server.rejectedCap).toBeGreaterThanOrEqual(1);
  expect((running.server as unknown as { restarts: number }).restarts).toBe(0);
  console.log(`hostile: close codes ${JSON.stringify(codes)}, oversized headers 431, cap 503 at ${SERVER_DEFAULTS.maxClients} viewers; server process never restarted`);
}, 60_000);
