/**
 * The live stream at /ws: protobuf ServerMessage/ClientMessage frames
 * (proto/premortem.proto), one session per viewer with its subscriptions.
 *
 * The agent calls broadcastDelta(delta) once per interval; each client gets ONE
 * Delta frame holding the workers and services it subscribed to (plus host
 * context and host-level markers). Clients with identical subscriptions share
 * one encoded frame.
 *
 * Bounds: maxClients viewers (503 past it), maxMessageBytes per client message
 * (close 1009), per-client send backlog maxClientBacklogBytes (client dropped
 * with close 1013 and counted; the agent stops queueing for it at once),
 * maxClientMessagesPerSec (close 1008), maxSubscriptions per client,
 * maxHistoryInFlight per client, pings every pingIntervalMs (a peer that misses
 * one is terminated). Malformed protobuf: an Error frame, then close 1007; text
 * frames: close 1003; an incompatible protocol version: an Error frame saying
 * what to do, then close 4001.
 */
import type * as http from 'http';
import type { Duplex } from 'stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';
import type { Logger } from '../log';
import {
  checkClientVersion, parseWorkerKey, MIN_CLIENT_VERSION, PROTOCOL_VERSION,
  type ClientMessage, type Codec, type DeepPartial, type Delta, type Marker, type ServerMessage, type ServiceBucket,
  type Snapshot, type WorkerBucket,
} from '../../proto/codec';
import { CLOSE_INCOMPATIBLE_PROTOCOL, type ServerCounters, type ServerHooks } from './options';

export interface StreamLimits {
  maxClients: number;
  maxMessageBytes: number;
  maxClientBacklogBytes: number;
  pingIntervalMs: number;
  maxClientMessagesPerSec: number;
  maxSubscriptions: number;
  maxHistoryInFlight: number;
  closeGraceMs: number;
}

export interface StreamContext {
  limits: StreamLimits;
  hooks: ServerHooks;
  counters: ServerCounters;
  codec: () => Codec;
  hello: { agentVersion: string; intervalMs: number; host: string; windowMs: number };
  logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;
}

export interface Stream {
  /** Takes over an authorised upgrade request for /ws. */
  accept(req: http.IncomingMessage, socket: Duplex, head: Buffer): void;
  readonly clientCount: number;
  /** Encodes one message for every client (undefined when it cannot be encoded: counted and logged). */
  encode(msg: DeepPartial<ServerMessage>): Uint8Array | undefined;
  broadcast(frame: Uint8Array | undefined): void;
  broadcastDelta(delta: DeepPartial<Delta>): void;
  publishSnapshot(snapshot: DeepPartial<Snapshot>): void;
  close(): Promise<void>;
}

interface Subscriptions { all: boolean; workers: Set<string>; services: Set<string>; signature: string }

interface Client {
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

/** The part of a Delta one subscription wants (host context and host markers always). */
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

export function createStream(ctx: StreamContext): Stream {
  const { limits, hooks, counters, logger } = ctx;
  const clients = new Set<Client>();
  let snapshotFrame: Uint8Array | undefined;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxMessageBytes,
    perMessageDeflate: false, // no decompression bombs, no CPU per frame
    clientTracking: false,
  });

  function encode(msg: DeepPartial<ServerMessage>): Uint8Array | undefined {
    try {
      return ctx.codec().encodeServerMessage(msg);
    } catch (err) {
      counters.encodeErrors++;
      logger.error(`cannot encode a ${Object.keys(msg).join('/')} frame: ${(err as Error).message}`);
      return undefined;
    }
  }

  function forget(client: Client): void {
    client.closing = true;
    clients.delete(client);
    counters.clients = clients.size;
  }

  function drop(client: Client, code: number, reason: string): void {
    if (client.closing) return;
    forget(client);
    try { client.ws.close(code, reason); } catch { /* already gone */ }
    // Whatever it still holds is released now or after the grace period at most.
    setTimeout(() => client.ws.terminate(), limits.closeGraceMs).unref();
  }

  function send(client: Client, frame: Uint8Array): boolean {
    if (client.closing || client.ws.readyState !== WebSocket.OPEN) return false;
    if (client.ws.bufferedAmount + frame.length > limits.maxClientBacklogBytes) {
      counters.droppedSlowClients++;
      logger.warn(`viewer ${client.remote} dropped: ${client.ws.bufferedAmount} bytes waiting, bound ${limits.maxClientBacklogBytes}`);
      drop(client, 1013, 'send backlog over bound: client too slow');
      return false;
    }
    client.ws.send(frame, { binary: true });
    counters.framesSent++;
    counters.bytesSent += frame.length;
    return true;
  }

  const sendMessage = (client: Client, msg: DeepPartial<ServerMessage>) => {
    const frame = encode(msg);
    if (frame) send(client, frame);
  };
  const sendError = (client: Client, code: string, message: string) => sendMessage(client, { error: { code, message } });

  function onConnection(ws: WebSocket, req: http.IncomingMessage): void {
    const client: Client = {
      ws, subs: { all: false, workers: new Set(), services: new Set(), signature: '-' },
      alive: true, closing: false, tokens: limits.maxClientMessagesPerSec * 2, lastRefillMs: Date.now(), historyInFlight: 0,
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
    ws.on('close', () => forget(client));
    ws.on('message', (data: RawData, isBinary: boolean) => onMessage(client, data, isBinary));
    sendMessage(client, {
      hello: {
        agentVersion: ctx.hello.agentVersion, protocolVersion: PROTOCOL_VERSION, minClientVersion: MIN_CLIENT_VERSION,
        features: hooks.features?.() ?? [], intervalMs: ctx.hello.intervalMs, host: ctx.hello.host,
        serverTimeMs: Date.now(), windowMs: ctx.hello.windowMs,
      },
    });
    const snap = snapshotFrame ?? encode({ snapshot: hooks.snapshot?.() ?? { tMs: Date.now() } });
    if (snap) send(client, snap);
  }

  function takeToken(client: Client): boolean {
    const now = Date.now();
    const rate = limits.maxClientMessagesPerSec;
    client.tokens = Math.min(rate * 2, client.tokens + ((now - client.lastRefillMs) / 1000) * rate);
    client.lastRefillMs = now;
    if (client.tokens < 1) return false;
    client.tokens -= 1;
    return true;
  }

  /** A ClientMessage from valid binary bytes, or why the client is dropped. */
  function decode(client: Client, data: RawData, isBinary: boolean): ClientMessage | undefined {
    if (!takeToken(client)) {
      counters.rateLimited++;
      drop(client, 1008, `more than ${limits.maxClientMessagesPerSec} messages per second`);
      return undefined;
    }
    if (!isBinary) {
      counters.malformedMessages++;
      sendError(client, 'PREMORTEM_ERR_TEXT_FRAME', 'the stream speaks binary protobuf ClientMessage frames only');
      drop(client, 1003, 'binary frames only');
      return undefined;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const decoded = ctx.codec().tryDecodeClientMessage(bytes);
    if (!decoded.ok) {
      counters.malformedMessages++;
      sendError(client, 'PREMORTEM_ERR_MALFORMED', decoded.error.message);
      drop(client, 1007, 'malformed ClientMessage');
      return undefined;
    }
    const problem = checkClientVersion(decoded.value.protocolVersion);
    if (problem) {
      counters.versionMismatches++;
      sendError(client, problem.code, problem.message);
      drop(client, CLOSE_INCOMPATIBLE_PROTOCOL, problem.code);
      return undefined;
    }
    return decoded.value;
  }

  function onMessage(client: Client, data: RawData, isBinary: boolean): void {
    if (client.closing) return;
    const msg = decode(client, data, isBinary);
    if (!msg) return;
    switch (msg.body) {
      case 'subscribe': return subscribe(client, msg);
      case 'unsubscribe': return unsubscribe(client, msg);
      case 'historyRequest': return void answerHistory(client, msg);
      default:
        counters.malformedMessages++;
        sendError(client, 'PREMORTEM_ERR_EMPTY_MESSAGE', 'a ClientMessage needs subscribe, unsubscribe or historyRequest');
    }
  }

  function subscribe(client: Client, msg: ClientMessage): void {
    const s = msg.subscribe!;
    const subs = client.subs;
    const full = () => subs.workers.size + subs.services.size >= limits.maxSubscriptions;
    if (s.all) subs.all = true;
    let refused = 0;
    for (const key of s.workerKeys) {
      if (!parseWorkerKey(key) || full()) refused++;
      else subs.workers.add(key);
    }
    for (const id of s.serviceIds) {
      if (!id || id.length > 256 || full()) refused++;
      else subs.services.add(id);
    }
    subs.signature = signatureOf(subs);
    if (refused) {
      sendError(client, 'PREMORTEM_ERR_SUBSCRIPTION',
        `${refused} subscriptions refused (bad worker key "pid:start_ticks", bad service id, or over ${limits.maxSubscriptions})`);
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
    if (!hooks.history) return sendError(client, 'PREMORTEM_ERR_NO_HISTORY', 'this agent keeps no history');
    // A request may name only a service and/or the host (empty worker key).
    const workerless = h.workerKey === '' && (h.serviceId !== '' || h.host);
    if (!workerless && !parseWorkerKey(h.workerKey)) return sendError(client, 'PREMORTEM_ERR_BAD_WORKER_KEY', `'${h.workerKey}' is not "pid:start_ticks"`);
    if (client.historyInFlight >= limits.maxHistoryInFlight) {
      return sendError(client, 'PREMORTEM_ERR_BUSY', `at most ${limits.maxHistoryInFlight} history requests at once`);
    }
    client.historyInFlight++;
    try {
      const history = await hooks.history(h.workerKey, h.fromMs, h.toMs, { serviceId: h.serviceId, host: h.host });
      sendMessage(client, { history: { fromMs: h.fromMs, toMs: h.toMs, ...history, requestId: h.requestId } });
    } catch (err) {
      sendError(client, (err as { code?: string }).code ?? 'PREMORTEM_ERR_HISTORY', (err as Error).message);
    } finally {
      client.historyInFlight--;
    }
  }

  const pingTimer = setInterval(() => {
    for (const client of [...clients]) {
      if (!client.alive) {
        counters.deadPeers++;
        logger.info(`viewer ${client.remote} missed a ping: terminated`);
        forget(client);
        client.ws.terminate();
        continue;
      }
      client.alive = false;
      try { client.ws.ping(); } catch { /* closing */ }
    }
  }, limits.pingIntervalMs);
  pingTimer.unref();

  const broadcast = (frame: Uint8Array | undefined) => {
    if (!frame) return;
    for (const client of [...clients]) send(client, frame);
  };

  return {
    accept: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, req)),
    get clientCount() { return clients.size; },
    encode,
    broadcast,
    broadcastDelta(delta) {
      const frames = new Map<string, Uint8Array | undefined>();
      for (const client of [...clients]) {
        const sig = client.subs.signature;
        if (!frames.has(sig)) frames.set(sig, encode({ delta: sig === '*' ? delta : filterDelta(delta, client.subs) }));
        const frame = frames.get(sig);
        if (frame) send(client, frame);
      }
    },
    publishSnapshot(snapshot) {
      const frame = encode({ snapshot });
      if (!frame) return;
      snapshotFrame = frame;
      broadcast(frame);
    },
    close() {
      clearInterval(pingTimer);
      const all = [...clients];
      clients.clear();
      counters.clients = 0;
      for (const c of all) { c.closing = true; c.ws.terminate(); }
      return new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
