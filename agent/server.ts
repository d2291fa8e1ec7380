/**
 * The agent's one HTTP server: the viewer's static files, the WebSocket stream
 * at /ws (protobuf ServerMessage/ClientMessage frames, proto/premortem.proto)
 * and a small REST API.
 *
 *   GET /api/health                 liveness. JSON: server counters, store health, + hooks.health();
 *                                   503 when hooks.health() says live: false or cannot answer
 *   GET /api/ready                  readiness. JSON from hooks.ready(); 503 until it says ready
 *   GET /api/incidents              JSON: { incidents: IncidentSummary[] } newest first
 *   GET /api/incidents/:id.pb       the protobuf Bundle (what `export --format pb` writes)
 *   GET /api/incidents/:id.json     bundleToJson (what `export --format json` writes)
 *   anything hooks.extraRoutes handles (e.g. /metrics), then static files.
 *
 * Access (checked for every HTTP request and every WebSocket upgrade):
 *   - Binding to anything but loopback (127.0.0.0/8, ::1, localhost) without a
 *     token is refused with a TypeError when the server is created.
 *   - With a token, a request must carry it as `Authorization: Bearer <token>`,
 *     as `?token=<token>` (for the first page load in a browser), or as the
 *     session cookie `premortem_session` set on that first authenticated load
 *     (HttpOnly, SameSite=Strict, value = HMAC-SHA256(token), never the token
 *     itself). An HTML page loaded with ?token= is redirected to the same URL
 *     without it, so the token does not stay in the address bar. Comparison is
 *     constant time (timingSafeEqual over SHA-256 digests). Otherwise 401.
 *   - A request with an Origin header is served only when that origin is the
 *     page's own (Origin host = Host header) or in allowedOrigins; otherwise
 *     403. Without a token the Host header must also name a loopback host, which
 *     defeats DNS rebinding (a foreign name resolving to 127.0.0.1).
 *
 * Bounds (all options, defaults in SERVER_DEFAULTS): maxClients viewers (503
 * past it), maxMessageBytes per client message (close 1009), per-client send
 * backlog maxClientBacklogBytes (client dropped with close 1013 and counted; the
 * agent stops queueing for it at once), maxClientMessagesPerSec (close 1008),
 * maxSubscriptions per client, maxHistoryInFlight per client, 16 KiB of request
 * headers (431), pings every pingIntervalMs (a peer that misses one is
 * terminated). Malformed protobuf: an Error frame, then close 1007; text frames:
 * close 1003; an incompatible protocol version: an Error frame saying what to
 * do, then close 4001.
 *
 * Streaming: the agent calls broadcastDelta(delta) once per interval; each
 * client gets ONE Delta frame holding the workers and services it subscribed
 * to (plus host context and host-level markers). Clients with identical
 * subscriptions share one encoded frame.
 */
import { createHash, createHmac, timingSafeEqual } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as net from 'net';
import * as path from 'path';
import type { Duplex } from 'stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import {
  checkClientVersion, parseWorkerKey, MIN_CLIENT_VERSION, PROTOCOL_VERSION,
  type ClientMessage, type Codec, type DeepPartial, type Death, type Delta, type Feature, type History,
  type IncidentSummary, type Lost, type Marker, type ServerMessage, type ServiceBucket, type Snapshot,
  type WorkerBucket,
} from './proto';
import { loadCodec } from './proto-node';
import { bundleToJson, StoreError, type BundleStore } from './store';
import { log as defaultLogger, type Logger } from './log';

export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 7070,
  maxClients: 64,
  maxMessageBytes: 64 * 1024,
  // Per viewer: ten stalled viewers must not cost the agent more than ~50 MiB before they are dropped.
  maxClientBacklogBytes: 4 * 1024 * 1024,
  pingIntervalMs: 15_000,
  maxClientMessagesPerSec: 50,
  maxSubscriptions: 10_000,
  maxHistoryInFlight: 2,
  /** HTTP connections beyond the viewers (REST, static files, scrapes). */
  maxHttpConnections: 64,
  maxHeaderBytes: 16 * 1024,
  /** A dropped client gets this long to take its close frame before the socket is destroyed. */
  closeGraceMs: 1000,
} as const;

/** Close code sent after an Error frame when the client's protocol version cannot be served. */
export const CLOSE_INCOMPATIBLE_PROTOCOL = 4001;
const SESSION_COOKIE = 'premortem_session';

export interface ServerHooks {
  /**
   * Merged into GET /api/health: features, records delivered/dropped, tracked workers...
   * `live: false` (with `reason`) answers 503; so does a hook that throws.
   */
  health?: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** GET /api/ready: `{ ready, reason? }`; 200 when ready, 503 otherwise. Absent: ready once listening. */
  ready?: () => { ready: boolean; reason?: string } | Promise<{ ready: boolean; reason?: string }>;
  /** Sent in Hello: which probes/features are on, which are off and why. */
  features?: () => Feature[];
  /** The topology for a client that connects before any publishSnapshot(). */
  snapshot?: () => DeepPartial<Snapshot>;
  /** Answer to a HistoryRequest. */
  history?: (workerKey: string, fromMs: number, toMs: number, also?: { serviceId: string; host: boolean }) => DeepPartial<History> | Promise<DeepPartial<History>>;
  /**
   * Extra authenticated routes (e.g. GET /metrics). Return true when the
   * request was answered. Runs after the token/Origin checks, before static files.
   */
  extraRoutes?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean | Promise<boolean>;
}

export interface ServerOptions {
  host?: string;
  port?: number;
  token?: string;
  staticDir?: string;
  store?: BundleStore;
  maxClients?: number;
  maxMessageBytes?: number;
  maxClientBacklogBytes?: number;
  pingIntervalMs?: number;
  maxClientMessagesPerSec?: number;
  maxSubscriptions?: number;
  maxHistoryInFlight?: number;
  maxHttpConnections?: number;
  closeGraceMs?: number;
  /** Origins besides the server's own that may open the stream or call the API. */
  allowedOrigins?: string[];
  agentVersion?: string;
  intervalMs?: number;
  windowMs?: number;
  hostName?: string;
  hooks?: ServerHooks;
  codec?: Codec;
  logger?: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
}

export interface ServerCounters {
  clients: number;
  connectionsTotal: number;
  droppedSlowClients: number;
  deadPeers: number;
  rejectedAuth: number;
  rejectedOrigin: number;
  rejectedCap: number;
  malformedMessages: number;
  oversizeMessages: number;
  rateLimited: number;
  versionMismatches: number;
  framesSent: number;
  bytesSent: number;
  encodeErrors: number;
  httpRequests: number;
  badHttpRequests: number;
}

export interface PremortemServer {
  /** Starts listening; resolves with the bound address. */
  listen(): Promise<{ host: string; port: number; url: string }>;
  /** The viewer URL (after listen()). */
  readonly url: string;
  /** Once per interval: one filtered Delta frame per client. */
  broadcastDelta(delta: DeepPartial<Delta>): void;
  /** Topology changed: remembered for new clients and pushed to all. */
  publishSnapshot(snapshot: DeepPartial<Snapshot>): void;
  broadcastDeath(death: DeepPartial<Death>): void;
  broadcastBundleReady(incident: DeepPartial<IncidentSummary>): void;
  broadcastLost(lost: DeepPartial<Lost>): void;
  /** An agent-side error every viewer should see now (e.g. post-mortems cannot be written). */
  broadcastError(code: string, message: string): void;
  counters(): ServerCounters;
  /** Terminates every client and the server, once; later calls return the same promise. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------- helpers

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return net.isIPv4(h.slice(7)) && h.slice(7).startsWith('127.');
  return false;
}

/** "host:port" / "[v6]:port" -> host */
function hostnameOf(hostHeader: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader);
  if (m) return m[1];
  const i = hostHeader.lastIndexOf(':');
  return i > 0 && hostHeader.indexOf(':') === i ? hostHeader.slice(0, i) : hostHeader;
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest();

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json; charset=utf-8', '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg', '.ico': 'image/x-icon', '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8', '.proto': 'text/plain; charset=utf-8', '.wasm': 'application/wasm',
  '.pb': 'application/x-protobuf', '.pmb': 'application/octet-stream',
};

const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
};

function statusText(code: number): string {
  return http.STATUS_CODES[code] ?? 'Error';
}

/** Answers an upgrade request that will not become a WebSocket, then closes. */
function rejectUpgrade(socket: Duplex, code: number, body: string, extra: Record<string, string> = {}): void {
  const headers = {
    Connection: 'close', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...extra,
  };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  if (socket.writable) socket.end(`HTTP/1.1 ${code} ${statusText(code)}\r\n${head}\r\n\r\n${body}`);
  else socket.destroy();
}

interface Subscriptions { all: boolean; workers: Set<string>; services: Set<string>; signature: string }

interface Client {
  id: number;
  ws: WebSocket;
  subs: Subscriptions;
  alive: boolean;
  closing: boolean;
  tokens: number;
  lastRefillMs: number;
  historyInFlight: number;
  remote: string;
}

function signatureOf(s: Subscriptions): string {
  if (s.all) return '*';
  if (!s.workers.size && !s.services.size) return '-';
  return `w:${[...s.workers].sort().join(',')}|s:${[...s.services].sort().join(',')}`;
}

// ---------------------------------------------------------------- server

export function createServer(options: ServerOptions = {}): PremortemServer {
  const host = options.host ?? SERVER_DEFAULTS.host;
  const port = options.port ?? SERVER_DEFAULTS.port;
  const token = options.token || undefined;
  const maxClients = options.maxClients ?? SERVER_DEFAULTS.maxClients;
  const maxMessageBytes = options.maxMessageBytes ?? SERVER_DEFAULTS.maxMessageBytes;
  const maxClientBacklogBytes = options.maxClientBacklogBytes ?? SERVER_DEFAULTS.maxClientBacklogBytes;
  const pingIntervalMs = options.pingIntervalMs ?? SERVER_DEFAULTS.pingIntervalMs;
  const maxMsgPerSec = options.maxClientMessagesPerSec ?? SERVER_DEFAULTS.maxClientMessagesPerSec;
  const maxSubscriptions = options.maxSubscriptions ?? SERVER_DEFAULTS.maxSubscriptions;
  const maxHistoryInFlight = options.maxHistoryInFlight ?? SERVER_DEFAULTS.maxHistoryInFlight;
  const maxHttpConnections = options.maxHttpConnections ?? SERVER_DEFAULTS.maxHttpConnections;
  const closeGraceMs = options.closeGraceMs ?? SERVER_DEFAULTS.closeGraceMs;
  const hooks = options.hooks ?? {};
  const logger = options.logger ?? defaultLogger;
  const staticDir = options.staticDir ? path.resolve(options.staticDir) : undefined;
  const allowedOrigins = new Set((options.allowedOrigins ?? []).map((o) => o.replace(/\/$/, '').toLowerCase()));

  if (!isLoopbackHost(host) && !token) {
    throw new TypeError(`createServer: binding to ${host} (not loopback) needs a token; pass --token-file or bind 127.0.0.1`);
  }
  if (token !== undefined && token.length < 16) {
    throw new TypeError('createServer: the token must be at least 16 characters');
  }
  for (const [name, v] of Object.entries({
    maxClients, maxMessageBytes, maxClientBacklogBytes, pingIntervalMs, maxClientMessagesPerSec: maxMsgPerSec,
    maxSubscriptions, maxHistoryInFlight,
  })) {
    if (!Number.isFinite(v) || v <= 0) throw new TypeError(`createServer: ${name} must be a positive number, got ${v}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`createServer: port ${port} is not a TCP port`);

  let codecCache = options.codec;
  const codec = () => (codecCache ??= loadCodec());
  codec(); // parse the schema now: a broken proto/ should fail at start, not at the first client

  const tokenDigest = token ? sha256(token) : undefined;
  const sessionValue = token ? createHmac('sha256', token).update('premortem-session-v1').digest('hex') : undefined;
  const sessionDigest = sessionValue ? sha256(sessionValue) : undefined;

  const counters: ServerCounters = {
    clients: 0, connectionsTotal: 0, droppedSlowClients: 0, deadPeers: 0, rejectedAuth: 0, rejectedOrigin: 0,
    rejectedCap: 0, malformedMessages: 0, oversizeMessages: 0, rateLimited: 0, versionMismatches: 0, framesSent: 0,
    bytesSent: 0, encodeErrors: 0, httpRequests: 0, badHttpRequests: 0,
  };
  const clients = new Set<Client>();
  let nextClientId = 1;
  let snapshotFrame: Uint8Array | undefined;
  let boundUrl = '';
  let closing: Promise<void> | undefined;

  // ---- access checks

  type Access = { ok: true; setCookie: boolean; viaQuery: boolean } | { ok: false; status: 401 | 403; reason: string };

  function checkAccess(req: http.IncomingMessage, url: URL): Access {
    const hostHeader = req.headers.host ?? '';
    const origin = req.headers.origin;
    if (!token && !isLoopbackHost(hostnameOf(hostHeader))) {
      return { ok: false, status: 403, reason: `Host '${hostHeader}' is not this agent (DNS rebinding?)` };
    }
    if (origin !== undefined) {
      let originHost = '';
      try { originHost = new URL(origin).host.toLowerCase(); } catch { /* 'null' or junk */ }
      const own = originHost !== '' && originHost === hostHeader.toLowerCase();
      if (!own && !allowedOrigins.has(origin.replace(/\/$/, '').toLowerCase())) {
        return { ok: false, status: 403, reason: `Origin ${origin} may not use this agent` };
      }
    }
    if (!token) return { ok: true, setCookie: false, viaQuery: false };
    const matches = (candidate: string | undefined, digest: Buffer) =>
      candidate !== undefined && timingSafeEqual(sha256(candidate), digest);
    const auth = req.headers.authorization;
    const bearer = auth && /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
    if (bearer && matches(bearer, tokenDigest!)) return { ok: true, setCookie: false, viaQuery: false };
    const query = url.searchParams.get('token') ?? undefined;
    if (query && matches(query, tokenDigest!)) return { ok: true, setCookie: true, viaQuery: true };
    const cookie = (req.headers.cookie ?? '').split(';').map((c) => c.trim().split('='))
      .find(([k]) => k === SESSION_COOKIE)?.[1];
    if (cookie && matches(cookie, sessionDigest!)) return { ok: true, setCookie: false, viaQuery: false };
    return { ok: false, status: 401, reason: 'a token is required: Authorization: Bearer <token> or ?token=<token>' };
  }

  function countRejection(status: number): void {
    if (status === 401) counters.rejectedAuth++;
    else if (status === 403) counters.rejectedOrigin++;
  }

  // ---- HTTP

  function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  }
  function sendHttpError(res: http.ServerResponse, status: number, code: string, message: string): void {
    sendJson(res, status, { error: { code, message } });
  }

  async function serveApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const p = url.pathname;
    if (p === '/api/ready') {
      let r: { ready: boolean; reason?: string };
      try { r = (await hooks.ready?.()) ?? { ready: true }; } catch (err) { r = { ready: false, reason: `the agent did not answer: ${(err as Error).message}` }; }
      sendJson(res, r.ready ? 200 : 503, r);
      return;
    }
    if (p === '/api/health') {
      let extra: Record<string, unknown> = {};
      try {
        extra = (await hooks.health?.()) ?? {};
      } catch (err) {
        extra = { live: false, reason: `the agent did not answer: ${(err as Error).message}` };
      }
      const live = extra.live !== false;
      sendJson(res, live ? 200 : 503, {
        ok: live,
        agentVersion: options.agentVersion ?? '',
        protocolVersion: PROTOCOL_VERSION,
        minClientVersion: MIN_CLIENT_VERSION,
        features: hooks.features?.() ?? [],
        server: { ...counters, maxClients, maxMessageBytes, maxClientBacklogBytes },
        store: options.store?.health() ?? null,
        ...extra,
      });
      return;
    }
    if (!options.store) {
      sendHttpError(res, 503, 'PREMORTEM_ERR_NO_STORE', 'this agent keeps no post-mortem store');
      return;
    }
    if (p === '/api/incidents') {
      try {
        sendJson(res, 200, { incidents: await options.store.list() });
      } catch (err) {
        sendHttpError(res, 500, (err as StoreError).code ?? 'PREMORTEM_ERR_STORE_IO', (err as Error).message);
      }
      return;
    }
    const m = /^\/api\/incidents\/([^/]+?)(\.pb|\.json)?$/.exec(p);
    if (m) {
      const id = m[1];
      try {
        if (m[2] === '.pb') {
          const bytes = await options.store.readRaw(id);
          res.writeHead(200, {
            ...SECURITY_HEADERS, 'Content-Type': 'application/x-protobuf', 'Content-Length': bytes.length,
            'Content-Disposition': `attachment; filename="${id}.pb"`, 'Cache-Control': 'no-store',
          });
          res.end(req.method === 'HEAD' ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        } else {
          sendJson(res, 200, bundleToJson(await options.store.read(id), codec()));
        }
      } catch (err) {
        const code = (err as StoreError).code ?? 'PREMORTEM_ERR_STORE_IO';
        const status = code === 'PREMORTEM_ERR_BUNDLE_NOT_FOUND' || code === 'PREMORTEM_ERR_BUNDLE_BAD_ID' ? 404
          : code === 'PREMORTEM_ERR_BUNDLE_CORRUPT' ? 410 : 500;
        sendHttpError(res, status, code, (err as Error).message);
      }
      return;
    }
    sendHttpError(res, 404, 'PREMORTEM_ERR_NOT_FOUND', `no API route ${p}`);
  }

  async function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    if (!staticDir) {
      sendHttpError(res, 404, 'PREMORTEM_ERR_NO_VIEWER', 'the viewer is not built (npm run build)');
      return;
    }
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      sendHttpError(res, 400, 'PREMORTEM_ERR_BAD_PATH', 'bad URL encoding');
      return;
    }
    if (rel.includes('\0')) {
      sendHttpError(res, 400, 'PREMORTEM_ERR_BAD_PATH', 'bad path');
      return;
    }
    if (rel.endsWith('/')) rel += 'index.html';
    // Resolve below staticDir, then check the real path too (a symlink must not lead out).
    const candidate = path.resolve(staticDir, '.' + path.posix.normalize('/' + rel));
    const notFound = () => sendHttpError(res, 404, 'PREMORTEM_ERR_NOT_FOUND', `no file ${url.pathname}`);
    if (candidate !== staticDir && !candidate.startsWith(staticDir + path.sep)) return notFound();
    let real: string;
    let st: fs.Stats;
    try {
      real = await fs.promises.realpath(candidate);
      const rootReal = await fs.promises.realpath(staticDir);
      if (real !== rootReal && !real.startsWith(rootReal + path.sep)) return notFound();
      st = await fs.promises.stat(real);
      if (st.isDirectory()) {
        res.writeHead(301, { Location: url.pathname + '/' });
        res.end();
        return;
      }
      if (!st.isFile()) return notFound();
    } catch {
      return notFound();
    }
    const type = CONTENT_TYPES[path.extname(real).toLowerCase()] ?? 'application/octet-stream';
    res.writeHead(200, {
      ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': st.size,
      'Cache-Control': type.startsWith('text/html') ? 'no-cache' : 'public, max-age=300',
    });
    if (req.method === 'HEAD') { res.end(); return; }
    const stream = fs.createReadStream(real);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    counters.httpRequests++;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://premortem.invalid');
    } catch {
      counters.badHttpRequests++;
      sendHttpError(res, 400, 'PREMORTEM_ERR_BAD_PATH', 'bad request target');
      return;
    }
    const access = checkAccess(req, url);
    if (!access.ok) {
      countRejection(access.status);
      res.setHeader('WWW-Authenticate', 'Bearer realm="premortem"');
      sendHttpError(res, access.status, access.status === 401 ? 'PREMORTEM_ERR_UNAUTHORIZED' : 'PREMORTEM_ERR_FORBIDDEN', access.reason);
      return;
    }
    if (access.setCookie && sessionValue) {
      res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${sessionValue}; HttpOnly; SameSite=Strict; Path=/`);
      // A page opened with ?token=: drop the token from the address bar; the cookie carries on.
      if (access.viaQuery && (req.method === 'GET' || req.method === 'HEAD') && !url.pathname.startsWith('/api/') &&
          (req.headers.accept ?? '').includes('text/html')) {
        url.searchParams.delete('token');
        res.writeHead(303, { Location: url.pathname + url.search, 'Cache-Control': 'no-store' });
        res.end();
        return;
      }
    }
    // The probes never wait on extra routes: in the server process each of those asks the agent first.
    const probe = url.pathname === '/api/health' || url.pathname === '/api/ready';
    if (!probe && hooks.extraRoutes && (await hooks.extraRoutes(req, res, url))) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendHttpError(res, 405, 'PREMORTEM_ERR_METHOD', `${req.method} is not served here`);
      return;
    }
    if (url.pathname.startsWith('/api/')) await serveApi(req, res, url);
    else await serveStatic(req, res, url);
  }

  const httpServer = http.createServer({ maxHeaderSize: SERVER_DEFAULTS.maxHeaderBytes, requestTimeout: 30_000, headersTimeout: 10_000 });
  httpServer.keepAliveTimeout = 5_000;
  httpServer.maxConnections = maxClients + maxHttpConnections;
  httpServer.on('request', (req, res) => {
    onRequest(req, res).catch((err) => {
      logger.error(`HTTP ${req.method} ${req.url} failed: ${(err as Error).message}`);
      if (!res.headersSent) sendHttpError(res, 500, 'PREMORTEM_ERR_INTERNAL', 'internal error');
      else res.destroy();
    });
  });
  httpServer.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    counters.badHttpRequests++;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    rejectUpgrade(socket, status, `${statusText(status)}\n`);
  });

  // ---- WebSocket

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxMessageBytes,
    perMessageDeflate: false, // no decompression bombs, no CPU per frame
    clientTracking: false,
  });

  httpServer.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    counters.httpRequests++;
    socket.on('error', () => socket.destroy());
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://premortem.invalid');
    } catch {
      return rejectUpgrade(socket, 400, 'bad request target\n');
    }
    if (url.pathname !== '/ws') return rejectUpgrade(socket, 404, 'the stream is at /ws\n');
    const access = checkAccess(req, url);
    if (!access.ok) {
      countRejection(access.status);
      return rejectUpgrade(socket, access.status, access.reason + '\n',
        access.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="premortem"' } : {});
    }
    if (closing) return rejectUpgrade(socket, 503, 'the agent is shutting down\n');
    if (clients.size >= maxClients) {
      counters.rejectedCap++;
      return rejectUpgrade(socket, 503, `premortem serves at most ${maxClients} viewers at once; try again later\n`, { 'Retry-After': '5' });
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req));
  });

  function encodeServer(msg: DeepPartial<ServerMessage>): Uint8Array | undefined {
    try {
      return codec().encodeServerMessage(msg);
    } catch (err) {
      counters.encodeErrors++;
      logger.error(`cannot encode a ${Object.keys(msg).join('/')} frame: ${(err as Error).message}`);
      return undefined;
    }
  }

  function dropClient(client: Client, code: number, reason: string): void {
    if (client.closing) return;
    client.closing = true;
    clients.delete(client);
    counters.clients = clients.size;
    try { client.ws.close(code, reason); } catch { /* already gone */ }
    // Whatever it still holds is released now or after the grace period at most.
    setTimeout(() => client.ws.terminate(), closeGraceMs).unref();
  }

  function send(client: Client, frame: Uint8Array): boolean {
    if (client.closing || client.ws.readyState !== WebSocket.OPEN) return false;
    if (client.ws.bufferedAmount + frame.length > maxClientBacklogBytes) {
      counters.droppedSlowClients++;
      logger.warn(`viewer ${client.remote} dropped: ${client.ws.bufferedAmount} bytes waiting, bound ${maxClientBacklogBytes}`);
      dropClient(client, 1013, 'send backlog over bound: client too slow');
      return false;
    }
    client.ws.send(frame, { binary: true });
    counters.framesSent++;
    counters.bytesSent += frame.length;
    return true;
  }

  function sendMessage(client: Client, msg: DeepPartial<ServerMessage>): void {
    const frame = encodeServer(msg);
    if (frame) send(client, frame);
  }

  function sendClientError(client: Client, code: string, message: string): void {
    sendMessage(client, { error: { code, message } });
  }

  function broadcastFrame(frame: Uint8Array | undefined): void {
    if (!frame) return;
    for (const client of [...clients]) send(client, frame);
  }

  function onConnection(ws: WebSocket, req: http.IncomingMessage): void {
    const client: Client = {
      id: nextClientId++, ws, subs: { all: false, workers: new Set(), services: new Set(), signature: '-' },
      alive: true, closing: false, tokens: maxMsgPerSec * 2, lastRefillMs: Date.now(), historyInFlight: 0,
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
    };
    clients.add(client);
    counters.connectionsTotal++;
    counters.clients = clients.size;

    ws.on('pong', () => { client.alive = true; });
    ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') counters.oversizeMessages++;
      else counters.malformedMessages++; // invalid frames, bad UTF-8 in close reasons...
      logger.debug(`viewer ${client.remote}: ${err.message}`);
    });
    ws.on('close', () => {
      client.closing = true;
      clients.delete(client);
      counters.clients = clients.size;
    });
    ws.on('message', (data: RawData, isBinary: boolean) => onMessage(client, data, isBinary));

    sendMessage(client, {
      hello: {
        agentVersion: options.agentVersion ?? '', protocolVersion: PROTOCOL_VERSION, minClientVersion: MIN_CLIENT_VERSION,
        features: hooks.features?.() ?? [], intervalMs: options.intervalMs ?? 1000, host: options.hostName ?? '',
        serverTimeMs: Date.now(), windowMs: options.windowMs ?? 0,
      },
    });
    const snap = snapshotFrame ?? encodeServer({ snapshot: hooks.snapshot?.() ?? { tMs: Date.now() } });
    if (snap) send(client, snap);
  }

  function takeToken(client: Client): boolean {
    const now = Date.now();
    client.tokens = Math.min(maxMsgPerSec * 2, client.tokens + ((now - client.lastRefillMs) / 1000) * maxMsgPerSec);
    client.lastRefillMs = now;
    if (client.tokens < 1) return false;
    client.tokens -= 1;
    return true;
  }

  function onMessage(client: Client, data: RawData, isBinary: boolean): void {
    if (client.closing) return;
    if (!takeToken(client)) {
      counters.rateLimited++;
      dropClient(client, 1008, `more than ${maxMsgPerSec} messages per second`);
      return;
    }
    if (!isBinary) {
      counters.malformedMessages++;
      sendClientError(client, 'PREMORTEM_ERR_TEXT_FRAME', 'the stream speaks binary protobuf ClientMessage frames only');
      dropClient(client, 1003, 'binary frames only');
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const decoded = codec().tryDecodeClientMessage(bytes);
    if (!decoded.ok) {
      counters.malformedMessages++;
      sendClientError(client, 'PREMORTEM_ERR_MALFORMED', decoded.error.message);
      dropClient(client, 1007, 'malformed ClientMessage');
      return;
    }
    const msg = decoded.value;
    const problem = checkClientVersion(msg.protocolVersion);
    if (problem) {
      counters.versionMismatches++;
      sendClientError(client, problem.code, problem.message);
      dropClient(client, CLOSE_INCOMPATIBLE_PROTOCOL, problem.code);
      return;
    }
    switch (msg.body) {
      case 'subscribe': return subscribe(client, msg);
      case 'unsubscribe': return unsubscribe(client, msg);
      case 'historyRequest': return void answerHistory(client, msg);
      default:
        counters.malformedMessages++;
        sendClientError(client, 'PREMORTEM_ERR_EMPTY_MESSAGE', 'a ClientMessage needs subscribe, unsubscribe or historyRequest');
    }
  }

  function subscribe(client: Client, msg: ClientMessage): void {
    const s = msg.subscribe!;
    const subs = client.subs;
    if (s.all) subs.all = true;
    let refused = 0;
    for (const key of s.workerKeys) {
      if (!parseWorkerKey(key)) { refused++; continue; }
      if (subs.workers.size + subs.services.size >= maxSubscriptions) { refused++; continue; }
      subs.workers.add(key);
    }
    for (const id of s.serviceIds) {
      if (!id || id.length > 256) { refused++; continue; }
      if (subs.workers.size + subs.services.size >= maxSubscriptions) { refused++; continue; }
      subs.services.add(id);
    }
    subs.signature = signatureOf(subs);
    if (refused) {
      sendClientError(client, 'PREMORTEM_ERR_SUBSCRIPTION',
        `${refused} subscriptions refused (bad worker key "pid:start_ticks", bad service id, or over ${maxSubscriptions})`);
    }
  }

  function unsubscribe(client: Client, msg: ClientMessage): void {
    const u = msg.unsubscribe!;
    const subs = client.subs;
    if (u.all) {
      subs.all = false;
      subs.workers.clear();
      subs.services.clear();
    }
    for (const key of u.workerKeys) subs.workers.delete(key);
    for (const id of u.serviceIds) subs.services.delete(id);
    subs.signature = signatureOf(subs);
  }

  async function answerHistory(client: Client, msg: ClientMessage): Promise<void> {
    const h = msg.historyRequest!;
    if (!hooks.history) return sendClientError(client, 'PREMORTEM_ERR_NO_HISTORY', 'this agent keeps no history');
    // A request may name only a service and/or the host (empty worker key).
    const workerless = h.workerKey === '' && (h.serviceId !== '' || h.host);
    if (!workerless && !parseWorkerKey(h.workerKey)) return sendClientError(client, 'PREMORTEM_ERR_BAD_WORKER_KEY', `'${h.workerKey}' is not "pid:start_ticks"`);
    if (client.historyInFlight >= maxHistoryInFlight) {
      return sendClientError(client, 'PREMORTEM_ERR_BUSY', `at most ${maxHistoryInFlight} history requests at once`);
    }
    client.historyInFlight++;
    try {
      const history = await hooks.history(h.workerKey, h.fromMs, h.toMs, { serviceId: h.serviceId, host: h.host });
      sendMessage(client, { history: { fromMs: h.fromMs, toMs: h.toMs, ...history, requestId: h.requestId } });
    } catch (err) {
      sendClientError(client, (err as { code?: string }).code ?? 'PREMORTEM_ERR_HISTORY', (err as Error).message);
    } finally {
      client.historyInFlight--;
    }
  }

  // ---- per-interval deltas

  function filterDelta(delta: DeepPartial<Delta>, subs: Subscriptions): DeepPartial<Delta> {
    const wanted = (pid?: number, startTicks?: number, serviceId?: string) =>
      (pid !== undefined && subs.workers.has(`${pid}:${startTicks ?? 0}`)) || (!!serviceId && subs.services.has(serviceId));
    return {
      tMs: delta.tMs,
      intervalMs: delta.intervalMs,
      host: delta.host,
      workers: (delta.workers ?? []).filter((w: DeepPartial<WorkerBucket>) => wanted(w.pid, w.startTicks, w.serviceId)),
      services: (delta.services ?? []).filter((s: DeepPartial<ServiceBucket>) => !!s.serviceId && subs.services.has(s.serviceId)),
      markers: (delta.markers ?? []).filter((m: DeepPartial<Marker>) =>
        (!m.pid && !m.serviceId) || wanted(m.pid || undefined, m.startTicks, m.serviceId)),
    };
  }

  function broadcastDelta(delta: DeepPartial<Delta>): void {
    const frames = new Map<string, Uint8Array | undefined>();
    for (const client of [...clients]) {
      const sig = client.subs.signature;
      let frame = frames.get(sig);
      if (!frames.has(sig)) {
        frame = encodeServer({ delta: sig === '*' ? delta : filterDelta(delta, client.subs) });
        frames.set(sig, frame);
      }
      if (frame) send(client, frame);
    }
  }

  // ---- liveness

  const pingTimer = setInterval(() => {
    for (const client of [...clients]) {
      if (!client.alive) {
        counters.deadPeers++;
        logger.info(`viewer ${client.remote} missed a ping: terminated`);
        client.closing = true;
        clients.delete(client);
        counters.clients = clients.size;
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      try { client.ws.ping(); } catch { /* closing */ }
    }
  }, pingIntervalMs);
  pingTimer.unref();

  return {
    listen() {
      return new Promise((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        httpServer.once('error', onError);
        httpServer.listen(port, host, () => {
          httpServer.off('error', onError);
          httpServer.on('error', (err) => logger.error(`HTTP server: ${err.message}`));
          const addr = httpServer.address() as AddressInfo;
          const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
          boundUrl = `http://${shown}:${addr.port}/`;
          resolve({ host: addr.address, port: addr.port, url: boundUrl });
        });
      });
    },
    get url() { return boundUrl; },
    broadcastDelta,
    publishSnapshot(snapshot) {
      const frame = encodeServer({ snapshot });
      if (!frame) return;
      snapshotFrame = frame;
      broadcastFrame(frame);
    },
    broadcastDeath: (death) => broadcastFrame(encodeServer({ death })),
    broadcastBundleReady: (incident) => broadcastFrame(encodeServer({ bundleReady: { incident } })),
    broadcastLost: (lost) => broadcastFrame(encodeServer({ lost })),
    broadcastError: (code, message) => broadcastFrame(encodeServer({ error: { code, message } })),
    counters: () => ({ ...counters, clients: clients.size }),
    close() {
      if (closing) return closing;
      clearInterval(pingTimer);
      const all = [...clients];
      clients.clear();
      counters.clients = 0;
      closing = Promise.allSettled([
        ...all.map(async (c) => { c.closing = true; c.ws.terminate(); }),
        new Promise<void>((resolve) => wss.close(() => resolve())),
        new Promise<void>((resolve) => {
          if (!httpServer.listening) return resolve();
          httpServer.close(() => resolve());
          httpServer.closeAllConnections();
        }),
      ]).then(() => undefined);
      return closing;
    },
  };
}

