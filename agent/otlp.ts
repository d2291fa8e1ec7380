/**
 * Optional OpenTelemetry export (`premortem run --otlp-endpoint URL`), with
 * the official OpenTelemetry JS SDK over OTLP/HTTP protobuf:
 *   - metrics: the same families and samples as /metrics (agent/metrics.ts),
 *     handed to the SDK's PeriodicExportingMetricReader by a MetricProducer at
 *     each export (every `intervalMs`, default 15 s, or
 *     OTEL_METRIC_EXPORT_INTERVAL) and sent to URL/v1/metrics: gauges as
 *     gauges, counters as cumulative monotonic sums (start time = when the
 *     series began counting), histograms as real explicit-bucket histograms
 *     (the runqueue latency: bounds in seconds, count, sum), not flattened
 *     `_bucket` counters. Labels become attributes under their
 *     semantic-convention names where one exists (service -> service.name of
 *     the traced service, pid -> process.pid, cgroup -> process.linux.cgroup),
 *     `premortem.<label>` otherwise (premortem.slot, premortem.verdict...).
 *   - logs: each post-mortem written becomes one log record (URL/v1/logs):
 *     body = the verdict's summary, severity ERROR for failures and INFO for
 *     planned exits, attributes service.name (the traced service),
 *     process.pid, process.exit.code (exits), premortem.verdict,
 *     premortem.summary, premortem.bundle_id, premortem.failure,
 *     premortem.signal, premortem.sender_pid, premortem.evidence.
 * Resource: the SDK's default resource (telemetry.sdk.*), then ours
 * (service.name=premortem, service.version, host.name, k8s.* from
 * K8S_NODE_NAME / K8S_POD_NAME / K8S_NAMESPACE_NAME / K8S_POD_UID when set),
 * then the environment's (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME), which
 * win. Log records are batched for `logDelayMs` (default 1 s, or
 * OTEL_BLRP_SCHEDULE_DELAY). The exporters load their HTTP transport with a
 * dynamic import(): run them in plain Node (jest's VM refuses dynamic imports
 * without a flag).
 *
 * Export failures are logged (at most once a minute) and dropped: the OTLP
 * exporters bound their own queues (the SDK's BatchLogRecordProcessor holds at
 * most MAX_QUEUED_LOG_RECORDS records; metrics are re-read at each export).
 */
import * as os from 'os';
import { diag, DiagLogLevel, type Attributes } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { defaultResource, detectResources, envDetector, resourceFromAttributes, type Resource } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchLogRecordProcessor, LoggerProvider } from '@opentelemetry/sdk-logs';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import type { Agent } from './agent';
import { AGENT_VERSION } from './agent';
import type { Metrics } from './metrics';
import { createMetricProducer } from './otlp-metrics';
import type { Bundle, IncidentSummary } from '../proto/codec';
import { log as defaultLog, type Logger } from './log';

/** Default metric export interval. */
export const DEFAULT_OTLP_INTERVAL_MS = 15_000;
/** Log records queued for export before new ones are dropped (post-mortems are rare). */
export const MAX_QUEUED_LOG_RECORDS = 256;
/** Delay before a batch of log records is sent. */
export const DEFAULT_OTLP_LOG_DELAY_MS = 1_000;
/** Per-request timeout. */
const EXPORT_TIMEOUT_MS = 10_000;
/** Evidence lines carried in a log record. */
const MAX_EVIDENCE = 16;

export interface OtlpOptions {
  /** Base URL of an OTLP/HTTP receiver, e.g. http://collector:4318 (paths /v1/metrics and /v1/logs are added). */
  endpoint: string;
  /** Extra request headers (e.g. authorization). */
  headers?: Record<string, string>;
  intervalMs?: number;
  logDelayMs?: number;
  logger?: Logger;
}

export interface OtlpExporter {
  /** Sends what is pending now (metrics read afresh, queued log records). */
  flush(): Promise<void>;
  /** Flushes, then stops both providers. Idempotent. */
  shutdown(): Promise<void>;
}

function baseUrl(endpoint: string): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new TypeError(`--otlp-endpoint must be a URL such as http://127.0.0.1:4318, got ${endpoint}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`--otlp-endpoint must be http:// or https://, got ${u.protocol}`);
  return u.toString().replace(/\/+$/, '');
}

/** Kubernetes downward-API variables -> resource attributes (when the DaemonSet sets them). */
const K8S_ENV: Array<[string, string]> = [
  ['K8S_NODE_NAME', 'k8s.node.name'], ['K8S_POD_NAME', 'k8s.pod.name'],
  ['K8S_NAMESPACE_NAME', 'k8s.namespace.name'], ['K8S_POD_UID', 'k8s.pod.uid'],
];

/**
 * The SDK's default resource, merged with ours, merged with the environment's
 * (OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME): later ones win.
 */
export function otlpResource(env: NodeJS.ProcessEnv = process.env): Resource {
  const ours: Attributes = { 'service.name': 'premortem', 'service.version': AGENT_VERSION, 'host.name': os.hostname() };
  for (const [name, attr] of K8S_ENV) if (env[name]) ours[attr] = env[name];
  return defaultResource().merge(resourceFromAttributes(ours)).merge(detectResources({ detectors: [envDetector] }));
}

let diagInstalled = false;

export function createOtlpExporter(agent: Agent, metrics: Metrics, options: OtlpOptions): OtlpExporter {
  const logger = options.logger ?? defaultLog;
  const base = baseUrl(options.endpoint);
  // The OpenTelemetry SDK's standard variables apply when no option is given.
  const envMs = (name: string) => (Number(process.env[name]) > 0 ? Number(process.env[name]) : undefined);
  const intervalMs = options.intervalMs ?? envMs('OTEL_METRIC_EXPORT_INTERVAL') ?? DEFAULT_OTLP_INTERVAL_MS;
  if (!(intervalMs >= 100)) throw new TypeError('otlp intervalMs must be >= 100');
  if (!diagInstalled) {
    // The SDK reports export failures through its process-wide diag logger: route them to ours, rate-limited.
    diagInstalled = true;
    let lastMs = 0;
    const warn = (msg: string, ...args: unknown[]) => {
      if (Date.now() - lastMs < 60_000) return;
      lastMs = Date.now();
      logger.warn(`OTLP export: ${msg}`, args.length ? { detail: args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ') } : undefined);
    };
    diag.setLogger({ error: warn, warn, info: () => undefined, debug: () => undefined, verbose: () => undefined }, DiagLogLevel.WARN);
  }
  const resource = otlpResource();
  const common = { headers: options.headers, timeoutMillis: EXPORT_TIMEOUT_MS };

  // ---- metrics: premortem's families through a producer (real histograms, per-series start times)
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ ...common, url: `${base}/v1/metrics` }),
    exportIntervalMillis: intervalMs,
    exportTimeoutMillis: Math.min(EXPORT_TIMEOUT_MS, intervalMs),
    metricProducers: [createMetricProducer(metrics, resource, { name: 'premortem', version: AGENT_VERSION })],
  });
  const meterProvider = new MeterProvider({ resource, readers: [reader] });

  // ---- logs: one record per post-mortem
  const loggerProvider = new LoggerProvider({
    resource,
    processors: [new BatchLogRecordProcessor({
      exporter: new OTLPLogExporter({ ...common, url: `${base}/v1/logs` }),
      maxQueueSize: MAX_QUEUED_LOG_RECORDS, maxExportBatchSize: 64, scheduledDelayMillis: options.logDelayMs ?? envMs('OTEL_BLRP_SCHEDULE_DELAY') ?? DEFAULT_OTLP_LOG_DELAY_MS,
      exportTimeoutMillis: EXPORT_TIMEOUT_MS,
    })],
  });
  const otelLogger = loggerProvider.getLogger('premortem', AGENT_VERSION);
  const onBundle = (incident: IncidentSummary, bundle?: Bundle) => {
    const v = bundle?.verdict;
    const attributes: Attributes = {
      'service.name': incident.service,
      'process.pid': incident.pid,
      'premortem.verdict': incident.verdictKind,
      'premortem.summary': incident.summary,
      'premortem.bundle_id': incident.id,
      'premortem.service': incident.service,
      'premortem.service_id': incident.serviceId,
      'premortem.failure': incident.failure,
      'premortem.start_ticks': incident.startTicks,
    };
    if (bundle?.service?.unit) attributes['premortem.unit'] = bundle.service.unit;
    if (bundle?.service?.cgroup) attributes['process.linux.cgroup'] = bundle.service.cgroup;
    if (v) {
      if (v.signalName) attributes['premortem.signal'] = v.signalName;
      if (v.senderPid) attributes['premortem.sender_pid'] = v.senderPid;
      if (v.senderComm) attributes['premortem.sender_comm'] = v.senderComm;
      if (v.kind === 'exited') attributes['process.exit.code'] = v.exitCode;
      if (v.limitBytes) attributes['premortem.limit_bytes'] = v.limitBytes;
      attributes['premortem.evidence'] = v.evidence.slice(0, MAX_EVIDENCE).map((e) => `${e.what}: ${e.value}`);
    }
    otelLogger.emit({
      timestamp: incident.tMs,
      severityNumber: incident.failure ? SeverityNumber.ERROR : SeverityNumber.INFO,
      severityText: incident.failure ? 'ERROR' : 'INFO',
      eventName: 'premortem.postmortem',
      body: incident.summary,
      attributes,
    });
  };
  agent.on('bundle', onBundle);

  let down: Promise<void> | undefined;
  return {
    async flush() {
      await Promise.all([reader.forceFlush(), loggerProvider.forceFlush()]);
    },
    shutdown() {
      return (down ??= (async () => {
        agent.off('bundle', onBundle);
        const results = await Promise.allSettled([meterProvider.shutdown(), loggerProvider.shutdown()]);
        for (const r of results) if (r.status === 'rejected') logger.warn('OTLP shutdown failed', { error: String(r.reason) });
      })());
    },
  };
}
