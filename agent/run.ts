/**
 * `premortem run`: the agent, its post-mortem store and the viewer server,
 * wired together. Shutdown runs once and closes everything.
 */
import * as os from 'os';
import * as path from 'path';
import { createAgent, Agent, AGENT_VERSION } from './agent';
import type { AgentOptionsInput } from './config';
import { resolveOptions } from './config';
import { log, Logger } from './log';
import { projectRoot } from './native';
import { createBundleStore, BundleStore } from './store';
import { createServer, PremortemServer, ServerHooks } from './server';
import { createMetrics, Metrics, MetricsOptions } from './metrics';
import { whyRoute, WHY_ROUTE_PATH } from './server/why';
import { createHealthMonitor, HealthMonitor, livenessLimitMs } from './health';
import type { OtlpExporter, OtlpOptions } from './otlp';
import { holdsCapabilities, startServerProcess } from './server/process';
import type { Feature } from '../proto/codec';

/** Longest a viewer waits for a topology change (services, workers born and dead). */
export const SNAPSHOT_COALESCE_MS = 200;

export interface Running {
  agent: Agent;
  store: BundleStore;
  server?: PremortemServer;
  url?: string;
  metrics?: Metrics;
  otlp?: OtlpExporter;
  /** Liveness (the tracer answers) and readiness (the first tick ran): /api/health, /api/ready. */
  health: HealthMonitor;
  stop(): Promise<void>;
}

export interface RunExtras {
  logger?: Logger;
  /** Extra routes (e.g. /metrics), installed on the server. */
  extraRoutes?: ServerHooks['extraRoutes'];
  staticDir?: string;
  /**
   * Serve HTTP/WebSocket from a child process that holds no capabilities
   * (agent/server/process.ts). Default: on when this process holds any
   * capability (root, or a user granted CAP_BPF/CAP_PERFMON).
   */
  privilegeSeparation?: boolean;
  /** GET /metrics on the server (Prometheus); on unless false (`--no-metrics`). */
  metrics?: boolean | MetricsOptions;
  /** OTLP/HTTP protobuf export of the metrics and post-mortems (`--otlp-endpoint`). */
  otlp?: OtlpOptions;
}

/** The store as a viewer feature: off (with the last error) while bundles cannot be written. */
function storeFeature(store: BundleStore, lastWriteOkMs: number, unavailable: string | undefined): Feature {
  const h = store.health();
  if (unavailable && !h.writes) return { name: 'store', enabled: false, reason: unavailable };
  const failing = h.lastError && h.lastError.tMs >= lastWriteOkMs;
  return {
    name: 'store', enabled: !failing,
    reason: failing ? `${h.lastError!.code}: ${h.lastError!.message} (${h.errors} errors)` : h.errors ? `${h.errors} errors, recovered` : '',
  };
}

export async function runPremortem(input: AgentOptionsInput, extras: RunExtras = {}): Promise<Running> {
  const options = resolveOptions(input);
  const logger = extras.logger ?? log;
  const store = createBundleStore({ dir: options.dataDir, quotaBytes: options.quotaBytes, maxBundles: options.maxBundles,
    retentionDays: options.retentionDays, logger });
  let storeUnavailable: string | undefined;
  try {
    await store.ready();
  } catch (e) {
    // The agent traces on without a writable data directory; health says why.
    storeUnavailable = (e as Error).message;
    logger.error(`post-mortem store unavailable: ${(e as Error).message}`, { dir: options.dataDir });
  }
  const agent = createAgent(options, { store, logger });
  await agent.start();
  const health = createHealthMonitor(agent, options.intervalMs);
  let lastWriteOkMs = 0;
  agent.on('bundle', () => { lastWriteOkMs = Date.now(); });
  const features = () => [...agent.features(), storeFeature(store, lastWriteOkMs, storeUnavailable)];

  let metrics: Metrics | undefined;
  let otlp: OtlpExporter | undefined;
  if (extras.metrics !== false || extras.otlp) {
    metrics = createMetrics(agent, { store, ...(typeof extras.metrics === 'object' ? extras.metrics : {}) });
  }
  if (extras.otlp) {
    // Loaded only when asked for: the OpenTelemetry SDK is not needed otherwise.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    otlp = (require('./otlp') as typeof import('./otlp')).createOtlpExporter(agent, metrics!, { logger, ...extras.otlp });
  }
  const serveMetrics = extras.metrics !== false ? metrics : undefined;
  const serveWhy = whyRoute(agent); // GET /api/workers/:worker/why
  const extraRoutes: ServerHooks['extraRoutes'] = (req, res, url) => serveWhy(req, res, url)
    || (serveMetrics?.handle(req, res, url) ?? false) || (extras.extraRoutes?.(req, res, url) ?? false);

  let server: PremortemServer | undefined;
  let url: string | undefined;
  if (options.port !== null) {
    const hooks: ServerHooks = {
      health: () => ({ ...agent.health(), features: features(), store: store.health(), ...health.liveness() }),
      ready: () => health.readiness(),
      features,
      snapshot: () => agent.snapshot(),
      history: (key, from, to, also) => agent.history(key, from, to, also),
      extraRoutes,
      // Only /metrics and the why route are ours: other paths never wait for the agent (unless a caller adds its own routes).
      extraRoutePaths: extras.extraRoutes ? undefined : [WHY_ROUTE_PATH, ...(serveMetrics ? [serveMetrics.path] : [])],
    };
    const config = {
      host: options.host, port: options.port, token: options.token,
      staticDir: extras.staticDir ?? path.join(projectRoot(), 'dist', 'viewer'),
      agentVersion: AGENT_VERSION, intervalMs: options.intervalMs, windowMs: options.windowMs, hostName: os.hostname(),
      livenessLimitMs: livenessLimitMs(options.intervalMs),
    };
    const separate = extras.privilegeSeparation ?? holdsCapabilities();
    server = separate ? startServerProcess({ config, store, hooks, logger }) : createServer({ ...config, store, logger, hooks });
    // The server child cannot call agent.snapshot(): it starts from this one and every later topology change.
    if (separate) server.publishSnapshot(agent.snapshot());
    agent.on('tick', (delta) => server!.broadcastDelta(delta));
    // Topology changes come in bursts (a fork storm changes it thousands of times a second):
    // one snapshot per SNAPSHOT_COALESCE_MS at most, always the latest.
    let snapshotTimer: NodeJS.Timeout | undefined;
    agent.on('topology', () => {
      if (snapshotTimer) return;
      snapshotTimer = setTimeout(() => {
        snapshotTimer = undefined;
        server!.publishSnapshot(agent.snapshot());
      }, SNAPSHOT_COALESCE_MS);
      snapshotTimer.unref();
    });
    agent.on('death', (d) => server!.broadcastDeath(d));
    agent.on('bundle', (incident) => server!.broadcastBundleReady(incident));
    agent.on('lost', (l) => server!.broadcastLost(l));
    agent.on('store-error', (code: string, message: string) => server!.broadcastError(code, message));
    try {
      ({ url } = await server.listen());
    } catch (e) {
      await Promise.allSettled([otlp?.shutdown(), agent.stop()]);
      metrics?.close();
      health.close();
      throw e;
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const results = await Promise.allSettled([server?.close(), otlp?.shutdown(), agent.stop()]);
      metrics?.close();
      health.close();
      await store.close().catch(() => undefined); // after the agent: flushes bundles being written
      for (const r of results) if (r.status === 'rejected') logger.error('shutdown step failed', { error: String(r.reason) });
    })());
  return { agent, store, server, url, metrics, otlp, health, stop };
}
