/**
 * Privilege separation: the HTTP/WebSocket server runs in a child process that
 * holds NO capabilities, while this (privileged) process keeps the tracer.
 *
 * Why a separate process and not "drop capabilities after load": the tracer
 * needs CAP_BPF/CAP_PERFMON for its whole life (USDT attaches per new
 * interpreter binary, map updates per new worker), so the process that parses
 * untrusted input from the network must be another one.
 *
 *   parent (agent: tracer, store, root or CAP_BPF+CAP_PERFMON)
 *     └─ child (agent/server/child.ts: the server, uid nobody when the parent is
 *        root; CapEff = CapPrm = CapAmb = 0, no_new_privs, empty bounding set
 *        when the parent may set it)
 *
 * The child is started through setpriv(1) (util-linux) so that it gets
 * no_new_privs and empty inheritable/ambient sets before node runs; without
 * setpriv, a root parent falls back to fork({uid, gid}) (setuid from root
 * clears every capability set). The token travels over the IPC channel, never
 * on a command line or in the environment.
 *
 * IPC ('advanced' serialization, i.e. structured clone):
 *   parent -> child: init, delta, snapshot, death, bundleReady, lost, state
 *                    (features + store health), res (answers), close
 *   child -> parent: listening | listen-error, req (health, ready, history,
 *                    incidents list, bundle bytes, extra routes), counters, log
 * Bundles stay 0600 root-owned: the child asks the parent for their bytes.
 *
 * Deltas go to the child only while it reports a viewer connected (it reports one at once).
 *
 * Bounds: at most maxHistoryPerSec history answers per second for all viewers
 * together (each copies a timeline); three lanes to the child, each with its own bound on messages
 * in flight (written to the channel or queued for it), so that a child that stops reading (starved of
 * CPU, stopped) can grow neither the agent's memory nor the wait of an answer:
 *   - broadcasts (delta, snapshot, lost, error, state): at most maxPendingMessages, later ones dropped;
 *   - events (death, bundleReady): sent only while a viewer is connected (the child only forwards them),
 *     at most maxPendingEvents (a fork storm ends thousands of processes a second), later ones dropped;
 *   - answers (res): never dropped; a history or bundle request is refused (PREMORTEM_ERR_BUSY) while
 *     maxPendingMessages answers are in flight. Broadcasts never make an answer refused.
 * Every message dropped is counted (droppedMessages) and said in the log;
 * at most MAX_INFLIGHT_REQUESTS requests from the child at once, each answered
 * or failed within REQUEST_TIMEOUT_MS on the child's side; a child that dies is
 * restarted at most MAX_RESTARTS times per RESTART_WINDOW_MS.
 */
import { ChildProcess, fork, type ForkOptions } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { Readable } from 'stream';
import type { ServerCounters, ServerHooks, PremortemServer } from './options';
import { isLoopbackHost } from './access';
import type { BundleStore } from '../store';
import type { Logger } from '../log';
import { projectRoot } from '../native';

/** The user the server runs as when the agent is root. */
export const SERVER_USER = { uid: 65534, gid: 65534, name: 'nobody' } as const;
export const SERVER_PROCESS_DEFAULTS = {
  maxPendingMessages: 64,
  /** Deaths and bundle notices in flight to the child at most (more are dropped and counted). */
  maxPendingEvents: 1024,
  /** Longest the child waits for an answer from the parent. */
  requestTimeoutMs: 5000,
  maxInflightRequests: 64,
  maxRestarts: 5,
  restartWindowMs: 60_000,
  /** How long close() waits for the child before SIGKILL. */
  closeTimeoutMs: 3000,
  /** History answers per second for all viewers together: each costs the agent a timeline copy. */
  maxHistoryPerSec: 10,
} as const;

/** What may cross the IPC channel to configure the child's server (no functions). */
export interface ChildServerConfig {
  host: string;
  port: number;
  token?: string;
  staticDir?: string;
  agentVersion?: string;
  intervalMs?: number;
  windowMs?: number;
  hostName?: string;
  maxClients?: number;
  maxMessageBytes?: number;
  maxClientBacklogBytes?: number;
  pingIntervalMs?: number;
  maxClientMessagesPerSec?: number;
  closeGraceMs?: number;
  allowedOrigins?: string[];
  hasStore: boolean;
  hasExtraRoutes: boolean;
  /** The paths the agent's extra routes answer (others never ask it): all when absent. */
  extraRoutePaths?: string[];
  /** /api/health in the child: the agent counts as stuck after this long without a message from it. */
  livenessLimitMs?: number;
  requestTimeoutMs: number;
  maxInflightRequests: number;
}

export interface ServerProcessOptions {
  config: Omit<ChildServerConfig, 'hasStore' | 'hasExtraRoutes' | 'requestTimeoutMs' | 'maxInflightRequests'>;
  store?: BundleStore;
  hooks: ServerHooks;
  logger: Logger;
  /** The child's credentials; default: nobody when this process is root, unchanged otherwise. */
  user?: { uid: number; gid: number };
  maxPendingMessages?: number;
  maxPendingEvents?: number;
}

export interface ServerProcess extends PremortemServer {
  /** The server child's pid (changes if it is restarted). */
  readonly pid: number | undefined;
  /** Broadcasts and events not sent because the child was not keeping up. */
  readonly droppedMessages: number;
  /** Messages in flight to the child now, by lane (each bounded: see the header). */
  readonly pendingMessages: { broadcasts: number; events: number; answers: number; control: number };
  /** Deaths and bundle notices not sent because no viewer was connected. */
  readonly eventsNotSent: number;
  readonly restarts: number;
  /** Deltas not sent to the child because no viewer was connected (the latest is sent when one connects). */
  readonly deltasNotSent: number;
}

/** Effective capabilities of a process, from /proc/PID/status. */
export function capabilitiesOf(pid: number | 'self' = 'self'): { eff: bigint; prm: bigint; inh: bigint; amb: bigint; bnd: bigint } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k: string) => BigInt('0x' + (new RegExp(`^${k}:\\s+([0-9a-f]+)`, 'm').exec(status)?.[1] ?? '0'));
  return { eff: get('CapEff'), prm: get('CapPrm'), inh: get('CapInh'), amb: get('CapAmb'), bnd: get('CapBnd') };
}

/** True when this process holds any capability (root, or CAP_BPF etc. granted to a user). */
export function holdsCapabilities(): boolean {
  try {
    return capabilitiesOf().eff !== 0n;
  } catch {
    return process.getuid?.() === 0;
  }
}

function childEntry(): string {
  const here = path.join(__dirname, 'child.js');
  if (fs.existsSync(here)) return here;
  const built = path.join(projectRoot(), 'dist', 'agent', 'server', 'child.js');
  if (!fs.existsSync(built)) throw Object.assign(new Error(`${built} is missing: run \`npm run build\``), { code: 'PREMORTEM_ERR_NOT_BUILT' });
  return built;
}

/**
 * PREMORTEM_SERVER_NODE_ARGS: extra node flags for the server process, for diagnosis (the benchmark
 * profiles it with --cpu-prof, which NODE_OPTIONS may not carry). Only `--` flags, split on spaces.
 */
export function diagnosticNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.PREMORTEM_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a.startsWith('--'));
}

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p));

/** Whether a user who is neither owner nor group can reach `dir`: every directory on the way must be o+x, the last o+rx. */
export function othersCanReach(dir: string): boolean {
  let d = path.resolve(dir);
  try {
    if ((fs.statSync(d).mode & 0o005) !== 0o005) return false;
    for (;;) {
      const parent = path.dirname(d);
      if (parent === d) return true;
      d = parent;
      if ((fs.statSync(d).mode & 0o001) === 0) return false;
    }
  } catch {
    return false;
  }
}

/** A minimal ServerResponse stand-in for running an extra route (e.g. /metrics) on behalf of the child. */
class CapturedResponse {
  statusCode = 200;
  headersSent = false;
  private headers: Record<string, string | string[]> = {};
  private chunks: Buffer[] = [];
  readonly done: Promise<void>;
  private finish!: () => void;
  constructor() {
    this.done = new Promise((r) => { this.finish = r; });
  }
  setHeader(k: string, v: string | number | string[]) { this.headers[k.toLowerCase()] = Array.isArray(v) ? v : String(v); return this; }
  getHeader(k: string) { return this.headers[k.toLowerCase()]; }
  hasHeader(k: string) { return k.toLowerCase() in this.headers; }
  removeHeader(k: string) { delete this.headers[k.toLowerCase()]; }
  writeHead(status: number, a?: unknown, b?: unknown) {
    this.statusCode = status;
    const hdrs = (typeof a === 'object' && a) ? a : (typeof b === 'object' && b) ? b : undefined;
    if (hdrs) for (const [k, v] of Object.entries(hdrs as Record<string, string>)) this.setHeader(k, v);
    this.headersSent = true;
    return this;
  }
  write(chunk: string | Uint8Array) { this.chunks.push(Buffer.from(chunk as string)); this.headersSent = true; return true; }
  end(chunk?: string | Uint8Array | (() => void)) {
    if (chunk !== undefined && typeof chunk !== 'function') this.chunks.push(Buffer.from(chunk as string));
    this.headersSent = true;
    this.finish();
    return this;
  }
  result() { return { status: this.statusCode, headers: this.headers, body: Buffer.concat(this.chunks) }; }
}

export function startServerProcess(opts: ServerProcessOptions): ServerProcess {
  const { store, hooks, logger } = opts;
  const maxPending = opts.maxPendingMessages ?? SERVER_PROCESS_DEFAULTS.maxPendingMessages;
  const bounds: Record<Lane, number> = {
    broadcasts: maxPending, events: opts.maxPendingEvents ?? SERVER_PROCESS_DEFAULTS.maxPendingEvents, answers: Infinity, control: Infinity,
  };
  if (!isLoopbackHost(opts.config.host) && !opts.config.token)
    throw new TypeError(`binding to ${opts.config.host} (not loopback) needs a token`);
  const isRoot = process.getuid?.() === 0;
  // nobody must be able to read the code and the viewer; a checkout under /root (0700) is not.
  // Then the child keeps uid 0 but still holds no capability at all (empty bounding set).
  const reachable = !isRoot || opts.user !== undefined || othersCanReach(projectRoot());
  if (!reachable)
    logger.warn(`${projectRoot()} is not readable by ${SERVER_USER.name}: the server process runs as uid 0 with no capabilities; install premortem under a world-readable path (e.g. /opt) to run it as ${SERVER_USER.name}`);
  const user = opts.user ?? (isRoot && reachable ? { uid: SERVER_USER.uid, gid: SERVER_USER.gid } : undefined);
  const config: ChildServerConfig = {
    ...opts.config, hasStore: !!store, hasExtraRoutes: !!hooks.extraRoutes,
    extraRoutePaths: hooks.extraRoutePaths ? [...hooks.extraRoutePaths] : undefined,
    requestTimeoutMs: SERVER_PROCESS_DEFAULTS.requestTimeoutMs, maxInflightRequests: SERVER_PROCESS_DEFAULTS.maxInflightRequests,
  };

  let child: ChildProcess | undefined;
  let pending = newPending();
  let dropped = 0;
  let eventsNotSent = 0;
  let restarts = 0;
  const restartTimes: number[] = [];
  let counters: ServerCounters = {
    clients: 0, connectionsTotal: 0, droppedSlowClients: 0, deadPeers: 0, rejectedAuth: 0, rejectedOrigin: 0, rejectedCap: 0,
    malformedMessages: 0, oversizeMessages: 0, rateLimited: 0, versionMismatches: 0, framesSent: 0, bytesSent: 0,
    encodeErrors: 0, httpRequests: 0, badHttpRequests: 0,
  };
  let historyTokens: number = SERVER_PROCESS_DEFAULTS.maxHistoryPerSec;
  let historyRefillMs = Date.now();
  let url = '';
  let lastSnapshot: unknown;
  // With no viewer connected the child would only drop the deltas: they are not sent (each is a
  // structured clone of every tracked worker's bucket). The latest one is held and sent the
  // moment the child reports a viewer, so a viewer that connects misses no interval.
  let heldDelta: unknown;
  let deltasHeld = 0;
  let lastState = '';
  let closing: Promise<void> | undefined;
  let listening: { resolve: (v: { host: string; port: number; url: string }) => void; reject: (e: Error) => void } | undefined;

  function spawnChild(): ChildProcess {
    const entry = childEntry();
    // A small heap: the server holds client backlogs (bounded) and transient frames, nothing else.
    const nodeArgs = ['--max-old-space-size=128', '--max-semi-space-size=4', ...diagnosticNodeArgs()];
    let c: ChildProcess;
    const common: ForkOptions = { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', cwd: '/', env: { ...process.env, PREMORTEM_SERVER_CHILD: '1' } };
    if (SETPRIV) {
      const priv = ['--inh-caps=-all', '--ambient-caps=-all', '--no-new-privs'];
      if (user) priv.unshift(`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups');
      if (isRoot) priv.push('--bounding-set=-all');
      c = fork(entry, [], { ...common, execPath: SETPRIV, execArgv: [...priv, process.execPath, ...nodeArgs] });
    } else {
      // setuid from root clears every capability set; a non-root parent's ambient set would be inherited.
      if (!user) logger.warn('setpriv(1) not found: the server child inherits this process\'s ambient capabilities');
      c = fork(entry, [], { ...common, execArgv: nodeArgs, uid: user?.uid, gid: user?.gid });
    }
    c.on('message', (m: ChildMsg) => onChildMessage(c, m));
    c.on('error', (e) => logger.error(`server process: ${e.message}`));
    c.once('exit', (code, signal) => onChildExit(c, code, signal));
    pending = newPending();
    counters = { ...counters, clients: 0 }; // a new child has no viewer yet
    post(c, { t: 'init', config });
    if (lastSnapshot) post(c, { t: 'snapshot', s: lastSnapshot });
    pushState(true, c);
    return c;
  }

  /** Sends one message on its lane; a lane at its bound drops it (answers and control never are). */
  function post(c: ChildProcess | undefined, msg: unknown, lane: Lane = 'control'): void {
    if (!c || !c.connected) return;
    if (pending[lane] >= bounds[lane]) {
      dropped++;
      if (dropped === 1 || dropped % 1000 === 0) logger.warn(`server process is not keeping up: ${dropped} messages to it dropped (${lane} bound ${bounds[lane]})`);
      return;
    }
    const counts = pending; // a restarted child starts new counts: this callback belongs to the old ones
    counts[lane]++;
    const done = () => { counts[lane] = Math.max(0, counts[lane] - 1); };
    try {
      c.send(msg as never, (err) => {
        done();
        if (err && !closing) logger.debug(`server process IPC: ${err.message}`);
      });
    } catch (e) {
      done();
      logger.debug(`server process IPC: ${(e as Error).message}`);
    }
  }

  /** A death or bundle notice: only a viewer needs it (the child keeps none). */
  function postEvent(msg: unknown): void {
    if (counters.clients === 0) { eventsNotSent++; return; }
    post(child, msg, 'events');
  }

  function pushState(force = false, to = child): void {
    const state = { features: hooks.features?.() ?? [], storeHealth: store?.health() ?? null };
    const text = JSON.stringify(state);
    if (!force && text === lastState) return;
    lastState = text;
    post(to, { t: 'state', ...state }, force ? 'control' : 'broadcasts');
  }

  async function answer(c: ChildProcess, m: Extract<ChildMsg, { t: 'req' }>): Promise<void> {
    let reply: { ok: true; value: unknown } | { ok: false; code: string; message: string };
    if (m.op === 'history') {
      const now = Date.now();
      historyTokens = Math.min(SERVER_PROCESS_DEFAULTS.maxHistoryPerSec, historyTokens + ((now - historyRefillMs) / 1000) * SERVER_PROCESS_DEFAULTS.maxHistoryPerSec);
      historyRefillMs = now;
      if (historyTokens < 1) {
        post(c, { t: 'res', id: m.id, ok: false, code: 'PREMORTEM_ERR_BUSY', message: `more than ${SERVER_PROCESS_DEFAULTS.maxHistoryPerSec} history requests per second; try again` }, 'answers');
        return;
      }
      historyTokens--;
    }
    if (pending.answers >= maxPending && (m.op === 'history' || m.op === 'readRaw')) {
      // The child is not reading its answers: a small refusal instead of another large one in the queue.
      post(c, { t: 'res', id: m.id, ok: false, code: 'PREMORTEM_ERR_BUSY', message: 'the agent is busy; try again' }, 'answers');
      return;
    }
    try {
      let value: unknown;
      switch (m.op) {
        case 'health': value = (await hooks.health?.()) ?? {}; break;
        case 'ready': value = (await hooks.ready?.()) ?? { ready: true }; break;
        case 'history': {
          const [key, from, to, also] = m.args as [string, number, number, { serviceId: string; host: boolean } | undefined];
          value = hooks.history ? await hooks.history(key, from, to, also) : { timelines: [], markers: [] };
          break;
        }
        case 'list': value = store ? await store.list() : []; break;
        case 'readRaw': {
          if (!store) throw Object.assign(new Error('no store'), { code: 'PREMORTEM_ERR_NO_STORE' });
          value = await store.readRaw(String(m.args[0]));
          break;
        }
        case 'route': {
          const [method, target, headers] = m.args as [string, string, http.IncomingHttpHeaders];
          const req = Object.assign(Readable.from([]), { method, url: target, headers, socket: { remoteAddress: '127.0.0.1' } });
          const res = new CapturedResponse();
          const handled = hooks.extraRoutes ? await hooks.extraRoutes(req as unknown as http.IncomingMessage,
            res as unknown as http.ServerResponse, new URL(target, 'http://premortem.invalid')) : false;
          if (handled) await Promise.race([res.done, new Promise((r) => setTimeout(r, SERVER_PROCESS_DEFAULTS.requestTimeoutMs))]);
          value = { handled, ...res.result() };
          break;
        }
        default: throw Object.assign(new Error(`unknown request ${String(m.op)}`), { code: 'PREMORTEM_ERR_BAD_REQUEST' });
      }
      reply = { ok: true, value };
    } catch (e) {
      reply = { ok: false, code: (e as { code?: string }).code ?? 'PREMORTEM_ERR_INTERNAL', message: (e as Error).message };
    }
    post(c, { t: 'res', id: m.id, ...reply }, 'answers');
  }

  function onChildMessage(c: ChildProcess, m: ChildMsg): void {
    switch (m.t) {
      case 'listening':
        url = m.url;
        config.port = m.port; // a restarted child binds the same port
        if (m.capEff !== '0') logger.error(`the server process holds capabilities (CapEff=0x${m.capEff}): it should hold none`);
        listening?.resolve({ host: m.host, port: m.port, url: m.url });
        listening = undefined;
        return;
      case 'listen-error':
        listening?.reject(Object.assign(new Error(m.message), { code: m.code }));
        listening = undefined;
        return;
      case 'counters': {
        const hadViewers = counters.clients > 0;
        counters = m.c;
        if (!hadViewers && counters.clients > 0 && heldDelta !== undefined) {
          post(c, { t: 'delta', d: heldDelta }, 'broadcasts');
          heldDelta = undefined;
        }
        return;
      }
      case 'log': (logger[m.level] ?? logger.info)(`[server] ${m.msg}`, m.fields); return;
      case 'req': void answer(c, m); return;
      default: return;
    }
  }

  function onChildExit(c: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (c !== child) return;
    child = undefined;
    if (listening) {
      listening.reject(new Error(`the server process exited before listening (${code ?? signal})`));
      listening = undefined;
      return;
    }
    if (closing) return;
    const now = Date.now();
    while (restartTimes.length && now - restartTimes[0] > SERVER_PROCESS_DEFAULTS.restartWindowMs) restartTimes.shift();
    if (restartTimes.length >= SERVER_PROCESS_DEFAULTS.maxRestarts) {
      logger.error(`the server process exited (${code ?? signal}) ${restartTimes.length} times within a minute: the viewer stays down; tracing continues`);
      return;
    }
    restartTimes.push(now);
    restarts++;
    logger.error(`the server process exited (${code ?? signal}): restarting it`);
    setTimeout(() => { if (!closing) child = spawnChild(); }, 500).unref();
  }

  const stateTimer = setInterval(() => pushState(), 1000);
  stateTimer.unref();

  return {
    listen() {
      return new Promise((resolve, reject) => {
        listening = { resolve, reject };
        child = spawnChild();
      });
    },
    get url() { return url; },
    get pid() { return child?.pid; },
    get droppedMessages() { return dropped; },
    get pendingMessages() { return { ...pending }; },
    get eventsNotSent() { return eventsNotSent; },
    get restarts() { return restarts; },
    get deltasNotSent() { return deltasHeld; },
    broadcastDelta(d) {
      pushState();
      if (counters.clients === 0) {
        heldDelta = d;
        deltasHeld++;
        return;
      }
      heldDelta = undefined;
      post(child, { t: 'delta', d }, 'broadcasts');
    },
    publishSnapshot(s) { lastSnapshot = s; post(child, { t: 'snapshot', s }, 'broadcasts'); },
    broadcastDeath(d) { postEvent({ t: 'death', d }); },
    broadcastBundleReady(i) { postEvent({ t: 'bundleReady', i }); },
    broadcastLost(l) { post(child, { t: 'lost', l }, 'broadcasts'); },
    broadcastError(code, message) { post(child, { t: 'error', code, message }, 'broadcasts'); },
    counters: () => ({ ...counters }),
    close() {
      if (closing) return closing;
      clearInterval(stateTimer);
      closing = (async () => {
        const c = child;
        if (!c || c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise<void>((r) => c.once('exit', () => r()));
        post(c, { t: 'close' });
        const timer = setTimeout(() => { try { c.kill('SIGKILL'); } catch { /* gone */ } }, SERVER_PROCESS_DEFAULTS.closeTimeoutMs);
        await exited;
        clearTimeout(timer);
      })();
      return closing;
    },
  };
}

/** The lanes of messages to the child, each with its own bound (see the header). */
type Lane = 'broadcasts' | 'events' | 'answers' | 'control';
const newPending = (): Record<Lane, number> => ({ broadcasts: 0, events: 0, answers: 0, control: 0 });

/** Messages from the child (agent/server/child.ts). */
export type ChildMsg =
  | { t: 'listening'; host: string; port: number; url: string; capEff: string }
  | { t: 'listen-error'; message: string; code?: string }
  | { t: 'counters'; c: ServerCounters }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { t: 'req'; id: number; op: 'health' | 'ready' | 'history' | 'list' | 'readRaw' | 'route'; args: unknown[] };
