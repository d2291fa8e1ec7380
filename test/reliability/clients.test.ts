/**
 * Reliability 7: slow and hostile WebSocket clients, end to end against
 * runPremortem with a real agent ticking (its server in the unprivileged child
 * process). 10 clients stop reading while asking for history as fast as the
 * rate limit allows: they are dropped at the backlog or the ping bound, the
 * server process's and the agent's RSS each rise by < 50 MiB, and a healthy viewer keeps
 * getting every Delta within 1 s of its interval. Then hostile input: an
 * oversized message (1009), malformed protobuf (Error frame + 1007), a text
 * frame (1003), a flood of tiny fragments (1009 at the size bound), oversized
 * headers (431), and the connection cap (503 + Retry-After). Nothing crashes
 * or stalls: ticks and /api/health continue.
 * Existing coverage: test/unit/server.test.ts checks each rule on the bare server.
 * The agent runs as a CLI child so that its RSS and its server process's are
 * their own (measured separately; both must stay under +50 MiB).
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { SERVER_DEFAULTS } from '../../agent/server';
import { killGroup, python, printed, sleep, stopAll, waitFor } from '../helpers/procs';
import { childPids, connect, healthOf, MiB, rssBytes, startCliAgent, upgradeStatus, type CliAgent, type Viewer } from '../soak/harness';

let agent: CliAgent;
let dataDir: string;
let busyPid = 0;
const viewers: Viewer[] = [];
afterAll(async () => {
  for (const v of viewers) v.ws.terminate();
  if (agent) await killGroup(agent.child, 'SIGTERM');
  await stopAll();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-clients-'));
  const busy = python('print("ready", flush=True)\nimport time\nwhile True: time.sleep(0.001)', { stdio: ['ignore', 'pipe', 'pipe'] });
  await printed(busy, /ready/);
  busyPid = busy.pid!;
  // The agent in its own process (the CLI), so that its RSS is its own.
  agent = await startCliAgent(['--no-auto', '--pid', String(busy.pid), '--interval-ms', '100', '--window-s', '300', '--bundle-window-s', '60', '--data-dir', dataDir]);
  await sleep(8000); // ~80 buckets of history to ask for (tens of KiB per answer)
});

const wsUrl = () => agent.url.replace(/^http/, 'ws') + 'ws';
const agentPid = () => agent.child.pid!;
const serverPid = () => childPids(agentPid()).find((p) => /server\/child\.js/.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8')))!;
const counters = async () => (await healthOf(agent.url)).server as Record<string, number>;

test('10 clients that stop reading: dropped at the bound, RSS < +50 MiB, a healthy viewer keeps up', async () => {
  const healthy = await connect(wsUrl());
  viewers.push(healthy);
  healthy.send({ subscribe: { all: true } });
  const st = fs.readFileSync(`/proc/${busyPid}/stat`, 'utf8');
  const workerKey = `${busyPid}:${st.slice(st.lastIndexOf(')') + 2).split(' ')[19]}`;
  const slow: Viewer[] = [];
  for (let i = 0; i < 10; i++) {
    const v = await connect(wsUrl());
    v.collect = false;
    viewers.push(v);
    slow.push(v);
    v.send({ subscribe: { all: true } });
  }
  // Each asks for its worker's whole history 40 times a second (under the 50/s limit).
  const pump = setInterval(() => {
    for (const v of slow) if (v.ws.readyState === v.ws.OPEN) for (let k = 0; k < 4; k++)
      v.send({ historyRequest: { requestId: k, workerKey, fromMs: 0, toMs: Date.now() + 1000 } });
  }, 100);
  let rss0 = { server: 0, agent: 0 };
  let peak = { ...rss0 };
  let t0 = 0;
  try {
    // Warm-up with every client reading: both heaps grow to what this traffic needs
    // anyway (sooner or later, depending on the machine's load), so what follows
    // measures what the stalled clients cost.
    const frames0 = slow.reduce((n, v) => n + v.frames, 0);
    await waitFor(() => slow.reduce((n, v) => n + v.frames, 0) >= frames0 + 10 * 30, 30_000, 'the warm-up traffic');
    await sleep(2000);
    rss0 = { server: rssBytes(serverPid()), agent: rssBytes(agentPid()) };
    peak = { ...rss0 };
    for (const v of slow) (v.ws as unknown as { _socket: net.Socket })._socket.pause(); // stops reading; the server's sends pile up
    t0 = Date.now();
    for (;;) {
      peak = { server: Math.max(peak.server, rssBytes(serverPid())), agent: Math.max(peak.agent, rssBytes(agentPid())) };
      const c = await counters();
      if (c.droppedSlowClients + c.deadPeers >= 10) break; // the backlog bound or the ping bound, whichever comes first
      if (Date.now() - t0 > 60_000) throw new Error(`10 slow clients not dropped within 60 s: ${JSON.stringify(c)} rss ${JSON.stringify(peak)} vs ${JSON.stringify(rss0)}`);
      await sleep(50);
    }
  } finally {
    clearInterval(pump);
  }
  const dropMs = Date.now() - t0;
  const deltas = healthy.messages.filter((m) => m.body === 'delta' && m.atMs >= t0).map((m) => m.atMs);
  const gaps = deltas.slice(1).map((t, i) => t - deltas[i]);
  const c = await counters();
  console.log(`slow clients: 10 dropped after ${dropMs} ms (${c.droppedSlowClients} at the ${SERVER_DEFAULTS.maxClientBacklogBytes / MiB} MiB backlog bound, ${c.deadPeers} at the ${SERVER_DEFAULTS.pingIntervalMs} ms ping bound); server RSS +${((peak.server - rss0.server) / MiB).toFixed(1)} MiB, agent RSS +${((peak.agent - rss0.agent) / MiB).toFixed(1)} MiB; healthy viewer: ${deltas.length} Deltas, max gap ${Math.max(...gaps)} ms`);
  expect(deltas.length).toBeGreaterThan(dropMs / 100 / 2);
  expect(Math.max(...gaps)).toBeLessThan(100 + 1000);
  expect((peak.server - rss0.server) / MiB).toBeLessThan(50);
  expect((peak.agent - rss0.agent) / MiB).toBeLessThan(50);
  expect(c.droppedSlowClients + c.deadPeers).toBeGreaterThanOrEqual(10);
}, 120_000);

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
  const port = Number(new URL(agent.url).port);
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`));
    let out = '';
    s.on('data', (d) => { out += d; });
    s.on('close', () => resolve(out));
    s.on('error', () => resolve(out));
  });
  expect(reply).toMatch(/^HTTP\/1\.1 431/);
  // The cap: maxClients viewers, then 503 with Retry-After.
  const open = (await counters()).clients;
  const extra: Viewer[] = [];
  for (let i = open; i < SERVER_DEFAULTS.maxClients; i++) { const v = await connect(wsUrl()); v.collect = false; extra.push(v); viewers.push(v); }
  expect(await upgradeStatus(wsUrl())).toBe(503);
  for (const v of extra) v.ws.terminate();
  // Still alive and ticking.
  const v = await connect(wsUrl());
  viewers.push(v);
  v.send({ subscribe: { all: true } });
  await waitFor(() => v.messages.some((x) => x.body === 'delta'), 3000, 'a Delta after the abuse');
  const h = await healthOf(agent.url);
  const serverBefore = serverPid();
  expect(h.server.malformedMessages).toBeGreaterThanOrEqual(2);
  expect(h.server.oversizeMessages).toBeGreaterThanOrEqual(2);
  expect(h.server.rejectedCap).toBeGreaterThanOrEqual(1);
  expect(agent.output()).not.toMatch(/server process exited/);
  expect(serverPid()).toBe(serverBefore);
  console.log(`hostile: close codes ${JSON.stringify(codes)}, oversized headers 431, cap 503 at ${SERVER_DEFAULTS.maxClients} viewers; server process never restarted`);
}, 60_000);
