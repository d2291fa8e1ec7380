/**
 * Agent options: defaults merged once, every limit named and documented here,
 * invalid combinations rejected with the exact reason.
 */
import * as net from 'net';

export interface Thresholds {
  /** runqueue p99 above this (µs) in an interval raises runq-p99-high. */
  runqP99Us: number;
  /** memory-near-limit when usage passes this share of the cgroup/host limit. */
  memoryNearLimitRatio: number;
  /** ...or when the RSS slope predicts the limit within this many seconds. */
  timeToLimitS: number;
  /** backlog-near-full when the accept queue passes this share of its maximum. */
  backlogNearFullRatio: number;
  /** close-wait-growing when CLOSE_WAIT sockets of a service grow by this many over closeWaitWindowS. */
  closeWaitGrowth: number;
  closeWaitWindowS: number;
  /** gc-pause marker for a single GC pause above this (ms). */
  gcPauseMs: number;
  /** dstate-stall when a worker spends more than this share of an interval in D state. */
  dstateRatio: number;
  /** cpu-throttled when the service's cgroup was throttled at all in an interval. */
  cpuThrottledUs: number;
  /** restart-storm when a service loses this many workers within restartStormWindowS. */
  restartStormDeaths: number;
  restartStormWindowS: number;
  /** A marker of one kind is not repeated for the same subject within this time. */
  markerCooldownS: number;
}

export interface AgentOptions {
  /** Bucket length of every timeline (ms). */
  intervalMs: number;
  /** How much history each timeline keeps (ms): the ring holds windowMs / intervalMs buckets. */
  windowMs: number;
  /** How much history a post-mortem freezes (ms). */
  bundleWindowMs: number;
  /** Cap on tracked processes (workers + masters); past it new ones are refused with a warning. */
  maxTrackedProcesses: number;
  /** Markers kept per timeline (ring). */
  maxMarkersPerWorker: number;
  /** Rescan /proc for new services this often (ms); forks of tracked masters are seen at once. */
  discoveryIntervalMs: number;
  /** Explicit selection (any of them disables auto-discovery unless autoDiscover is set). */
  pids: number[];
  match?: RegExp;
  cgroup?: string;
  exclude?: RegExp;
  autoDiscover: boolean;
  /** Post-mortem store. */
  dataDir: string;
  quotaBytes: number;
  maxBundles: number;
  retentionDays: number;
  /** Write a bundle for planned exits (recycling, shutdown) too. */
  bundleCleanExits: boolean;
  /** HTTP/WebSocket server; port 0 = ephemeral, null = no server. */
  host: string;
  port: number | null;
  token?: string;
  /** Kernel side. */
  ringBufferBytes: number;
  slowWaitUs: number;
  slowBioUs: number;
  gcRecordUs: number;
  probes?: string[];
  disablePrograms: string[];
  /** How long after an exit the agent waits for trailing records before judging (ms). */
  deathSettleMs: number;
  /** Capture the HTTP requests workers have in flight (the requests probe); false: --no-requests. */
  requests: boolean;
  /** Keep the query string of captured request lines (dropped in the kernel by default). */
  requestQuery: boolean;
  /** Python stacks of tracked workers: each is sampled this often (ms); 0 turns stack sampling off. */
  stackIntervalMs: number;
  /** ...and this often for stackBurstMs after a marker on it or a SIGABRT/SIGTERM from its master (ms). */
  stackBurstIntervalMs: number;
  stackBurstMs: number;
  /** Distinct stacks (with frames) kept per worker and frozen into its post-mortem. */
  maxStacksPerWorker: number;
  thresholds: Thresholds;
}

/**
 * Node flags the tracer process is started with (deploy/premortem.service, deploy/Dockerfile,
 * `npm start`, the bench): a 4 MiB young generation. Node 20 lets each semi-space grow to
 * 16 MiB under the agent's per-tick allocation; capped, RSS at 256 workers fell by ~30 MiB
 * (docs/BENCHMARKS.md, footprint). The server process sets its own (agent/server/process.ts).
 */
export const TRACER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

export const DEFAULT_THRESHOLDS: Thresholds = {
  runqP99Us: 50_000,
  memoryNearLimitRatio: 0.9,
  timeToLimitS: 60,
  backlogNearFullRatio: 0.8,
  closeWaitGrowth: 10,
  closeWaitWindowS: 10,
  gcPauseMs: 100,
  dstateRatio: 0.2,
  cpuThrottledUs: 1,
  restartStormDeaths: 5,
  restartStormWindowS: 60,
  markerCooldownS: 10,
};

export const DEFAULTS: AgentOptions = {
  intervalMs: 1000,
  windowMs: 10 * 60_000,
  bundleWindowMs: 5 * 60_000,
  maxTrackedProcesses: 512,
  maxMarkersPerWorker: 512,
  discoveryIntervalMs: 2000,
  pids: [],
  autoDiscover: true,
  dataDir: '/var/lib/premortem',
  quotaBytes: 256 * 1024 * 1024,
  maxBundles: 500,
  retentionDays: 14,
  bundleCleanExits: false,
  host: '127.0.0.1',
  port: 7070,
  ringBufferBytes: 8 * 1024 * 1024,
  slowWaitUs: 10_000,
  slowBioUs: 50_000,
  gcRecordUs: 10_000,
  disablePrograms: [],
  deathSettleMs: 150,
  requests: true,
  requestQuery: false,
  stackIntervalMs: 1000,
  stackBurstIntervalMs: 200,
  stackBurstMs: 5000,
  maxStacksPerWorker: 8,
  thresholds: DEFAULT_THRESHOLDS,
};

export type AgentOptionsInput = Partial<Omit<AgentOptions, 'thresholds'>> & { thresholds?: Partial<Thresholds> };

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  return host === '::1';
}

/** Merges defaults once and rejects what cannot work, saying exactly why. */
export function resolveOptions(input: AgentOptionsInput = {}): AgentOptions {
  const o: AgentOptions = { ...DEFAULTS, ...input, thresholds: { ...DEFAULT_THRESHOLDS, ...input.thresholds } };
  const positive: Array<keyof AgentOptions> = ['intervalMs', 'windowMs', 'bundleWindowMs', 'maxTrackedProcesses',
    'maxMarkersPerWorker', 'discoveryIntervalMs', 'quotaBytes', 'maxBundles'];
  for (const k of positive) {
    const v = o[k] as number;
    if (!Number.isFinite(v) || v <= 0) throw new TypeError(`option ${k} must be a positive number, got ${v}`);
  }
  if (o.intervalMs < 100) throw new TypeError(`intervalMs must be at least 100 ms, got ${o.intervalMs}`);
  if (o.windowMs % o.intervalMs !== 0) throw new TypeError(`windowMs (${o.windowMs}) must be a multiple of intervalMs (${o.intervalMs})`);
  if (o.windowMs / o.intervalMs > 100_000) throw new TypeError('windowMs / intervalMs must be at most 100000 buckets');
  if (o.bundleWindowMs > o.windowMs) throw new TypeError(`bundleWindowMs (${o.bundleWindowMs}) cannot exceed windowMs (${o.windowMs})`);
  if (o.port !== null && !isLoopback(o.host) && !o.token)
    throw new TypeError(`binding to ${o.host} (not loopback) requires a token: pass --token or PREMORTEM_TOKEN`);
  if (o.maxTrackedProcesses > 8192) throw new TypeError('maxTrackedProcesses cannot exceed the kernel pid filter (8192)');
  checkStackOptions(o);
  return o;
}

/** Stack sampling: off (0) or at least every 100 ms; a burst is faster than the base rate, never faster than 50 ms. */
function checkStackOptions(o: AgentOptions): void {
  const { stackIntervalMs: base, stackBurstIntervalMs: burst } = o;
  if (!Number.isInteger(base) || (base !== 0 && base < 100)) throw new TypeError(`stackIntervalMs must be 0 (off) or at least 100 ms, got ${base}`);
  if (base === 0) return;
  if (!Number.isInteger(burst) || burst < 50 || burst > base)
    throw new TypeError(`stackBurstIntervalMs must be between 50 ms and stackIntervalMs (${base} ms), got ${burst}`);
  if (!Number.isInteger(o.stackBurstMs) || o.stackBurstMs < 0) throw new TypeError(`stackBurstMs must be a whole number of ms >= 0, got ${o.stackBurstMs}`);
  if (!Number.isInteger(o.maxStacksPerWorker) || o.maxStacksPerWorker < 1 || o.maxStacksPerWorker > 64)
    throw new TypeError(`maxStacksPerWorker must be between 1 and 64, got ${o.maxStacksPerWorker}`);
}

/** Buckets per timeline ring. */
export function ringCapacity(o: Pick<AgentOptions, 'windowMs' | 'intervalMs'>): number {
  return o.windowMs / o.intervalMs;
}
