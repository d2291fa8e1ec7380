/**
 * The unprivileged server process (see agent/server/process.ts): runs
 * agent/server.ts with hooks and a store that ask the privileged parent over
 * IPC. It holds no capabilities and, when the agent is root, runs as nobody.
 * It exits when the parent goes away (IPC disconnect).
 */
import type * as http from 'http';
import { createServer, type PremortemServer, type ServerCounters, type ServerHooks } from './index';
import type { BundleStore, StoreHealth } from '../store';
import { StoreError } from '../store';
import { loadCodec } from '../../proto/node';
import type { Feature } from '../../proto/codec';
import type { ChildServerConfig } from './process';
import { capabilitiesOf } from './process';

type ParentMsg =
  | { t: 'init'; config: ChildServerConfig }
  | { t: 'delta'; d: never } | { t: 'snapshot'; s: never } | { t: 'death'; d: never } | { t: 'bundleReady'; i: never } | { t: 'lost'; l: never } | { t: 'error'; code: string; message: string }
  | { t: 'state'; features: Feature[]; storeHealth: StoreHealth | null }
  | { t: 'res'; id: number; ok: boolean; value?: unknown; code?: string; message?: string }
  | { t: 'close' };

const send = (m: unknown) => { if (process.connected) process.send!(m as never); };

const logger = {
  debug: (msg: string, fields?: Record<string, unknown>) => send({ t: 'log', level: 'debug', msg, fields }),
  info: (msg: string, fields?: Record<string, unknown>) => send({ t: 'log', level: 'info', msg, fields }),
  warn: (msg: string, fields?: Record<string, unknown>) => send({ t: 'log', level: 'warn', msg, fields }),
  error: (msg: string, fields?: Record<string, unknown>) => send({ t: 'log', level: 'error', msg, fields }),
};

let server: PremortemServer | undefined;
let config: ChildServerConfig | undefined;
let features: Feature[] = [];
let storeHealth: StoreHealth | null = null;
let snapshot: unknown;
let nextId = 1;
const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();

/** Longest /api/health and /api/ready wait for the agent: a probe gets an answer before its own timeout. */
const PROBE_ANSWER_MS = 2500;
/** When the agent last sent anything (its deltas come every interval): a busy agent is not a dead one. */
let lastHeardMs = Date.now();

/**
 * /api/health through the agent. An agent too busy to answer within PROBE_ANSWER_MS but
 * heard from within the liveness limit is live (a restart under load would lose the very
 * incident being traced); one silent for longer is not (503).
 */
async function healthViaAgent(): Promise<Record<string, unknown>> {
  try {
    return await askWithin<Record<string, unknown>>(PROBE_ANSWER_MS, 'health');
  } catch (e) {
    const silentMs = Date.now() - lastHeardMs;
    const limitMs = config?.livenessLimitMs ?? 10_000;
    if (silentMs > limitMs) throw new Error(`nothing heard from it for ${silentMs} ms (limit ${limitMs} ms): ${(e as Error).message}`);
    return { live: true, partial: true, reason: `the agent is busy: ${(e as Error).message}; last heard ${silentMs} ms ago`, silentMs, limitMs };
  }
}

/** One request to the parent, bounded in number and time. */
function ask<T>(op: string, ...args: unknown[]): Promise<T> {
  return askWithin<T>(config?.requestTimeoutMs ?? 5000, op, ...args);
}

function askWithin<T>(timeoutMs: number, op: string, ...args: unknown[]): Promise<T> {
  if (waiting.size >= (config?.maxInflightRequests ?? 64))
    return Promise.reject(new StoreError('PREMORTEM_ERR_STORE_BUSY', 'too many requests waiting for the agent; try again'));
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(Object.assign(new Error(`the agent did not answer ${op} within ${timeoutMs} ms`), { code: 'PREMORTEM_ERR_AGENT_TIMEOUT' }));
    }, timeoutMs);
    waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
    send({ t: 'req', id, op, args });
  });
}

/** The store as the server sees it: reads go to the parent; this process writes nothing. */
function proxyStore(dir: string): BundleStore {
  const codec = loadCodec();
  const readRaw = async (id: string) => {
    const v = await ask<Uint8Array>('readRaw', id);
    return v instanceof Uint8Array ? v : new Uint8Array(v as ArrayBuffer);
  };
  const readOnly = () => Promise.reject(new StoreError('PREMORTEM_ERR_STORE_READ_ONLY', 'the server process does not write bundles'));
  return {
    dir,
    ready: async () => undefined,
    write: readOnly,
    list: () => ask('list'),
    readRaw,
    async read(id) {
      const r = codec.tryDecodeBundle(await readRaw(id));
      if (!r.ok) throw new StoreError('PREMORTEM_ERR_BUNDLE_CORRUPT', `bundle ${id}: ${r.error.message}`);
      return r.value;
    },
    remove: readOnly as never,
    health: () => storeHealth ?? { dir, writes: 0, errors: 0, lastError: null, bytesUsed: 0, quotaBytes: 0, bundles: 0, maxBundles: 0, retentionDays: 0, evicted: 0, corrupt: 0, pendingWrites: 0 },
    close: async () => undefined,
  };
}

async function start(c: ChildServerConfig): Promise<void> {
  config = c;
  const hooks: ServerHooks = {
    health: healthViaAgent,
    ready: () => askWithin(PROBE_ANSWER_MS, 'ready'),
    features: () => {
      // Called as a viewer connects (its Hello): tell the agent now, it sends deltas only while viewers are connected.
      setImmediate(sendCounters);
      return features;
    },
    snapshot: () => (snapshot ?? { tMs: Date.now() }) as never,
    history: (key, from, to, also) => ask('history', key, from, to, also),
  };
  if (c.hasExtraRoutes) {
    hooks.extraRoutes = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
      const r = await ask<{ handled: boolean; status: number; headers: Record<string, string | string[]>; body: Uint8Array }>(
        'route', req.method, url.pathname + url.search, { accept: req.headers.accept });
      if (!r.handled) return false;
      res.writeHead(r.status, r.headers);
      res.end(req.method === 'HEAD' ? undefined : Buffer.from(r.body));
      return true;
    };
    hooks.extraRoutePaths = c.extraRoutePaths;
  }
  server = createServer({
    host: c.host, port: c.port, token: c.token, staticDir: c.staticDir, agentVersion: c.agentVersion, intervalMs: c.intervalMs,
    windowMs: c.windowMs, hostName: c.hostName, maxClients: c.maxClients, maxMessageBytes: c.maxMessageBytes,
    maxClientBacklogBytes: c.maxClientBacklogBytes, pingIntervalMs: c.pingIntervalMs, maxClientMessagesPerSec: c.maxClientMessagesPerSec,
    closeGraceMs: c.closeGraceMs, allowedOrigins: c.allowedOrigins, store: c.hasStore ? proxyStore('(agent)') : undefined, hooks, logger,
  });
  try {
    const addr = await server.listen();
    send({ t: 'listening', ...addr, capEff: capabilitiesOf().eff.toString(16) });
  } catch (e) {
    send({ t: 'listen-error', message: (e as Error).message, code: (e as { code?: string }).code });
    process.exit(1);
  }
  setInterval(sendCounters, 500).unref();
}

let lastCounters = '';
/** The server's counters to the agent, when they changed (an idle server sends nothing). */
function sendCounters(): void {
  if (!server) return;
  const c = server.counters() as ServerCounters;
  const text = JSON.stringify(c);
  if (text === lastCounters) return;
  lastCounters = text;
  send({ t: 'counters', c });
}

async function shutdown(code: number): Promise<never> {
  await server?.close().catch(() => undefined);
  process.exit(code);
}

process.on('message', (m: ParentMsg) => {
  lastHeardMs = Date.now();
  switch (m.t) {
    case 'init':
      void start(m.config).catch((e) => {
        send({ t: 'listen-error', message: (e as Error).message, code: (e as { code?: string }).code });
        process.exit(1);
      });
      return;
    case 'delta': server?.broadcastDelta(m.d); return;
    case 'snapshot': snapshot = m.s; server?.publishSnapshot(m.s); return;
    case 'death': server?.broadcastDeath(m.d); return;
    case 'bundleReady': server?.broadcastBundleReady(m.i); return;
    case 'lost': server?.broadcastLost(m.l); return;
    case 'error': server?.broadcastError(m.code, m.message); return;
    case 'state': features = m.features; storeHealth = m.storeHealth; return;
    case 'res': {
      const w = waiting.get(m.id);
      if (!w) return;
      waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.ok) w.resolve(m.value);
      else w.reject(m.code?.startsWith('PREMORTEM_ERR_STORE') || m.code?.startsWith('PREMORTEM_ERR_BUNDLE')
        ? new StoreError(m.code as never, m.message ?? '') : Object.assign(new Error(m.message), { code: m.code }));
      return;
    }
    case 'close': void shutdown(0); return;
    default: return;
  }
});
// The agent went away (even by SIGKILL): nothing left to serve.
process.on('disconnect', () => void shutdown(0));
process.on('uncaughtException', (e) => {
  logger.error(`server process failed: ${e.stack ?? e.message}`);
  void shutdown(1);
});
