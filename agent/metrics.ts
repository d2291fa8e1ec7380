/**
 * Prometheus `/metrics` (text format 0.0.4, through prom-client's Registry)
 * for fleets: what the agent sees per service and per live worker, the
 * incidents it judged, and its own health. The same metric families feed the
 * OTLP exporter (agent/otlp.ts).
 *
 * Values come from the agent's per-interval 'tick' (counters are accumulated
 * here from the per-interval deltas) and from health() at scrape time. Each
 * family is a prom-client collectable computed at scrape: series of a worker
 * vanish with the worker, and the runqueue histogram is built from the
 * kernel's log2 buckets, which prom-client's Histogram (observe() one value at
 * a time) cannot ingest.
 *
 * Label cardinality (bounded, by design):
 *   service   service name (e.g. "gunicorn app:app :8000"); at most
 *             `maxServices` (default 64) distinct names over the agent's life,
 *             later ones are reported as service="_other". Services of the
 *             same name are summed.
 *   pid,role  per-worker series exist only for LIVE tracked processes, at most
 *             `maxWorkerSeries` (default 256; the agent's own cap is
 *             --max-tracked). A worker's series are removed at the first tick
 *             after it dies or is retired; no series per dead pid remain.
 *             Processes past the cap are still in the service totals and are
 *             counted in premortem_metrics_workers_omitted.
 *   verdict   the 6 verdict kinds.     kind     minor|major.
 *   state     the 12 TCP states.       le       13 histogram bounds.
 *   type      kernel record types (10).   where  agent error sites (a fixed set in agent.ts).
 *   probe     probes and Python interpreters with GC probes (capped at 32).
 * So a host with S services and W live workers exports at most about
 * 60 + S * 60 + W * 24 series.
 */
import type * as http from 'http';
import { Registry } from 'prom-client';
import type { Agent } from './agent';
import type { Bucket, Death, Delta, IncidentSummary, ServiceBucket } from './proto';
import type { BundleStore } from './store';
import { AGENT_VERSION } from './agent';

/** Default bound on live workers with their own series. */
export const DEFAULT_MAX_WORKER_SERIES = 256;
/** Default bound on distinct service label values. */
export const DEFAULT_MAX_SERVICES = 64;
/** Bound on probe label values. */
const MAX_PROBE_LABELS = 32;
/** The label value of services past the cap. */
export const OTHER_SERVICE = '_other';
/** Kernel log2 slots (PM_HIST_SLOTS): slot 0 < 1 µs, slot i in [2^(i-1), 2^i) µs. */
const HIST_SLOTS = 32;
/**
 * Histogram bounds: every other log2 slot edge (x4 steps, 1 µs .. 4.2 s), 13
 * buckets with +Inf; `le` = the slot's upper edge in seconds.
 */
const LE_SLOTS = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22];
const LE_LABELS = LE_SLOTS.map((i) => String(2 ** i / 1e6));

export type FamilyType = 'gauge' | 'counter' | 'histogram';

export interface Sample {
  labels: Record<string, string>;
  value: number;
  /** For histograms: '_bucket' (with labels.le), '_sum' or '_count'. */
  suffix?: '_bucket' | '_sum' | '_count';
}

export interface MetricFamily {
  name: string;
  help: string;
  type: FamilyType;
  /** Unit for OTLP (UCUM): 'By', 's', '1'. */
  unit: string;
  samples: Sample[];
}

export interface MetricsOptions {
  maxWorkerSeries?: number;
  maxServices?: number;
  /** Store whose health is exported (premortem_store_*). */
  store?: BundleStore;
  /** URL path served by handle(); default /metrics. */
  path?: string;
}

export interface Metrics {
  readonly registry: Registry;
  /** For the server's extraRoutes: answers GET /metrics, returns false for anything else. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean;
  /** Every family with its current samples (what a scrape returns). */
  families(): MetricFamily[];
  /** The family definitions (names, types, units) without samples. */
  definitions(): Array<Omit<MetricFamily, 'samples'>>;
  /** Stops listening to the agent. */
  close(): void;
}

interface Hist { slots: number[]; count: number; sumSeconds: number }

interface WorkerSeries {
  service: string; pid: string; role: string;
  last: Bucket;
  cpuMs: number; minor: number; major: number; dstateNs: number; involuntary: number; gcPauses: number; gcNs: number;
  runq: Hist;
}

interface ServiceTotals {
  cpuMs: number; minor: number; major: number; dstateNs: number; gcPauses: number; gcNs: number;
  retransmits: number; resetsSent: number; resetsReceived: number; listenDrops: number;
  runq: Hist;
}

const newHist = (): Hist => ({ slots: new Array<number>(HIST_SLOTS).fill(0), count: 0, sumSeconds: 0 });
/** Midpoint of a slot in seconds: the kernel keeps counts per slot, not the waits themselves. */
const slotMidSeconds = (i: number) => (i === 0 ? 0.5 : 1.5 * 2 ** (i - 1)) / 1e6;

function addHist(h: Hist, slots: number[]): void {
  for (let i = 0; i < HIST_SLOTS && i < slots.length; i++) {
    const n = slots[i] || 0;
    if (!n) continue;
    h.slots[i] += n;
    h.count += n;
    h.sumSeconds += n * slotMidSeconds(i);
  }
}

function histSamples(h: Hist, labels: Record<string, string>): Sample[] {
  const out: Sample[] = [];
  let cum = 0, next = 0;
  for (let k = 0; k < LE_SLOTS.length; k++) {
    while (next <= LE_SLOTS[k]) cum += h.slots[next++];
    out.push({ labels: { ...labels, le: LE_LABELS[k] }, value: cum, suffix: '_bucket' });
  }
  out.push({ labels: { ...labels, le: '+Inf' }, value: h.count, suffix: '_bucket' });
  out.push({ labels, value: h.sumSeconds, suffix: '_sum' });
  out.push({ labels, value: h.count, suffix: '_count' });
  return out;
}

/** name, type, unit, help: the one list of families (order = exposition order). */
const DEFS: Array<[string, FamilyType, string, string]> = [
  // per worker (live only)
  ['premortem_worker_rss_bytes', 'gauge', 'By', 'Resident set size of a live tracked process at the end of the last interval.'],
  ['premortem_worker_threads', 'gauge', '1', 'Threads of a live tracked process.'],
  ['premortem_worker_cgroup_memory_usage_bytes', 'gauge', 'By', 'Usage of the memory cgroup of a live tracked process (0 when unknown).'],
  ['premortem_worker_cgroup_memory_limit_bytes', 'gauge', 'By', 'Limit of the memory cgroup of a live tracked process (absent when unlimited).'],
  ['premortem_worker_cpu_seconds_total', 'counter', 's', 'CPU time of a live tracked process since premortem began tracking it.'],
  ['premortem_worker_page_faults_total', 'counter', '1', 'Page faults of a live tracked process, by kind (minor|major).'],
  ['premortem_worker_dstate_seconds_total', 'counter', 's', 'Time a live tracked process spent in uninterruptible sleep (D state).'],
  ['premortem_worker_involuntary_switches_total', 'counter', '1', 'Involuntary context switches (preemptions) of a live tracked process.'],
  ['premortem_worker_gc_pauses_total', 'counter', '1', 'Python GC collections of a live tracked process (USDT gc__start/gc__done).'],
  ['premortem_worker_gc_pause_seconds_total', 'counter', 's', 'Time a live tracked process spent paused in Python GC.'],
  ['premortem_worker_runqueue_latency_seconds', 'histogram', 's', 'Time the threads of a live tracked process waited runnable for a CPU (kernel log2 histogram; _sum estimated from bucket midpoints).'],
  // per service
  ['premortem_service_workers_alive', 'gauge', '1', 'Live workers of the service.'],
  ['premortem_service_rss_bytes', 'gauge', 'By', 'Sum of the RSS of the service\'s live tracked processes.'],
  ['premortem_service_sockets', 'gauge', '1', 'TCP sockets on the service\'s ports, by state.'],
  ['premortem_service_backlog_depth', 'gauge', '1', 'Accept queue depth of the service\'s listening sockets.'],
  ['premortem_service_backlog_max', 'gauge', '1', 'Accept queue limit (listen backlog) of the service\'s listening sockets.'],
  ['premortem_service_cpu_seconds_total', 'counter', 's', 'CPU time of the service\'s tracked processes.'],
  ['premortem_service_page_faults_total', 'counter', '1', 'Page faults of the service\'s tracked processes, by kind.'],
  ['premortem_service_dstate_seconds_total', 'counter', 's', 'D-state time of the service\'s tracked processes.'],
  ['premortem_service_gc_pauses_total', 'counter', '1', 'Python GC collections in the service\'s tracked processes.'],
  ['premortem_service_gc_pause_seconds_total', 'counter', 's', 'Time the service\'s tracked processes spent paused in Python GC.'],
  ['premortem_service_runqueue_latency_seconds', 'histogram', 's', 'Runqueue waits of the service\'s tracked processes, dead ones included.'],
  ['premortem_service_tcp_retransmits_total', 'counter', '1', 'TCP retransmits on the service\'s ports.'],
  ['premortem_service_tcp_resets_sent_total', 'counter', '1', 'TCP resets sent on the service\'s ports.'],
  ['premortem_service_tcp_resets_received_total', 'counter', '1', 'TCP resets received on the service\'s ports.'],
  ['premortem_service_listen_drops_total', 'counter', '1', 'Connections dropped because the service\'s accept queue was full.'],
  ['premortem_worker_deaths_total', 'counter', '1', 'Worker deaths judged by the agent, by service and verdict (planned exits included).'],
  ['premortem_incidents_total', 'counter', '1', 'Post-mortem bundles written, by service and verdict.'],
  // host
  ['premortem_host_pressure_avg10', 'gauge', '1', 'Pressure stall information, 10 s average in percent, by resource and kind.'],
  ['premortem_host_load1', 'gauge', '1', 'Host 1-minute load average.'],
  ['premortem_host_memory_available_bytes', 'gauge', 'By', 'Host MemAvailable.'],
  // the agent itself
  ['premortem_agent_info', 'gauge', '1', 'The agent\'s version (value 1).'],
  ['premortem_agent_start_time_seconds', 'gauge', 's', 'Unix time the agent started.'],
  ['premortem_agent_records_delivered_total', 'counter', '1', 'Kernel records delivered to the agent, by record type.'],
  ['premortem_agent_records_dropped_total', 'counter', '1', 'Kernel records lost (ring buffer full), by record type.'],
  ['premortem_agent_tracked_processes', 'gauge', '1', 'Processes the agent keeps timelines of (recently dead included).'],
  ['premortem_agent_tracked_workers_alive', 'gauge', '1', 'Live processes the kernel filter tracks.'],
  ['premortem_agent_refused_over_cap_total', 'counter', '1', 'Processes not tracked because --max-tracked was reached.'],
  ['premortem_agent_resident_memory_bytes', 'gauge', 'By', 'RSS of the agent process.'],
  ['premortem_agent_heap_used_bytes', 'gauge', 'By', 'V8 heap used by the agent.'],
  ['premortem_agent_timeline_bytes', 'gauge', 'By', 'Memory held by timelines.'],
  ['premortem_agent_cpu_seconds_total', 'counter', 's', 'CPU time of the agent process, by mode (user|system).'],
  ['premortem_agent_errors_total', 'counter', '1', 'Errors the agent counted and survived, by where they happened.'],
  ['premortem_agent_probe_enabled', 'gauge', '1', 'Whether a probe (or a Python interpreter\'s GC probes) is on (1) or off (0).'],
  ['premortem_store_writes_total', 'counter', '1', 'Post-mortem bundles written to disk.'],
  ['premortem_store_errors_total', 'counter', '1', 'Post-mortem store errors (write failures, full disk...).'],
  ['premortem_store_evicted_total', 'counter', '1', 'Bundles deleted to respect the quota or retention.'],
  ['premortem_store_bytes', 'gauge', 'By', 'Disk used by post-mortem bundles.'],
  ['premortem_store_quota_bytes', 'gauge', 'By', 'Disk quota of the post-mortem store.'],
  ['premortem_store_bundles', 'gauge', '1', 'Post-mortem bundles on disk.'],
  ['premortem_metrics_workers_omitted', 'gauge', '1', 'Live workers without per-worker series because maxWorkerSeries was reached.'],
];

export function createMetrics(agent: Agent, options: MetricsOptions = {}): Metrics {
  const maxWorkers = options.maxWorkerSeries ?? DEFAULT_MAX_WORKER_SERIES;
  const maxServices = options.maxServices ?? DEFAULT_MAX_SERVICES;
  if (!(maxWorkers >= 0) || !(maxServices >= 1)) throw new TypeError('createMetrics: maxWorkerSeries must be >= 0 and maxServices >= 1');
  const metricsPath = options.path ?? '/metrics';

  const serviceLabels = new Set<string>();
  const serviceNames = new Map<string, string>(); // service id -> name
  const workers = new Map<string, WorkerSeries>(); // "pid:startTicks" -> live worker series
  const totals = new Map<string, ServiceTotals>(); // service label -> counters
  let serviceGauges = new Map<string, { alive: number; rss: number; sockets: Map<string, number>; depth: number; max: number }>();
  let host: Delta['host'];
  let omitted = 0;
  const deaths = new Map<string, number>(); // "service\0verdict"
  const incidents = new Map<string, number>();

  const labelOf = (name: string): string => {
    if (serviceLabels.has(name)) return name;
    if (serviceLabels.size < maxServices) {
      serviceLabels.add(name);
      return name;
    }
    return OTHER_SERVICE;
  };
  const serviceLabelById = (id: string): string => {
    let name = serviceNames.get(id);
    if (name === undefined) {
      for (const s of agent.snapshot().services) serviceNames.set(s.id, s.name);
      name = serviceNames.get(id) ?? (id ? id : 'unknown');
    }
    return labelOf(name);
  };
  const totalsOf = (label: string): ServiceTotals => {
    let t = totals.get(label);
    if (!t) totals.set(label, (t = { cpuMs: 0, minor: 0, major: 0, dstateNs: 0, gcPauses: 0, gcNs: 0, retransmits: 0, resetsSent: 0, resetsReceived: 0, listenDrops: 0, runq: newHist() }));
    return t;
  };

  let cached: Map<string, Sample[]> | undefined;
  const onTick = (delta: Delta) => {
    cached = undefined;
    const snap = agent.snapshot();
    const roles = new Map<string, string>();
    for (const s of snap.services) serviceNames.set(s.id, s.name);
    for (const w of snap.workers) if (w.identity) roles.set(`${w.identity.pid}:${w.identity.startTicks}`, w.identity.role);
    const gauges: typeof serviceGauges = new Map();
    const gaugesOf = (label: string) => {
      let g = gauges.get(label);
      if (!g) gauges.set(label, (g = { alive: 0, rss: 0, sockets: new Map(), depth: 0, max: 0 }));
      return g;
    };
    omitted = 0;
    // Workers absent from this tick died or were retired: their series go first, freeing room under the cap.
    const present = new Set(delta.workers.map((wb) => `${wb.pid}:${wb.startTicks}`));
    for (const key of workers.keys()) if (!present.has(key)) workers.delete(key);
    for (const wb of delta.workers) {
      const b = wb.bucket;
      if (!b) continue;
      const key = `${wb.pid}:${wb.startTicks}`;
      const label = serviceLabelById(wb.serviceId);
      const t = totalsOf(label);
      t.cpuMs += b.cpuMs || 0; t.minor += b.minorFaults || 0; t.major += b.majorFaults || 0; t.dstateNs += b.dstateNs || 0;
      t.gcPauses += b.gcPauses || 0; t.gcNs += b.gcPauseNs || 0;
      addHist(t.runq, b.runqHist ?? []);
      gaugesOf(label).rss += b.rssBytes || 0;
      let w = workers.get(key);
      if (!w) {
        if (workers.size >= maxWorkers) {
          omitted++;
          continue;
        }
        w = { service: label, pid: String(wb.pid), role: roles.get(key) ?? 'unknown', last: b, cpuMs: 0, minor: 0, major: 0, dstateNs: 0, involuntary: 0, gcPauses: 0, gcNs: 0, runq: newHist() };
        workers.set(key, w);
      }
      w.role = roles.get(key) ?? w.role;
      w.last = b;
      w.cpuMs += b.cpuMs || 0; w.minor += b.minorFaults || 0; w.major += b.majorFaults || 0; w.dstateNs += b.dstateNs || 0;
      w.involuntary += b.involuntarySwitches || 0; w.gcPauses += b.gcPauses || 0; w.gcNs += b.gcPauseNs || 0;
      addHist(w.runq, b.runqHist ?? []);
    }
    for (const sb of delta.services as ServiceBucket[]) {
      const label = serviceLabelById(sb.serviceId);
      const g = gaugesOf(label);
      g.alive += sb.workersAlive || 0;
      g.depth += sb.backlogDepth || 0;
      g.max += sb.backlogMax || 0;
      for (const [state, n] of Object.entries(sb.socketStates ?? {})) g.sockets.set(state, (g.sockets.get(state) ?? 0) + n);
      const t = totalsOf(label);
      t.retransmits += sb.retransmits || 0; t.resetsSent += sb.resetsSent || 0;
      t.resetsReceived += sb.resetsReceived || 0; t.listenDrops += sb.listenDrops || 0;
    }
    serviceGauges = gauges;
    host = delta.host;
  };
  const onDeath = (d: Death) => {
    cached = undefined;
    const key = `${serviceLabelById(d.identity?.serviceId ?? '')}\0${d.verdict?.kind ?? 'unknown'}`;
    deaths.set(key, (deaths.get(key) ?? 0) + 1);
  };
  const onBundle = (i: IncidentSummary) => {
    cached = undefined;
    const key = `${labelOf(i.service || 'unknown')}\0${i.verdictKind}`;
    incidents.set(key, (incidents.get(key) ?? 0) + 1);
  };
  agent.on('tick', onTick);
  agent.on('death', onDeath);
  agent.on('bundle', onBundle);

  function compute(): Map<string, Sample[]> {
    const s = new Map<string, Sample[]>(DEFS.map(([name]) => [name, []]));
    const add = (name: string, labels: Record<string, string>, value: number) => s.get(name)!.push({ labels, value });
    for (const w of workers.values()) {
      const l = { service: w.service, pid: w.pid, role: w.role };
      add('premortem_worker_rss_bytes', l, w.last.rssBytes || 0);
      add('premortem_worker_threads', l, w.last.threads || 0);
      add('premortem_worker_cgroup_memory_usage_bytes', l, w.last.cgroupUsageBytes || 0);
      if (w.last.cgroupLimitBytes) add('premortem_worker_cgroup_memory_limit_bytes', l, w.last.cgroupLimitBytes);
      add('premortem_worker_cpu_seconds_total', l, w.cpuMs / 1000);
      add('premortem_worker_page_faults_total', { ...l, kind: 'minor' }, w.minor);
      add('premortem_worker_page_faults_total', { ...l, kind: 'major' }, w.major);
      add('premortem_worker_dstate_seconds_total', l, w.dstateNs / 1e9);
      add('premortem_worker_involuntary_switches_total', l, w.involuntary);
      add('premortem_worker_gc_pauses_total', l, w.gcPauses);
      add('premortem_worker_gc_pause_seconds_total', l, w.gcNs / 1e9);
      s.get('premortem_worker_runqueue_latency_seconds')!.push(...histSamples(w.runq, l));
    }
    for (const [service, g] of serviceGauges) {
      const l = { service };
      add('premortem_service_workers_alive', l, g.alive);
      add('premortem_service_rss_bytes', l, g.rss);
      for (const [state, n] of g.sockets) add('premortem_service_sockets', { service, state }, n);
      add('premortem_service_backlog_depth', l, g.depth);
      add('premortem_service_backlog_max', l, g.max);
    }
    for (const [service, t] of totals) {
      const l = { service };
      add('premortem_service_cpu_seconds_total', l, t.cpuMs / 1000);
      add('premortem_service_page_faults_total', { service, kind: 'minor' }, t.minor);
      add('premortem_service_page_faults_total', { service, kind: 'major' }, t.major);
      add('premortem_service_dstate_seconds_total', l, t.dstateNs / 1e9);
      add('premortem_service_gc_pauses_total', l, t.gcPauses);
      add('premortem_service_gc_pause_seconds_total', l, t.gcNs / 1e9);
      s.get('premortem_service_runqueue_latency_seconds')!.push(...histSamples(t.runq, l));
      add('premortem_service_tcp_retransmits_total', l, t.retransmits);
      add('premortem_service_tcp_resets_sent_total', l, t.resetsSent);
      add('premortem_service_tcp_resets_received_total', l, t.resetsReceived);
      add('premortem_service_listen_drops_total', l, t.listenDrops);
    }
    for (const [key, n] of deaths) {
      const [service, verdict] = key.split('\0');
      add('premortem_worker_deaths_total', { service, verdict }, n);
    }
    for (const [key, n] of incidents) {
      const [service, verdict] = key.split('\0');
      add('premortem_incidents_total', { service, verdict }, n);
    }
    if (host) {
      const p = 'premortem_host_pressure_avg10';
      add(p, { resource: 'memory', kind: 'some' }, host.psiMemSomeAvg10);
      add(p, { resource: 'memory', kind: 'full' }, host.psiMemFullAvg10);
      add(p, { resource: 'cpu', kind: 'some' }, host.psiCpuSomeAvg10);
      add(p, { resource: 'io', kind: 'some' }, host.psiIoSomeAvg10);
      add(p, { resource: 'io', kind: 'full' }, host.psiIoFullAvg10);
      add('premortem_host_load1', {}, host.load1);
      add('premortem_host_memory_available_bytes', {}, host.memAvailableBytes);
    }
    const h = agent.health();
    add('premortem_agent_info', { version: AGENT_VERSION }, 1);
    add('premortem_agent_start_time_seconds', {}, h.startedMs / 1000);
    for (const [type, n] of Object.entries(h.records.delivered)) add('premortem_agent_records_delivered_total', { type }, n);
    for (const [type, n] of Object.entries(h.records.dropped)) add('premortem_agent_records_dropped_total', { type }, n);
    add('premortem_agent_tracked_processes', {}, h.trackedProcesses);
    add('premortem_agent_tracked_workers_alive', {}, h.trackedWorkersAlive);
    add('premortem_agent_refused_over_cap_total', {}, h.refusedOverCap);
    add('premortem_agent_resident_memory_bytes', {}, h.memory.rssBytes);
    add('premortem_agent_heap_used_bytes', {}, h.memory.heapUsedBytes);
    add('premortem_agent_timeline_bytes', {}, h.memory.timelineBytes);
    add('premortem_agent_cpu_seconds_total', { mode: 'user' }, h.cpu.userMs / 1000);
    add('premortem_agent_cpu_seconds_total', { mode: 'system' }, h.cpu.systemMs / 1000);
    for (const [where, n] of Object.entries(h.errors)) add('premortem_agent_errors_total', { where }, n);
    for (const f of h.features.slice(0, MAX_PROBE_LABELS)) add('premortem_agent_probe_enabled', { probe: f.name }, f.enabled ? 1 : 0);
    const st = options.store?.health();
    if (st) {
      add('premortem_store_writes_total', {}, st.writes);
      add('premortem_store_errors_total', {}, st.errors);
      add('premortem_store_evicted_total', {}, st.evicted);
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

  const registry = new Registry();
  for (const [name, type, , help] of DEFS) {
    // A prom-client collectable: the registry formats and escapes what get() returns.
    const collectable = {
      name, help, type, aggregator: 'sum',
      get: async () => ({
        name, help, type, aggregator: 'sum',
        values: current().get(name)!.map((x) => ({ labels: x.labels, value: x.value, ...(x.suffix ? { metricName: name + x.suffix } : {}) })),
      }),
    };
    registry.registerMetric(collectable as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  return {
    registry,
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
      return DEFS.map(([name, type, unit, help]) => ({ name, type, unit, help, samples: cur.get(name)! }));
    },
    definitions() {
      return DEFS.map(([name, type, unit, help]) => ({ name, type, unit, help }));
    },
    close() {
      agent.off('tick', onTick);
      agent.off('death', onDeath);
      agent.off('bundle', onBundle);
    },
  };
}
