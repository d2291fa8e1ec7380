/** The server's options, bounds, hooks into the agent and its interface. */
import type * as http from 'http';
import type { Logger } from '../log';
import type { Codec, DeepPartial, Death, Delta, Feature, History, IncidentSummary, Lost, Snapshot } from '../../proto/codec';
import type { BundleStore } from '../store';

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
  /** The paths extraRoutes answers (others never wait for it; '*' stands for one path segment): all when absent. */
  extraRoutePaths?: readonly string[];
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

export const newCounters = (): ServerCounters => ({
  clients: 0, connectionsTotal: 0, droppedSlowClients: 0, deadPeers: 0, rejectedAuth: 0, rejectedOrigin: 0,
  rejectedCap: 0, malformedMessages: 0, oversizeMessages: 0, rateLimited: 0, versionMismatches: 0, framesSent: 0,
  bytesSent: 0, encodeErrors: 0, httpRequests: 0, badHttpRequests: 0,
});

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
