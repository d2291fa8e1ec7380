/**
 * `premortem run`: the agent, its post-mortem store and the viewer server,
 * wired together. Shutdown runs once and closes everything.
 */
import { createAgent, Agent } from './agent';
import type { AgentOptions, AgentOptionsInput } from './config';
import { resolveOptions } from './config';
import { log, Logger } from './log';
import { createBundleStore, BundleStore } from './store';
import type { PremortemServer, ServerHooks } from './server';
import { createMetrics, Metrics, MetricsOptions } from './metrics';
import { createHealthMonitor, HealthMonitor } from './health';
import type { OtlpExporter, OtlpOptions } from './otlp';
import { createViewerServer } from './run-server';
import type { Feature } from '../proto/codec';

export { SNAPSHOT_COALESCE_MS } from './run-server';

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

/** The bundle store, opened; when it cannot be, why (the agent traces on without it). */
async function openStore(options: AgentOptions, logger: Logger): Promise<{ store: BundleStore; unavailable?: string }> {
  const store = createBundleStore({ dir: options.dataDir, quotaBytes: options.quotaBytes, maxBundles: options.maxBundles,
    retentionDays: options.retentionDays, logger });
  try {
    await store.ready();
    return { store };
  } catch (e) {
    // The agent traces on without a writable data directory; health says why.
    logger.error(`post-mortem store unavailable: ${(e as Error).message}`, { dir: options.dataDir });
    return { store, unavailable: (e as Error).message };
  }
}

/** Prometheus metrics (needed by OTLP too) and the OTLP exporter, as asked for. */
function createExporters(agent: Agent, store: BundleStore, extras: RunExtras, logger: Logger): { metrics?: Metrics; otlp?: OtlpExporter } {
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
  return { metrics, otlp };
}

export async function runPremortem(input: AgentOptionsInput, extras: RunExtras = {}): Promise<Running> {
  const options = resolveOptions(input);
  const logger = extras.logger ?? log;
  const { store, unavailable: storeUnavailable } = await openStore(options, logger);
  const agent = createAgent(options, { store, logger });
  await agent.start();
  const health = createHealthMonitor(agent, options.intervalMs);
  let lastWriteOkMs = 0;
  agent.on('bundle', () => { lastWriteOkMs = Date.now(); });
  const features = () => [...agent.features(), storeFeature(store, lastWriteOkMs, storeUnavailable)];
  const { metrics, otlp } = createExporters(agent, store, extras, logger);

  let server: PremortemServer | undefined;
  let url: string | undefined;
  if (options.port !== null) {
    server = createViewerServer({
      agent, store, health, features, options, logger, metrics: extras.metrics !== false ? metrics : undefined,
      extraRoutes: extras.extraRoutes, staticDir: extras.staticDir, privilegeSeparation: extras.privilegeSeparation,
    }, options.port);
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
