/**
 * Prometheus `/metrics` (text format 0.0.4, through prom-client's Registry)
 * for fleets: what the agent sees per service and per live worker, the
 * incidents it judged, and its own health. The families are listed in
 * agent/metrics-defs.ts; the same samples feed the OTLP exporter (agent/otlp.ts).
 * The agent's own process is described by prom-client's default collectors
 * (process_*, nodejs_*), registered once per process.
 *
 * Values come from the agent's per-interval 'tick' (counters accumulate the
 * per-interval deltas here), its 'death', 'bundle' and marker events, and
 * health() at scrape time. Each family is a prom-client collectable computed at
 * scrape: series of a worker vanish with the worker, and the runqueue
 * histogram is built from the kernel's log2 buckets, which prom-client's
 * Histogram (observe() one value at a time) cannot ingest.
 *
 * Series identity and cardinality (bounded, by design):
 *   A service is told apart by serviceLabels(): its name, systemd unit and
 *   cgroup, so two deployments running `gunicorn app:app` stay apart. At most
 *   `maxServices` (default 64) distinct label sets over the agent's life;
 *   later ones are summed under service="_other" (without worker series).
 *   A worker series is keyed by (service, role, slot): a recycled worker
 *   continues its slot's series (its counters restart, as after any process
 *   restart; premortem_worker_generation and _start_time_seconds say so).
 *   `pidLabel` (--metrics-pid-label) adds pid: one series per process, which
 *   churns the TSDB on every recycle. At most `maxWorkerSeries` (default 256)
 *   live worker series; series of dead workers are removed at the next tick.
 * A host with S services and W live workers exports at most about
 * 80 + S * 40 + W * 24 series, plus prom-client's ~30 default families.
 */
import * as fs from 'fs';
import type * as http from 'http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Agent } from './agent';
import { AGENT_VERSION } from './agent';
import {
  addHist, emptyHist, FAMILIES, histFromSlots,
  type FamilyDef, type HistValue, type MetricFamily, type Sample,
} from './metrics-defs';
import type { Death, Delta, IncidentSummary, Identity, Marker, Service, ServiceBucket } from '../proto/codec';
import type { BundleStore } from './store';

export type { FamilyDef, FamilyType, HistValue, MetricFamily, Sample } from './metrics-defs';

export const DEFAULT_MAX_WORKER_SERIES = 256;
export const DEFAULT_MAX_SERVICES = 64;
/** Bound on probe label values. */
const MAX_PROBE_LABELS = 32;
/** The label value of services past the cap. */
export const OTHER_SERVICE = '_other';
const PSI_RESOURCES = ['cpu', 'memory', 'io'] as const;

export interface MetricsOptions {
  maxWorkerSeries?: number;
  maxServices?: number;
  /** Add a pid label to worker series (--metrics-pid-label). */
  pidLabel?: boolean;
  /** Store whose health is exported (premortem_store_*). */
  store?: BundleStore;
  /** URL path served by handle(); default /metrics. */
  path?: string;
  /** Where PSI totals are read (tests). */
  pressureDir?: string;
}

export interface Metrics {
  /** premortem's families plus the process_* and nodejs_* defaults. */
  readonly registry: Registry;
  /** For the server's extraRoutes: answers GET /metrics, returns false for anything else. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean;
  /** The path handle() answers. */
  readonly path: string;
  /** premortem's families with their current samples (what a scrape returns; histograms unflattened). */
  families(): MetricFamily[];
  definitions(): FamilyDef[];
  /** Stops listening to the agent. */
  close(): void;
}

/**
 * The labels that tell one service from another. Container and pod identity
 * (container, pod, namespace) belong here once discovery knows them.
 */
export function serviceLabels(s: Pick<Service, 'name' | 'unit' | 'cgroup'> | undefined): Record<string, string> {
  return { service: s?.name || 'unknown', unit: s?.unit ?? '', cgroup: s?.cgroup ?? '' };
}

let defaults: Registry | undefined;
/** prom-client's default collectors, once per process (they install process-wide observers). */
function defaultRegistry(): Registry {
  if (!defaults) {
    defaults = new Registry();
    collectDefaultMetrics({ register: defaults });
    // Gauges named like counters (promtool rejects them); nodejs_active_handles etc. say the same by type.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) defaults.removeSingleMetric(name);
  }
  return defaults;
}

/** Cumulative pressure stall seconds from /proc/pressure/* ("total=" is in µs); absent resources are skipped. */
export function readPressureTotals(dir = '/proc/pressure'): Array<{ resource: string; kind: string; seconds: number }> {
  const out: Array<{ resource: string; kind: string; seconds: number }> = [];
  for (const resource of PSI_RESOURCES) {
    let text: string;
    try { text = fs.readFileSync(`${dir}/${resource}`, 'utf8'); } catch { continue; }
    for (const line of text.split('\n')) {
      const m = /^(some|full) .*\btotal=(\d+)/.exec(line);
      if (m) out.push({ resource, kind: m[1], seconds: Number(m[2]) / 1e6 });
    }
  }
  return out;
}

interface WorkerSeries {
  labels: Record<string, string>;
  startMs: number;
  identity?: Identity;
  last: { rss: number; threads: number; cgUsage: number; cgLimit: number };
  cpuMs: number; minor: number; major: number; dstateNs: number; involuntary: number; gcPauses: number; gcNs: number;
  runq: HistValue;
}

interface ServiceTotals {
  labels: Record<string, string>;
  startMs: number;
  cpuMs: number; minor: number; major: number; dstateNs: number; gcPauses: number; gcNs: number;
  retransmits: number; resetsSent: number; resetsReceived: number; listenDrops: number;
  runq: HistValue;
}

interface ServiceGauges { labels: Record<string, string>; alive: number; rss: number; sockets: Map<string, number>; depth?: number; max: number }

export function createMetrics(agent: Agent, options: MetricsOptions = {}): Metrics {
  const maxWorkers = options.maxWorkerSeries ?? DEFAULT_MAX_WORKER_SERIES;
  const maxServices = options.maxServices ?? DEFAULT_MAX_SERVICES;
  if (!(maxWorkers >= 0) || !(maxServices >= 1)) throw new TypeError('createMetrics: maxWorkerSeries must be >= 0 and maxServices >= 1');
  const metricsPath = options.path ?? '/metrics';
  const bornMs = Date.now();

  const serviceKeys = new Set<string>(); // label sets admitted under the cap
  const services = new Map<string, Service>(); // service id -> service, refreshed from snapshots
  const processes = new Map<string, WorkerSeries>(); // "pid:startTicks" -> accumulators of a live process
  const totals = new Map<string, ServiceTotals>(); // service label key -> counters
  let gauges = new Map<string, ServiceGauges>();
  const events = new Map<string, { family: string; labels: Record<string, string>; n: number }>(); // deaths, incidents, markers
  let omitted = 0;
  let cached: Map<string, Sample[]> | undefined;

  /** The labels of a service, or undefined when it falls past the cap (then: _other). */
  const labelsOfService = (id: string): { labels: Record<string, string>; admitted: boolean } => {
    if (!services.has(id)) for (const s of agent.snapshot().services) services.set(s.id, s);
    const labels = serviceLabels(services.get(id));
    const key = JSON.stringify(labels);
    if (serviceKeys.has(key) || serviceKeys.size < maxServices) {
      serviceKeys.add(key);
      return { labels, admitted: true };
    }
    return { labels: serviceLabels({ name: OTHER_SERVICE, unit: '', cgroup: '' }), admitted: false };
  };
  const keyOf = (labels: Record<string, string>) => JSON.stringify(labels);
  const totalsOf = (labels: Record<string, string>): ServiceTotals => {
    const key = keyOf(labels);
    let t = totals.get(key);
    if (!t) {
      t = { labels, startMs: Date.now(), cpuMs: 0, minor: 0, major: 0, dstateNs: 0, gcPauses: 0, gcNs: 0, retransmits: 0, resetsSent: 0, resetsReceived: 0, listenDrops: 0, runq: emptyHist() };
      totals.set(key, t);
    }
    return t;
  };
  const count = (family: string, labels: Record<string, string>) => {
    cached = undefined;
    const key = family + keyOf(labels);
    const e = events.get(key);
    if (e) e.n++;
    else events.set(key, { family, labels, n: 1 });
  };

  function workerLabels(service: Record<string, string>, id: Identity | undefined, pid: number): Record<string, string> {
    const l: Record<string, string> = { ...service, role: id?.role ?? 'unknown' };
    if (id?.role === 'worker') l.slot = String(id.slot ?? 0);
    if (options.pidLabel || !id) l.pid = String(pid); // without an identity, only the pid tells processes apart
    return l;
  }

  function onTick(delta: Delta): void {
    cached = undefined;
    const snap = agent.snapshot();
    for (const s of snap.services) services.set(s.id, s);
    const identities = new Map<string, Identity>();
    for (const w of snap.workers) if (w.identity) identities.set(`${w.identity.pid}:${w.identity.startTicks}`, w.identity);
    const next: typeof gauges = new Map();
    const gaugesOf = (labels: Record<string, string>, sid?: string) => {
      const key = keyOf(labels);
      let gv = next.get(key);
      if (!gv) next.set(key, (gv = { labels, alive: 0, rss: 0, sockets: new Map(), max: 0 }));
      if (sid && services.get(sid)?.ports?.length) gv.depth ??= 0;
      return gv;
    };
    omitted = 0;
    // Processes absent from this tick died or were retired: their series go first, freeing room under the cap.
    const present = new Set(delta.workers.map((wb) => `${wb.pid}:${wb.startTicks}`));
    for (const key of processes.keys()) if (!present.has(key)) processes.delete(key);
    const claimed = new Set<string>();
    for (const wb of delta.workers) {
      const b = wb.bucket;
      if (!b) continue;
      const key = `${wb.pid}:${wb.startTicks}`;
      const { labels: sl, admitted } = labelsOfService(wb.serviceId);
      const t = totalsOf(sl);
      t.cpuMs += b.cpuMs || 0; t.minor += b.minorFaults || 0; t.major += b.majorFaults || 0; t.dstateNs += b.dstateNs || 0;
      t.gcPauses += b.gcPauses || 0; t.gcNs += b.gcPauseNs || 0;
      const h = histFromSlots(b.runqHist ?? []);
      addHist(t.runq, h);
      gaugesOf(sl, wb.serviceId).rss += b.rssBytes || 0;
      let w = processes.get(key);
      const id = identities.get(key) ?? w?.identity;
      const labels = workerLabels(sl, id, wb.pid);
      const lk = keyOf(labels);
      if (!admitted || claimed.has(lk) || (!w && processes.size >= maxWorkers)) {
        omitted++;
        continue;
      }
      claimed.add(lk);
      if (!w) {
        w = { labels, startMs: Date.now(), last: { rss: 0, threads: 0, cgUsage: 0, cgLimit: 0 }, cpuMs: 0, minor: 0, major: 0, dstateNs: 0, involuntary: 0, gcPauses: 0, gcNs: 0, runq: emptyHist() };
        processes.set(key, w);
      }
      w.identity = id;
      w.labels = labels; // a master found to have workers becomes role="master"
      w.last = { rss: b.rssBytes || 0, threads: b.threads || 0, cgUsage: b.cgroupUsageBytes || 0, cgLimit: b.cgroupLimitBytes || 0 };
      w.cpuMs += b.cpuMs || 0; w.minor += b.minorFaults || 0; w.major += b.majorFaults || 0; w.dstateNs += b.dstateNs || 0;
      w.involuntary += b.involuntarySwitches || 0; w.gcPauses += b.gcPauses || 0; w.gcNs += b.gcPauseNs || 0;
      addHist(w.runq, h);
    }
    for (const sb of delta.services as ServiceBucket[]) {
      const { labels: sl } = labelsOfService(sb.serviceId);
      const gv = gaugesOf(sl, sb.serviceId);
      gv.alive += sb.workersAlive || 0;
      if (gv.depth !== undefined) gv.depth += sb.backlogDepth || 0;
      gv.max += sb.backlogMax || 0;
      for (const [state, n] of Object.entries(sb.socketStates ?? {})) gv.sockets.set(state, (gv.sockets.get(state) ?? 0) + n);
      const t = totalsOf(sl);
      t.retransmits += sb.retransmits || 0; t.resetsSent += sb.resetsSent || 0;
      t.resetsReceived += sb.resetsReceived || 0; t.listenDrops += sb.listenDrops || 0;
    }
    gauges = next;
    for (const m of (delta.markers ?? []) as Marker[]) {
      if (m.serviceId) count('premortem_service_markers_total', { ...labelsOfService(m.serviceId).labels, kind: m.kind });
    }
  }
  const onDeath = (d: Death) => count('premortem_worker_deaths_total',
    { ...labelsOfService(d.identity?.serviceId ?? '').labels, verdict: d.verdict?.kind ?? 'unknown', failure: String(d.verdict?.failure ?? true) });
  const onBundle = (i: IncidentSummary) => count('premortem_incidents_total', { ...labelsOfService(i.serviceId).labels, verdict: i.verdictKind });
  agent.on('tick', onTick);
  agent.on('death', onDeath);
  agent.on('bundle', onBundle);

  function workerSamples(add: (name: string, labels: Record<string, string>, value: number, startMs?: number) => void, hist: (name: string, s: Sample) => void): void {
    for (const w of processes.values()) {
      const l = w.labels;
      if (w.last.rss) add('premortem_worker_rss_bytes', l, w.last.rss);
      if (w.last.threads) add('premortem_worker_threads', l, w.last.threads);
      if (w.last.cgUsage) add('premortem_worker_cgroup_memory_usage_bytes', l, w.last.cgUsage);
      if (w.last.cgLimit) add('premortem_worker_cgroup_memory_limit_bytes', l, w.last.cgLimit);
      if (w.identity) {
        add('premortem_worker_generation', l, w.identity.generation);
        add('premortem_worker_start_time_seconds', l, w.identity.startedMs / 1000);
      }
      add('premortem_worker_cpu_seconds_total', l, w.cpuMs / 1000, w.startMs);
      add('premortem_worker_page_faults_total', { ...l, kind: 'minor' }, w.minor, w.startMs);
      add('premortem_worker_page_faults_total', { ...l, kind: 'major' }, w.major, w.startMs);
      add('premortem_worker_dstate_seconds_total', l, w.dstateNs / 1e9, w.startMs);
      add('premortem_worker_involuntary_switches_total', l, w.involuntary, w.startMs);
      add('premortem_worker_gc_pauses_total', l, w.gcPauses, w.startMs);
      add('premortem_worker_gc_pause_seconds_total', l, w.gcNs / 1e9, w.startMs);
      hist('premortem_worker_runqueue_latency_seconds', { labels: l, value: w.runq.count, hist: w.runq, startMs: w.startMs });
    }
  }

  function serviceSamples(add: (name: string, labels: Record<string, string>, value: number, startMs?: number) => void, hist: (name: string, s: Sample) => void): void {
    for (const gv of gauges.values()) {
      const l = gv.labels;
      add('premortem_service_workers_alive', l, gv.alive);
      add('premortem_service_rss_bytes', l, gv.rss);
      for (const [state, n] of gv.sockets) add('premortem_service_sockets', { ...l, state }, n);
      if (gv.depth !== undefined) add('premortem_service_backlog_depth', l, gv.depth);
      if (gv.max) add('premortem_service_backlog_max', l, gv.max);
    }
    for (const t of totals.values()) {
      const l = t.labels;
      const at = t.startMs;
      add('premortem_service_cpu_seconds_total', l, t.cpuMs / 1000, at);
      add('premortem_service_page_faults_total', { ...l, kind: 'minor' }, t.minor, at);
      add('premortem_service_page_faults_total', { ...l, kind: 'major' }, t.major, at);
      add('premortem_service_dstate_seconds_total', l, t.dstateNs / 1e9, at);
      add('premortem_service_gc_pauses_total', l, t.gcPauses, at);
      add('premortem_service_gc_pause_seconds_total', l, t.gcNs / 1e9, at);
      hist('premortem_service_runqueue_latency_seconds', { labels: l, value: t.runq.count, hist: t.runq, startMs: at });
      add('premortem_service_tcp_retransmits_total', l, t.retransmits, at);
      add('premortem_service_tcp_resets_sent_total', l, t.resetsSent, at);
      add('premortem_service_tcp_resets_received_total', l, t.resetsReceived, at);
      add('premortem_service_listen_drops_total', l, t.listenDrops, at);
    }
    for (const e of events.values()) add(e.family, e.labels, e.n, bornMs);
  }

  function compute(): Map<string, Sample[]> {
    const s = new Map<string, Sample[]>(FAMILIES.map((f) => [f.name, []]));
    const add = (name: string, labels: Record<string, string>, value: number, startMs?: number) => s.get(name)!.push({ labels, value, startMs });
    const hist = (name: string, x: Sample) => s.get(name)!.push(x);
    workerSamples(add, hist);
    serviceSamples(add, hist);
    for (const p of readPressureTotals(options.pressureDir)) add('premortem_host_pressure_seconds_total', { resource: p.resource, kind: p.kind }, p.seconds, bornMs);
    const h = agent.health();
    const since = h.startedMs || bornMs;
    add('premortem_build_info', { version: AGENT_VERSION }, 1);
    for (const [type, n] of Object.entries(h.records.delivered)) add('premortem_agent_records_delivered_total', { type }, n, since);
    for (const [type, n] of Object.entries(h.records.dropped)) add('premortem_agent_records_dropped_total', { type }, n, since);
    add('premortem_agent_tracked_processes', {}, h.trackedProcesses);
    add('premortem_agent_tracked_workers_alive', {}, h.trackedWorkersAlive);
    add('premortem_agent_refused_over_cap_total', {}, h.refusedOverCap, since);
    add('premortem_agent_timeline_bytes', {}, h.memory.timelineBytes);
    for (const [where, n] of Object.entries(h.errors)) add('premortem_agent_errors_total', { where }, n, since);
    for (const f of h.features.slice(0, MAX_PROBE_LABELS)) add('premortem_agent_probe_enabled', { probe: f.name }, f.enabled ? 1 : 0);
    const st = options.store?.health();
    if (st) {
      add('premortem_store_writes_total', {}, st.writes, since);
      add('premortem_store_errors_total', {}, st.errors, since);
      add('premortem_store_evicted_total', {}, st.evicted, since);
      add('premortem_store_bytes', {}, st.bytesUsed);
      add('premortem_store_quota_bytes', {}, st.quotaBytes);
      add('premortem_store_bundles', {}, st.bundles);
    }
    add('premortem_metrics_workers_omitted', {}, omitted);
    return s;
  }

  // One computation per scrape: the registry asks each family in turn, synchronously.
  const current = () => {
    if (!cached) {
      cached = compute();
      setImmediate(() => (cached = undefined));
    }
    return cached;
  };

  const own = new Registry();
  for (const def of FAMILIES) own.registerMetric(collectable(def, () => current().get(def.name)!) as never);
  const registry = Registry.merge([own, defaultRegistry()]);

  return {
    registry,
    path: metricsPath,
    handle(req, res, url) {
      if (url.pathname !== metricsPath) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
        res.end('method not allowed\n');
        return true;
      }
      registry.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType, 'Cache-Control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      }, (e: Error) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`metrics failed: ${e.message}\n`);
      });
      return true;
    },
    families() {
      const cur = current();
      return FAMILIES.map((f) => ({ ...f, samples: cur.get(f.name)! }));
    },
    definitions() {
      return FAMILIES.map((f) => ({ ...f }));
    },
    close() {
      agent.off('tick', onTick);
      agent.off('death', onDeath);
      agent.off('bundle', onBundle);
    },
  };
}

/** A prom-client collectable for one family: the registry formats and escapes what get() returns. */
function collectable(def: FamilyDef, samples: () => Sample[]) {
  const { name, help, type } = def;
  return {
    name, help, type, aggregator: 'sum',
    get: async () => ({
      name, help, type, aggregator: 'sum',
      values: type === 'histogram' ? samples().flatMap((s) => flatten(name, s)) : samples().map((s) => ({ labels: s.labels, value: s.value })),
    }),
  };
}

/** A histogram sample as Prometheus series: cumulative _bucket{le}, _sum, _count. */
function flatten(name: string, s: Sample): Array<{ labels: Record<string, string>; value: number; metricName: string }> {
  const h = s.hist!;
  const out: Array<{ labels: Record<string, string>; value: number; metricName: string }> = [];
  let cum = 0;
  h.bounds.forEach((b, i) => {
    cum += h.counts[i];
    out.push({ labels: { ...s.labels, le: String(b) }, value: cum, metricName: `${name}_bucket` });
  });
  out.push({ labels: { ...s.labels, le: '+Inf' }, value: h.count, metricName: `${name}_bucket` });
  out.push({ labels: s.labels, value: h.sum, metricName: `${name}_sum` });
  out.push({ labels: s.labels, value: h.count, metricName: `${name}_count` });
  return out;
}
