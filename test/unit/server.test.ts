import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { WebSocket, type ClientOptions } from 'ws';
import { createServer, CLOSE_INCOMPATIBLE_PROTOCOL, type PremortemServer, type ServerOptions } from '../../agent/server';
import { pathMatcher } from '../../agent/server/http';
import { createBundleStore, type BundleStore } from '../../agent/store';
import { loadCodec } from '../../proto/node';
import { PROTOCOL_VERSION, type ClientMessage, type DeepPartial, type Delta, type ServerMessage } from '../../proto/codec';

const codec = loadCodec();
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const TOKEN = 'k3y-' + 'a1b2c3d4'.repeat(5);

let tmpRoot: string;
let staticDir: string;
const servers: PremortemServer[] = [];
const sockets: WebSocket[] = [];
const stores: BundleStore[] = [];

beforeAll(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-server-'));
  staticDir = path.join(tmpRoot, 'static');
  fs.mkdirSync(path.join(staticDir, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>premortem</title>');
  fs.writeFileSync(path.join(staticDir, 'assets', 'app.js'), 'console.log(1)');
  fs.writeFileSync(path.join(staticDir, 'assets', 'app.css'), 'body{}');
  fs.writeFileSync(path.join(tmpRoot, 'secret.txt'), 'outside the static dir');
  fs.symlinkSync(path.join(tmpRoot, 'secret.txt'), path.join(staticDir, 'link.txt'));
});
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.allSettled(servers.splice(0).map((s) => s.close()));
  await Promise.allSettled(stores.splice(0).map((s) => s.close()));
});
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

async function start(opts: ServerOptions = {}) {
  const server = createServer({ host: '127.0.0.1', port: 0, staticDir, logger: quiet, ...opts });
  servers.push(server);
  const addr = await server.listen();
  return { server, ...addr, base: `http://${opts.host ?? '127.0.0.1'}:${addr.port}`, wsUrl: `ws://${opts.host ?? '127.0.0.1'}:${addr.port}/ws` };
}

interface Viewer {
  ws: WebSocket;
  messages: ServerMessage[];
  closed: Promise<{ code: number; reason: string }>;
  send(msg: DeepPartial<ClientMessage>): void;
  /** Keep decoded messages in `messages` (off where a test pushes a lot). */
  collect: boolean;
}

function connect(url: string, opts: ClientOptions = {}): Promise<Viewer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    sockets.push(ws);
    const messages: ServerMessage[] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    const viewer: Viewer = { ws, messages, closed, send: (m) => ws.send(codec.encodeClientMessage(m)), collect: true };
    ws.on('message', (data) => { if (viewer.collect) messages.push(codec.decodeServerMessage(data as Buffer)); });
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('open', () => resolve(viewer));
  });
}

/** The HTTP status a refused upgrade gets (or 101 when it is accepted). */
async function upgradeStatus(url: string, opts: ClientOptions = {}): Promise<number> {
  try {
    const v = await connect(url, opts);
    v.ws.terminate();
    return 101;
  } catch (err) {
    return (err as { status: number }).status;
  }
}

function get(url: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET'):
Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A request with a raw, unnormalised target (the http client would not send '..'). */
function rawGet(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    let out = '';
    s.on('data', (d) => { out += d.toString(); });
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const bodies = (v: Viewer) => v.messages.map((m) => m.body);

describe('access', () => {
  test('binding off loopback without a token is refused at start', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com']) {
      expect(() => createServer({ host, logger: quiet })).toThrow(TypeError);
    }
    expect(() => createServer({ host: '0.0.0.0', token: 'short', logger: quiet })).toThrow(/16 characters/);
    expect(() => createServer({ host: '0.0.0.0', token: TOKEN, logger: quiet })).not.toThrow();
  });

  test('with a token (bound to 127.0.0.2), HTTP, REST and WS need it: 401 otherwise', async () => {
    const store = createBundleStore({ dir: path.join(tmpRoot, 'tokstore'), logger: quiet });
    stores.push(store);
    const { base, wsUrl, server } = await start({ host: '127.0.0.2', token: TOKEN, store });
    for (const p of ['/', '/index.html', '/assets/app.js', '/api/health', '/api/incidents', '/api/incidents/x.json', '/nope']) {
      const r = await get(base + p);
      expect([p, r.status]).toEqual([p, 401]);
      expect(r.headers['www-authenticate']).toMatch(/Bearer/);
    }
    expect((await get(base + '/api/health', { Authorization: 'Bearer ' + TOKEN.replace(/.$/, 'X') })).status).toBe(401); // same length, wrong
    expect((await get(base + '/api/health', { Authorization: 'Bearer ' + TOKEN })).status).toBe(200);
    expect((await get(base + '/api/incidents', { Authorization: 'Bearer ' + TOKEN })).status).toBe(200);
    expect((await get(`${base}/api/health?token=${TOKEN}`)).status).toBe(200);

    expect(await upgradeStatus(wsUrl)).toBe(401);
    expect(await upgradeStatus(`${wsUrl}?token=wrong`)).toBe(401);
    expect(await upgradeStatus(wsUrl, { headers: { Authorization: 'Bearer ' + TOKEN } })).toBe(101);
    expect(await upgradeStatus(`${wsUrl}?token=${TOKEN}`)).toBe(101);

    // The browser path: the page opened with ?token= sets a session cookie and drops the token from the URL.
    const page = await get(`${base}/?token=${TOKEN}`, { Accept: 'text/html' });
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/');
    const cookie = page.headers['set-cookie']![0];
    expect(cookie).toMatch(/^premortem_session=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=\//);
    expect(cookie).not.toContain(TOKEN);
    const session = cookie.split(';')[0];
    const withCookie = await get(`${base}/`, { Cookie: session });
    expect(withCookie.status).toBe(200);
    expect(withCookie.body.toString()).toContain('<title>premortem</title>');
    expect(await upgradeStatus(wsUrl, { headers: { Cookie: session } })).toBe(101);
    expect(await upgradeStatus(wsUrl, { headers: { Cookie: 'premortem_session=' + '0'.repeat(64) } })).toBe(401);
    expect(server.counters().rejectedAuth).toBe(7 + 1 + 2 + 1);
  });

  test('a foreign Origin is refused with 403 (WS and REST); a foreign Host too (DNS rebinding)', async () => {
    const { base, wsUrl, port, server } = await start();
    expect(await upgradeStatus(wsUrl, { origin: 'http://evil.example' })).toBe(403);
    expect(await upgradeStatus(wsUrl, { origin: 'null' })).toBe(403);
    expect(await upgradeStatus(wsUrl, { origin: `http://127.0.0.1:${port + 1}` })).toBe(403);
    expect(await upgradeStatus(wsUrl, { origin: `http://127.0.0.1:${port}` })).toBe(101);
    expect(await upgradeStatus(wsUrl)).toBe(101); // no Origin: not a browser
    expect((await get(base + '/api/health', { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await get(base + '/api/incidents', { Origin: 'https://evil.example' })).status).toBe(403);
    expect((await get(base + '/api/health', { Origin: `http://127.0.0.1:${port}` })).status).toBe(200);
    expect((await get(base + '/', { Host: `evil.example:${port}` })).status).toBe(403);
    expect(await upgradeStatus(wsUrl, { headers: { Host: `evil.example:${port}` }, origin: `http://evil.example:${port}` })).toBe(403);
    expect((await get(base + '/', { Host: `localhost:${port}` })).status).toBe(200);
    expect(server.counters().rejectedOrigin).toBe(7);

    const allowed = await start({ allowedOrigins: ['http://dev.local:5173'] });
    expect(await upgradeStatus(allowed.wsUrl, { origin: 'http://dev.local:5173' })).toBe(101);
  });
});

describe('HTTP', () => {
  test('static files: index by default, content types, no traversal, no symlink escape', async () => {
    const { base, port } = await start();
    const index = await get(base + '/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    expect((await get(base + '/assets/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await get(base + '/assets/app.css')).headers['content-type']).toBe('text/css; charset=utf-8');
    expect((await get(base + '/assets')).status).toBe(301);
    expect((await get(base + '/missing.js')).status).toBe(404);
    expect((await get(base + '/link.txt')).status).toBe(404);
    expect((await get(base + '/%E0%A4%A')).status).toBe(400);
    for (const target of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%2e%2e%2f%2e%2e%2fetc%2fpasswd']) {
      const out = await rawGet(port, target);
      expect([target, out]).toEqual([target, expect.not.stringContaining('outside the static dir')]);
      expect(out).not.toContain('root:');
    }
    expect((await get(base + '/api/health', {}, 'POST')).status).toBe(405);
    const head = await get(base + '/', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    // Oversized headers are refused by the HTTP parser, and the server goes on.
    expect((await get(base + '/', { 'X-Big': 'x'.repeat(20_000) })).status).toBe(431);
    expect((await get(base + '/')).status).toBe(200);
  });

  test('REST: health with hook fields, incidents list and downloads (pb, json), extraRoutes', async () => {
    const store = createBundleStore({ dir: path.join(tmpRoot, 'reststore'), logger: quiet });
    stores.push(store);
    await store.write({
      id: 'inc-1', createdMs: Date.now(), worker: { pid: 4242, startTicks: 9 }, service: { id: 'svc', name: 'app' },
      verdict: { kind: 'killed-by-master', tMs: Date.now(), summary: 'SIGKILL from the master after a 2 s timeout', senderPid: 4200 },
    });
    const { base } = await start({
      store,
      agentVersion: '0.1.0',
      hooks: {
        health: () => ({ records: { delivered: 10, dropped: 2 } }),
        features: () => [{ name: 'gc-usdt', enabled: false, reason: 'no USDT in this python' }],
        extraRoutes: (req, res, url) => {
          if (url.pathname !== '/metrics') return false;
          res.writeHead(200, { 'Content-Type': 'text/plain' });
          res.end('premortem_up 1\n');
          return true;
        },
      },
    });
    const health = JSON.parse((await get(base + '/api/health')).body.toString());
    expect(health).toMatchObject({
      ok: true, agentVersion: '0.1.0', protocolVersion: PROTOCOL_VERSION, records: { delivered: 10, dropped: 2 },
      features: [{ name: 'gc-usdt', enabled: false, reason: 'no USDT in this python' }],
      store: { writes: 1, errors: 0, bundles: 1 }, server: { clients: 0, maxClients: 64 },
    });
    const list = JSON.parse((await get(base + '/api/incidents')).body.toString());
    expect(list.incidents).toEqual([expect.objectContaining({ id: 'inc-1', pid: 4242, verdictKind: 'killed-by-master' })]);
    const pb = await get(base + '/api/incidents/inc-1.pb');
    expect(pb.headers['content-type']).toBe('application/x-protobuf');
    expect(pb.headers['content-disposition']).toBe('attachment; filename="inc-1.pb"');
    expect(codec.decodeBundle(pb.body).verdict!.senderPid).toBe(4200);
    const json = JSON.parse((await get(base + '/api/incidents/inc-1.json')).body.toString());
    expect(json).toMatchObject({ format: 'premortem-bundle', id: 'inc-1', verdict: { kind: 'killed-by-master' } });
    expect((await get(base + '/api/incidents/nope.json')).status).toBe(404);
    expect((await get(base + '/api/incidents/..%2f..%2fetc.pb')).status).toBe(404);
    expect((await get(base + '/metrics')).body.toString()).toBe('premortem_up 1\n');
    expect((await get(base + '/api/nothing')).status).toBe(404);
  });

  test('extraRoutePaths: exact paths and patterns whose * is one path segment', () => {
    const matches = pathMatcher(['/metrics', '/api/workers/*/why']);
    for (const p of ['/metrics', '/api/workers/4242/why', '/api/workers/4242:99/why']) expect(matches(p)).toBe(true);
    for (const p of ['/metrics/x', '/api/workers//why', '/api/workers/1/2/why', '/api/workers/1/whyx', '/xapi/workers/1/why', '/api/health'])
      expect(matches(p)).toBe(false);
    expect(pathMatcher(['/a.b/*'])('/aXb/1')).toBe(false); // the rest is literal
  });
});

describe('stream', () => {
  test('Hello and Snapshot on connect; Snapshot on topology change; Death, BundleReady, Lost to all', async () => {
    const { wsUrl, server } = await start({
      agentVersion: '0.1.0', intervalMs: 250,
      hooks: { features: () => [{ name: 'runqlat', enabled: true, reason: '' }], snapshot: () => ({ services: [{ id: 'svc', name: 'app' }] }) },
    });
    const a = await connect(wsUrl);
    await waitFor(() => a.messages.length >= 2, 2000, 'hello+snapshot');
    expect(bodies(a)).toEqual(['hello', 'snapshot']);
    expect(a.messages[0].hello).toMatchObject({ agentVersion: '0.1.0', protocolVersion: PROTOCOL_VERSION, intervalMs: 250, features: [{ name: 'runqlat', enabled: true }] });
    expect(a.messages[1].snapshot!.services[0].id).toBe('svc');

    server.publishSnapshot({ services: [{ id: 'svc2', name: 'other' }], workers: [{ identity: { pid: 5, startTicks: 6 }, state: 'alive' }] });
    const b = await connect(wsUrl);
    await waitFor(() => a.messages.length >= 3 && b.messages.length >= 2, 2000, 'snapshots');
    expect(a.messages[2].snapshot!.workers[0].state).toBe('alive');
    expect(b.messages[1].snapshot!.services[0].id).toBe('svc2'); // the latest topology, not the hook's

    server.broadcastDeath({ identity: { pid: 5, startTicks: 6 }, verdict: { kind: 'crashed', signalName: 'SIGSEGV' }, bundleId: 'x' });
    server.broadcastBundleReady({ id: 'x', pid: 5, verdictKind: 'crashed' });
    server.broadcastLost({ probe: 'runqlat', dropped: 7, droppedTotal: 7 });
    await waitFor(() => a.messages.length >= 6 && b.messages.length >= 5, 2000, 'pushes');
    for (const v of [a, b]) expect(bodies(v).slice(-3)).toEqual(['death', 'bundleReady', 'lost']);
    expect(a.messages[3].death!.verdict!.kind).toBe('crashed');
    expect(a.messages[4].bundleReady!.incident!.id).toBe('x');
    expect(a.messages[5].lost!.dropped).toBe(7);
  });

  test('one Delta per interval, filtered to each client\'s subscriptions; history through the hook', async () => {
    const { wsUrl, server } = await start({
      hooks: {
        history: (key, fromMs, toMs) => ({ timelines: [{ identity: { pid: Number(key.split(':')[0]) }, buckets: [{ tMs: fromMs }, { tMs: toMs }] }] }),
      },
    });
    const byWorker = await connect(wsUrl);
    const byService = await connect(wsUrl);
    const everything = await connect(wsUrl);
    const nothing = await connect(wsUrl);
    byWorker.send({ subscribe: { workerKeys: ['10:100'] } });
    byService.send({ subscribe: { serviceIds: ['svcB'] } });
    everything.send({ subscribe: { all: true } });
    const delta: DeepPartial<Delta> = {
      tMs: 1000, intervalMs: 1000,
      workers: [
        { pid: 10, startTicks: 100, serviceId: 'svcA', bucket: { runqP99Us: 1 } },
        { pid: 10, startTicks: 999, serviceId: 'svcA', bucket: { runqP99Us: 2 } }, // a reused pid: not the same worker
        { pid: 20, startTicks: 200, serviceId: 'svcB', bucket: { runqP99Us: 3 } },
      ],
      services: [{ serviceId: 'svcA', backlogDepth: 1 }, { serviceId: 'svcB', backlogDepth: 2 }],
      host: { load1: 0.5 },
      markers: [
        { kind: 'slow-wakeup', pid: 10, startTicks: 100, serviceId: 'svcA' },
        { kind: 'backlog-near-full', serviceId: 'svcB' },
        { kind: 'records-lost' },
      ],
    };
    const deltas = (v: Viewer) => v.messages.filter((m) => m.body === 'delta').map((m) => m.delta!);
    // Subscriptions are processed in order with the stream; tick until each has landed.
    await waitFor(() => {
      server.broadcastDelta(delta);
      const last = (v: Viewer) => deltas(v).at(-1);
      return !!last(byWorker)?.workers.length && !!last(byService)?.workers.length && (last(everything)?.workers.length ?? 0) === 3;
    }, 3000, 'subscriptions');
    const ticks = deltas(everything).length;
    expect(deltas(nothing).length).toBe(ticks); // one frame per interval for everyone
    const w = deltas(byWorker).at(-1)!;
    expect(w.workers.map((x) => [x.pid, x.startTicks])).toEqual([[10, 100]]);
    expect(w.services).toEqual([]);
    expect(w.markers.map((m) => m.kind)).toEqual(['slow-wakeup', 'records-lost']);
    expect(w.host!.load1).toBe(0.5);
    const s = deltas(byService).at(-1)!;
    expect(s.workers.map((x) => x.pid)).toEqual([20]);
    expect(s.services.map((x) => x.serviceId)).toEqual(['svcB']);
    expect(s.markers.map((m) => m.kind)).toEqual(['backlog-near-full', 'records-lost']);
    expect(deltas(everything).at(-1)!.workers.length).toBe(3);
    const n = deltas(nothing).at(-1)!;
    expect([n.workers, n.services, n.markers.map((m) => m.kind)]).toEqual([[], [], ['records-lost']]);

    byWorker.send({ unsubscribe: { workerKeys: ['10:100'] } });
    byWorker.send({ historyRequest: { requestId: 42, workerKey: '10:100', fromMs: 5, toMs: 9 } });
    // The reply comes after the unsubscribe was processed (messages are handled in order).
    await waitFor(() => byWorker.messages.some((m) => m.body === 'history'), 2000, 'history');
    const h = byWorker.messages.find((m) => m.body === 'history')!.history!;
    expect(h).toMatchObject({ requestId: 42, fromMs: 5, toMs: 9 });
    expect(h.timelines[0].buckets.map((b) => b.tMs)).toEqual([5, 9]);
    const before = deltas(byWorker).length;
    server.broadcastDelta(delta);
    await waitFor(() => deltas(byWorker).length > before, 2000, 'delta after unsubscribe');
    expect(deltas(byWorker).at(-1)!.workers).toEqual([]);

    byWorker.send({ subscribe: { workerKeys: ['not-a-key'] } });
    byWorker.send({ historyRequest: { requestId: 1, workerKey: 'junk' } });
    await waitFor(() => byWorker.messages.filter((m) => m.body === 'error').length >= 2, 2000, 'errors');
    expect(byWorker.messages.filter((m) => m.body === 'error').map((m) => m.error!.code))
      .toEqual(['PREMORTEM_ERR_SUBSCRIPTION', 'PREMORTEM_ERR_BAD_WORKER_KEY']);
    expect(byWorker.ws.readyState).toBe(WebSocket.OPEN);
  });

  test('oversize message closes with 1009, malformed protobuf with an Error then 1007, text with 1003; the server goes on', async () => {
    const { wsUrl, server } = await start({ maxMessageBytes: 1024 });
    const big = await connect(wsUrl);
    big.ws.send(Buffer.alloc(2048, 1));
    expect((await big.closed).code).toBe(1009);

    const bad = await connect(wsUrl);
    bad.ws.send(Buffer.from([0x0f, 0xff, 0xff]));
    expect((await bad.closed).code).toBe(1007);
    const err = bad.messages.find((m) => m.body === 'error')!.error!;
    expect(err.code).toBe('PREMORTEM_ERR_MALFORMED');

    const text = await connect(wsUrl);
    text.ws.send('{"subscribe":{}}');
    expect((await text.closed).code).toBe(1003);

    // A flood of tiny fragments adding up past the limit is one oversize message.
    const frag = await connect(wsUrl);
    for (let i = 0; i < 200; i++) frag.ws.send(Buffer.alloc(16), { binary: true, fin: false });
    frag.ws.send(Buffer.alloc(16), { binary: true, fin: true });
    expect((await frag.closed).code).toBe(1009);

    // A flood of small messages hits the rate bound.
    const flood = await connect(wsUrl);
    const sub = codec.encodeClientMessage({ subscribe: { workerKeys: ['1:1'] } });
    for (let i = 0; i < 500; i++) flood.ws.send(sub);
    expect((await flood.closed).code).toBe(1008);

    expect(server.counters()).toMatchObject({ oversizeMessages: 2, malformedMessages: 2, rateLimited: 1 });
    const ok = await connect(wsUrl);
    ok.send({ subscribe: { all: true } });
    server.broadcastDelta({ tMs: 1 });
    await waitFor(() => ok.messages.some((m) => m.body === 'delta'), 2000, 'a delta after the abuse');
  });

  test('an incompatible protocol version gets an Error saying what to do, then close 4001', async () => {
    const { wsUrl, server } = await start();
    const newer = await connect(wsUrl);
    newer.send({ protocolVersion: PROTOCOL_VERSION + 1, subscribe: { all: true } });
    expect((await newer.closed).code).toBe(CLOSE_INCOMPATIBLE_PROTOCOL);
    const e1 = newer.messages.find((m) => m.body === 'error')!.error!;
    expect(e1.code).toBe('PREMORTEM_ERR_CLIENT_TOO_NEW');
    expect(e1.message).toMatch(/upgrade the premortem agent/);
    const older = await connect(wsUrl);
    older.ws.send(codec.encode('ClientMessage', { protocolVersion: 0, subscribe: { all: true } }));
    expect((await older.closed).code).toBe(CLOSE_INCOMPATIBLE_PROTOCOL);
    expect(older.messages.find((m) => m.body === 'error')!.error!.code).toBe('PREMORTEM_ERR_CLIENT_TOO_OLD');
    expect(server.counters().versionMismatches).toBe(2);
  });

  test('connection cap: past maxClients the upgrade gets 503, and a freed slot is reusable', async () => {
    const { wsUrl, server } = await start({ maxClients: 3 });
    const viewers = await Promise.all([1, 2, 3].map(() => connect(wsUrl)));
    expect(await upgradeStatus(wsUrl)).toBe(503);
    expect(server.counters()).toMatchObject({ clients: 3, rejectedCap: 1 });
    viewers[0].ws.close();
    await viewers[0].closed;
    await waitFor(() => server.counters().clients === 2, 2000, 'slot freed');
    expect(await upgradeStatus(wsUrl)).toBe(101);
  });

  test('ping detects a dead peer and terminates it; a live one stays', async () => {
    // 500 ms: a live peer's pong has that long to come back, even on a loaded machine
    // (client and server share this process's event loop).
    const PING_MS = 500;
    const { wsUrl, server } = await start({ pingIntervalMs: PING_MS });
    const dead = await connect(wsUrl, { autoPong: false });
    const live = await connect(wsUrl);
    const closed = await dead.closed;
    expect(closed.code).toBe(1006); // terminated: no close frame
    expect(server.counters().deadPeers).toBe(1);
    await new Promise((r) => setTimeout(r, 2.5 * PING_MS)); // two more pings for the live one
    expect(live.ws.readyState).toBe(WebSocket.OPEN);
    expect(server.counters().clients).toBe(1);
  });

  test('100 concurrent viewers are served and each receives its delta', async () => {
    const { wsUrl, server } = await start({ maxClients: 128 });
    const viewers = await Promise.all(Array.from({ length: 100 }, () => connect(wsUrl)));
    viewers.forEach((v, i) => v.send({ subscribe: i % 2 ? { workerKeys: ['1:1'] } : { serviceIds: ['svc'] } }));
    const delta: DeepPartial<Delta> = {
      tMs: 5, workers: [{ pid: 1, startTicks: 1, serviceId: 'other', bucket: { cpuMs: 1 } }, { pid: 2, startTicks: 2, serviceId: 'svc', bucket: { cpuMs: 2 } }],
    };
    const got = (v: Viewer) => v.messages.some((m) => m.body === 'delta' && m.delta!.workers.length === 1);
    await waitFor(() => { server.broadcastDelta(delta); return viewers.every(got); }, 10_000, '100 viewers');
    viewers.forEach((v, i) => {
      const d = v.messages.filter((m) => m.body === 'delta').at(-1)!.delta!;
      expect(d.workers.map((w) => w.pid)).toEqual([i % 2 ? 1 : 2]);
    });
    expect(server.counters().clients).toBe(100);
  });

  test('clients that stop reading are dropped after the backlog bound; RSS stays bounded; a healthy client keeps up', async () => {
    const backlog = 1024 * 1024;
    const { wsUrl, server } = await start({ maxClientBacklogBytes: backlog, closeGraceMs: 200, maxClients: 32 });
    const slow = await Promise.all(Array.from({ length: 10 }, () => connect(wsUrl)));
    const healthy = await connect(wsUrl);
    const latencies: number[] = [];
    let healthyDeltas = 0;
    healthy.ws.on('message', (data) => {
      const m = codec.decodeServerMessage(data as Buffer);
      if (m.body === 'delta') { healthyDeltas++; latencies.push(Date.now() - m.delta!.tMs); }
    });
    for (const v of [...slow, healthy]) v.send({ subscribe: { all: true } });
    await waitFor(() => {
      server.broadcastDelta({ tMs: Date.now() });
      return [...slow, healthy].every((v) => v.messages.some((m) => m.body === 'delta'));
    }, 3000, 'subscriptions');
    for (const v of [...slow, healthy]) { v.collect = false; v.messages.length = 0; }
    const pad = 'x'.repeat(64 * 1024);
    const push = async (frames: number, onSample: () => void) => {
      const before = healthyDeltas;
      for (let i = 0; i < frames; i++) {
        server.broadcastDelta({ tMs: Date.now(), markers: [{ kind: 'pad', message: pad }] });
        if (i % 4 === 0) await new Promise((r) => setImmediate(r));
        if (i % 50 === 0) onSample();
      }
      // >=: a delta from the subscription loop above may still have been in flight.
      await waitFor(() => healthyDeltas - before >= frames, 15_000, 'the healthy client to get every delta');
    };
    // Warm-up with everyone reading: the heap and malloc arenas grow to what
    // this traffic needs anyway, so what follows measures the slow clients' cost.
    await push(500, () => undefined);
    const rss0 = process.memoryUsage().rss;
    let rssMax = rss0;
    latencies.length = 0;

    // Stop reading: the kernel buffers fill, then the agent's send queue for them would grow.
    for (const v of slow) (v.ws as unknown as { _socket: net.Socket })._socket.pause();
    // 188 MiB of deltas. Unbounded, the ten queues would hold all of it (they
    // share the encoded frames, so ~190 MiB in all; measured 80+ MiB growth
    // for half as many frames with the bound lifted). Bounded: a few MiB.
    const frames = 3000;
    await push(frames, () => { rssMax = Math.max(rssMax, process.memoryUsage().rss); });
    rssMax = Math.max(rssMax, process.memoryUsage().rss);
    const grownMiB = (rssMax - rss0) / 2 ** 20;
    const c = server.counters();
    expect(c.droppedSlowClients).toBe(10);
    expect(c.clients).toBe(1);
    expect(grownMiB).toBeLessThan(50);
    latencies.sort((a, b) => a - b);
    expect(latencies[latencies.length - 1]).toBeLessThan(1000);
    // eslint-disable-next-line no-console
    console.log(`slow clients: RSS grew ${grownMiB.toFixed(1)} MiB while pushing ${(frames * pad.length / 2 ** 20).toFixed(0)} MiB to 11 clients; ` +
      `healthy client latency p50 ${latencies[latencies.length >> 1]} ms, max ${latencies[latencies.length - 1]} ms`);
  });

  test('close() terminates clients and the server once', async () => {
    const { wsUrl, base, server } = await start();
    const v = await connect(wsUrl);
    const p1 = server.close();
    const p2 = server.close();
    expect(p1).toBe(p2);
    await p1;
    expect((await v.closed).code).toBe(1006);
    await expect(get(base + '/')).rejects.toThrow();
  });
});
