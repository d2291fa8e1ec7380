/**
 * The metric families premortem exports (Prometheus /metrics and OTLP), one
 * table: name, type, unit, help, in exposition order. Names follow the
 * Prometheus conventions: base units (seconds, bytes), `_total` counters,
 * ratios computed in queries rather than exported, unknown values absent
 * rather than 0. Host figures node_exporter already has (load, MemAvailable)
 * and the agent's own process figures (process_*, nodejs_* from prom-client's
 * default collectors) are not repeated here.
 *
 * Labels:
 *   service, unit, cgroup   which service (serviceLabels(): its name, systemd unit, cgroup path)
 *   container, container_id where it runs: the container's name (its pod spec name in Kubernetes) and id;
 *   pod, pod_uid, namespace  the Kubernetes pod; netns: its network namespace inode when not the agent's.
 *                           present only when known (a host service has none); fixed per service (no extra series)
 *   role                    worker | master | standalone
 *   slot                    a worker's place in its pool (0, 1, ...): stable across recycling
 *   pid                     only with --metrics-pid-label (one series per process: churns)
 *   verdict, failure        the 6 verdict kinds; "true" unless a planned exit
 *   kind, state, type, where, probe, resource: small fixed sets (see each family)
 */
export type FamilyType = 'gauge' | 'counter' | 'histogram';

export interface FamilyDef {
  name: string;
  type: FamilyType;
  /** UCUM unit for OTLP: 'By', 's', '1'. */
  unit: string;
  help: string;
}

/** A histogram's value: non-cumulative counts per bucket (bounds.length + 1, the last is +Inf). */
export interface HistValue {
  bounds: readonly number[];
  counts: number[];
  sum: number;
  count: number;
}

export interface Sample {
  labels: Record<string, string>;
  /** Gauges and counters; for histograms the count. */
  value: number;
  /** Histograms only. */
  hist?: HistValue;
  /** Counters and histograms: Unix ms when this series began counting (OTLP start time). */
  startMs?: number;
}

export interface MetricFamily extends FamilyDef {
  samples: Sample[];
}

/** Kernel log2 slots (PM_HIST_SLOTS): slot 0 < 1 µs, slot i in [2^(i-1), 2^i) µs. */
export const HIST_SLOTS = 32;
/** Histogram buckets: every other slot edge (x4 steps, 1 µs .. 4.2 s), in seconds; +Inf follows. */
export const LE_SLOTS = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22];
export const RUNQ_BOUNDS_SECONDS: readonly number[] = LE_SLOTS.map((i) => 2 ** i / 1e6);

const g = (name: string, unit: string, help: string): FamilyDef => ({ name, type: 'gauge', unit, help });
const c = (name: string, unit: string, help: string): FamilyDef => ({ name, type: 'counter', unit, help });
const h = (name: string, unit: string, help: string): FamilyDef => ({ name, type: 'histogram', unit, help });

export const FAMILIES: FamilyDef[] = [
  // per live worker
  g('premortem_worker_rss_bytes', 'By', 'Resident set size of a live tracked process at the end of the last interval.'),
  g('premortem_worker_threads', '1', 'Threads of a live tracked process.'),
  g('premortem_worker_cgroup_memory_usage_bytes', 'By', 'Usage of the memory cgroup of a live tracked process (absent when unknown).'),
  g('premortem_worker_cgroup_memory_limit_bytes', 'By', 'Limit of the memory cgroup of a live tracked process (absent when unlimited).'),
  g('premortem_worker_generation', '1', 'How many times the worker\'s slot was refilled (0: the first worker of that slot).'),
  g('premortem_worker_start_time_seconds', 's', 'Unix time the process in this series started (changes when its slot is refilled).'),
  c('premortem_worker_cpu_seconds_total', 's', 'CPU time of a live tracked process since premortem began tracking it.'),
  c('premortem_worker_page_faults_total', '1', 'Page faults of a live tracked process, by kind (minor|major).'),
  c('premortem_worker_dstate_seconds_total', 's', 'Time a live tracked process spent in uninterruptible sleep (D state).'),
  c('premortem_worker_involuntary_switches_total', '1', 'Involuntary context switches (preemptions) of a live tracked process.'),
  c('premortem_worker_gc_pauses_total', '1', 'Python GC collections of a live tracked process (USDT gc__start/gc__done).'),
  c('premortem_worker_gc_pause_seconds_total', 's', 'Time a live tracked process spent paused in Python GC.'),
  h('premortem_worker_runqueue_latency_seconds', 's', 'Time the threads of a live tracked process waited runnable for a CPU (kernel log2 histogram; _sum estimated from bucket midpoints).'),
  // per service
  g('premortem_service_workers_alive', '1', 'Live workers of the service.'),
  g('premortem_service_rss_bytes', 'By', 'Sum of the RSS of the service\'s live tracked processes.'),
  g('premortem_service_sockets', '1', 'TCP sockets on the service\'s ports, by state.'),
  g('premortem_service_backlog_depth', '1', 'Accept queue depth of the service\'s listening sockets (absent without a listening port).'),
  g('premortem_service_backlog_max', '1', 'Accept queue limit of the service\'s listening sockets (absent until the kernel reported it).'),
  c('premortem_service_cpu_seconds_total', 's', 'CPU time of the service\'s tracked processes.'),
  c('premortem_service_page_faults_total', '1', 'Page faults of the service\'s tracked processes, by kind.'),
  c('premortem_service_dstate_seconds_total', 's', 'D-state time of the service\'s tracked processes.'),
  c('premortem_service_gc_pauses_total', '1', 'Python GC collections in the service\'s tracked processes.'),
  c('premortem_service_gc_pause_seconds_total', 's', 'Time the service\'s tracked processes spent paused in Python GC.'),
  h('premortem_service_runqueue_latency_seconds', 's', 'Runqueue waits of the service\'s tracked processes, dead ones included.'),
  c('premortem_service_tcp_retransmits_total', '1', 'TCP retransmits on the service\'s ports.'),
  c('premortem_service_tcp_resets_sent_total', '1', 'TCP resets sent on the service\'s ports.'),
  c('premortem_service_tcp_resets_received_total', '1', 'TCP resets received on the service\'s ports.'),
  c('premortem_service_listen_drops_total', '1', 'Connections dropped because the service\'s accept queue was full.'),
  c('premortem_service_markers_total', '1', 'Pre-failure markers the agent raised for the service, by kind (memory-near-limit, restart-storm, backlog-near-full...).'),
  c('premortem_worker_deaths_total', '1', 'Worker deaths judged by the agent, by verdict and failure (failure="false": planned exits).'),
  c('premortem_incidents_total', '1', 'Post-mortem bundles written, by verdict.'),
  // host (what node_exporter does not already say in the agent's terms)
  c('premortem_host_pressure_seconds_total', 's', 'Pressure stall time of the host (/proc/pressure), by resource (cpu|memory|io) and kind (some|full).'),
  // the agent itself (its process: process_*, nodejs_*)
  g('premortem_build_info', '1', 'The agent\'s version (value 1).'),
  c('premortem_agent_records_delivered_total', '1', 'Kernel records delivered to the agent, by record type.'),
  c('premortem_agent_records_dropped_total', '1', 'Kernel records lost (ring buffer full), by record type.'),
  g('premortem_agent_tracked_processes', '1', 'Processes the agent keeps timelines of (recently dead included).'),
  g('premortem_agent_tracked_workers_alive', '1', 'Live processes the kernel filter tracks.'),
  c('premortem_agent_refused_over_cap_total', '1', 'Processes not tracked because --max-tracked was reached.'),
  g('premortem_agent_timeline_bytes', 'By', 'Memory held by timelines.'),
  c('premortem_agent_errors_total', '1', 'Errors the agent counted and survived, by where they happened.'),
  g('premortem_agent_probe_enabled', '1', 'Whether a probe (or a Python interpreter\'s GC probes) is on (1) or off (0).'),
  c('premortem_store_writes_total', '1', 'Post-mortem bundles written to disk.'),
  c('premortem_store_errors_total', '1', 'Post-mortem store errors (write failures, full disk...).'),
  c('premortem_store_evicted_total', '1', 'Bundles deleted to respect the quota or retention.'),
  g('premortem_store_bytes', 'By', 'Disk used by post-mortem bundles.'),
  g('premortem_store_quota_bytes', 'By', 'Disk quota of the post-mortem store.'),
  g('premortem_store_bundles', '1', 'Post-mortem bundles on disk.'),
  g('premortem_metrics_workers_omitted', '1', 'Live workers without their own series (past maxWorkerSeries, in a service past maxServices, or sharing a label set).'),
];

/** A histogram value from kernel log2 slot counts. */
export function histFromSlots(slots: readonly number[], bounds: readonly number[] = RUNQ_BOUNDS_SECONDS): HistValue {
  const counts = new Array<number>(bounds.length + 1).fill(0);
  let sum = 0, count = 0, k = 0;
  for (let i = 0; i < HIST_SLOTS && i < slots.length; i++) {
    const n = slots[i] || 0;
    if (!n) continue;
    const upper = 2 ** i / 1e6; // the slot's upper edge
    while (k < bounds.length && upper > bounds[k] * (1 + 1e-9)) k++;
    counts[k] += n;
    count += n;
    sum += n * ((i === 0 ? 0.5 : 1.5 * 2 ** (i - 1)) / 1e6); // slot midpoint: the kernel keeps counts, not waits
  }
  return { bounds, counts, sum, count };
}

/** Adds b into a (same bounds). */
export function addHist(a: HistValue, b: HistValue): void {
  for (let i = 0; i < a.counts.length; i++) a.counts[i] += b.counts[i] || 0;
  a.sum += b.sum;
  a.count += b.count;
}

export const emptyHist = (bounds: readonly number[] = RUNQ_BOUNDS_SECONDS): HistValue =>
  ({ bounds, counts: new Array<number>(bounds.length + 1).fill(0), sum: 0, count: 0 });
