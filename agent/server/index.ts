/**
 * The agent's one HTTP server: the viewer's static files and a small REST API
 * (http.ts), the WebSocket stream at /ws (stream.ts), both behind the same
 * access checks (access.ts). Options, bounds and hooks: options.ts. The
 * privilege-separated pair that runs it in a process of its own: process.ts
 * (the agent's side) and child.ts (the server's).
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as path from 'path';
import type { Duplex } from 'stream';
import { log as defaultLogger } from '../log';
import { loadCodec } from '../../proto/node';
import { createAccessControl, isLoopbackHost } from './access';
import { createRequestHandler, rejectUpgrade, statusText } from './http';
import { newCounters, SERVER_DEFAULTS, type PremortemServer, type ServerOptions } from './options';
import { createStream, type StreamLimits } from './stream';

export { isLoopbackHost } from './access';
export { CLOSE_INCOMPATIBLE_PROTOCOL, SERVER_DEFAULTS } from './options';
export type { PremortemServer, ServerCounters, ServerHooks, ServerOptions } from './options';

/** The bounds, defaults merged; a bad value or an unsafe bind throws a TypeError saying why. */
function resolveLimits(options: ServerOptions, host: string, port: number, token: string | undefined): StreamLimits & { maxHttpConnections: number } {
  const limits = {
    maxClients: options.maxClients ?? SERVER_DEFAULTS.maxClients,
    maxMessageBytes: options.maxMessageBytes ?? SERVER_DEFAULTS.maxMessageBytes,
    maxClientBacklogBytes: options.maxClientBacklogBytes ?? SERVER_DEFAULTS.maxClientBacklogBytes,
    pingIntervalMs: options.pingIntervalMs ?? SERVER_DEFAULTS.pingIntervalMs,
    maxClientMessagesPerSec: options.maxClientMessagesPerSec ?? SERVER_DEFAULTS.maxClientMessagesPerSec,
    maxSubscriptions: options.maxSubscriptions ?? SERVER_DEFAULTS.maxSubscriptions,
    maxHistoryInFlight: options.maxHistoryInFlight ?? SERVER_DEFAULTS.maxHistoryInFlight,
    closeGraceMs: options.closeGraceMs ?? SERVER_DEFAULTS.closeGraceMs,
    maxHttpConnections: options.maxHttpConnections ?? SERVER_DEFAULTS.maxHttpConnections,
  };
  if (!isLoopbackHost(host) && !token) {
    throw new TypeError(`createServer: binding to ${host} (not loopback) needs a token; pass --token-file or bind 127.0.0.1`);
  }
  if (token !== undefined && token.length < 16) throw new TypeError('createServer: the token must be at least 16 characters');
  const { maxClients, maxMessageBytes, maxClientBacklogBytes, pingIntervalMs, maxClientMessagesPerSec, maxSubscriptions, maxHistoryInFlight } = limits;
  for (const [name, v] of Object.entries({ maxClients, maxMessageBytes, maxClientBacklogBytes, pingIntervalMs, maxClientMessagesPerSec, maxSubscriptions, maxHistoryInFlight })) {
    if (!Number.isFinite(v) || v <= 0) throw new TypeError(`createServer: ${name} must be a positive number, got ${v}`);
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`createServer: port ${port} is not a TCP port`);
  return limits;
}

export function createServer(options: ServerOptions = {}): PremortemServer {
  const host = options.host ?? SERVER_DEFAULTS.host;
  const port = options.port ?? SERVER_DEFAULTS.port;
  const token = options.token || undefined;
  const limits = resolveLimits(options, host, port, token);
  const hooks = options.hooks ?? {};
  const logger = options.logger ?? defaultLogger;
  let codecCache = options.codec;
  const codec = () => (codecCache ??= loadCodec());
  codec(); // parse the schema now: a broken proto/ should fail at start, not at the first client

  const counters = newCounters();
  const access = createAccessControl(token, options.allowedOrigins ?? []);
  const stream = createStream({
    limits, hooks, counters, codec, logger,
    hello: { agentVersion: options.agentVersion ?? '', intervalMs: options.intervalMs ?? 1000, host: options.hostName ?? '', windowMs: options.windowMs ?? 0 },
  });
  let boundUrl = '';
  let closing: Promise<void> | undefined;

  const httpServer = http.createServer({ maxHeaderSize: SERVER_DEFAULTS.maxHeaderBytes, requestTimeout: 30_000, headersTimeout: 10_000 });
  httpServer.keepAliveTimeout = 5_000;
  httpServer.maxConnections = limits.maxClients + limits.maxHttpConnections;
  httpServer.on('request', createRequestHandler({
    access, hooks, counters, codec, logger, store: options.store, agentVersion: options.agentVersion ?? '',
    staticDir: options.staticDir ? path.resolve(options.staticDir) : undefined,
    limits: { maxClients: limits.maxClients, maxMessageBytes: limits.maxMessageBytes, maxClientBacklogBytes: limits.maxClientBacklogBytes },
  }));
  httpServer.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    counters.badHttpRequests++;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    rejectUpgrade(socket, status, `${statusText(status)}\n`);
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
    const a = access.check(req, url);
    if (!a.ok) {
      if (a.status === 401) counters.rejectedAuth++;
      else counters.rejectedOrigin++;
      return rejectUpgrade(socket, a.status, a.reason + '\n', a.status === 401 ? { 'WWW-Authenticate': 'Bearer realm="premortem"' } : {});
    }
    if (closing) return rejectUpgrade(socket, 503, 'the agent is shutting down\n');
    if (stream.clientCount >= limits.maxClients) {
      counters.rejectedCap++;
      return rejectUpgrade(socket, 503, `premortem serves at most ${limits.maxClients} viewers at once; try again later\n`, { 'Retry-After': '5' });
    }
    stream.accept(req, socket, head);
  });

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
    broadcastDelta: (delta) => stream.broadcastDelta(delta),
    publishSnapshot: (snapshot) => stream.publishSnapshot(snapshot),
    broadcastDeath: (death) => stream.broadcast(stream.encode({ death })),
    broadcastBundleReady: (incident) => stream.broadcast(stream.encode({ bundleReady: { incident } })),
    broadcastLost: (lost) => stream.broadcast(stream.encode({ lost })),
    broadcastError: (code, message) => stream.broadcast(stream.encode({ error: { code, message } })),
    counters: () => ({ ...counters, clients: stream.clientCount }),
    close() {
      closing ??= Promise.allSettled([
        stream.close(),
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
