/**
 * The agent: tracks Python worker pools found by discovery (and every worker
 * their masters fork, from the kernel's fork records), keeps their rolling
 * timelines, raises pre-failure markers, and on each death decides a verdict
 * and freezes the minutes before into a post-mortem bundle.
 *
 * It owns the tracer; the HTTP/WebSocket server and the CLI listen to its
 * events ('tick', 'marker', 'death', 'bundle', 'lost', 'topology', 'error').
 */
import { EventEmitter } from 'events';
import * as fs from 'fs';
import { AgentOptions, AgentOptionsInput, resolveOptions, ringCapacity } from './config';
import { discover, DiscoveredProcess, DiscoveredService, NOT_A_WORKER, serviceName } from './discovery';
import { buildBundle, TimelineSource } from './bundle';
import { Cooldown, marker, restartStorm, serviceMarkers, workerMarkers } from './detectors';
import { log as defaultLog, Logger } from './log';
import { loadAddon, Tracer } from './native';
import type { Death, Feature, HostBucket, Identity, IncidentSummary, Marker, Role, Service, ServiceBucket, ServiceKind, Snapshot, Verdict, Worker } from './proto';
import { decodeBatch, RecordType, RECORD_TYPE_NAMES } from './records';
import type { AnyRecord } from './probes';
import type { ExitRecord, ForkRecord, OomRecord, SignalRecord, ExecRecord } from './probes/lifecycle';
import type { RunqSlowRecord } from './probes/runqlat';
import type { GcPauseRecord } from './probes/pygc';
import type { BioSlowRecord } from './probes/disk';
import type { TcpEventRecord } from './probes/tcp';
import { OomKind } from './probes/lifecycle';
import { TcpEvent, TcpWatcher, TCP_EVENT_NAMES, UNTRACED_STATES } from './probes/tcp';
import { attachGcProbes } from './probes/pygc';
import { findGcProbeTarget } from './python-usdt';
import { bootUnixMs, listeningInodes, readCmdline, readExe, readHost, readStat, CLK_TCK } from './procfs';
import { memoryCgroupOf, rereadMemoryCgroup, MemoryCgroup } from './cgroup';
import { readTcpSockets } from './sockets';
import { bucketFrom, Cumulative, readCumulative, readRssLast } from './sampler';
import { HostTimeline, MarkerRing, ServiceTimeline, slopePerSecond, WorkerTimeline } from './timeline';
import { decideVerdict, formatBytes, OomFacts, signalName, SignalFacts } from './verdict';
import type { BundleStore } from './store';
import { makeBundleId } from './store';

export const AGENT_VERSION: string = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../package.json').version as string;
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../package.json').version as string;
  }
})();

/** Signals recorded per worker for its verdict (most recent kept). */
const MAX_SIGNALS_PER_WORKER = 32;
/** Dead workers kept (for siblings' context in later bundles) before the oldest is forgotten. */
const MAX_DEAD_WORKERS = 256;
/** How often /proc/net/tcp is read when the tcp probe counts transitions in the kernel. */
const PROC_NET_TCP_REFRESH_MS = 5000;
/** Interpreter binaries with GC probes attached (or found without them). */
const MAX_GC_TARGETS = 64;
/** Drop-counter history kept to tell how many records a bundle window lost. */
const MAX_DROP_HISTORY = 4096;
/** Kernel maps holding per-process state, cleaned when a process is retired. */
const PER_PROCESS_MAPS: Array<[string, string]> = [
  ['runqlat', 'runq_hist'], ['runqlat', 'cpu_stats'], ['memory', 'faults'], ['memory', 'rss_last'],
  ['disk', 'disk_proc'], ['disk', 'dstate_hist'], ['pygc', 'gc_hist'], ['pygc', 'gc_stats'],
];
const TRACK_FOLLOW_FORKS = 1;

export const workerKey = (pid: number, startTicks: number) => `${pid}:${startTicks}`;

interface WorkerState {
  key: string;
  identity: Identity;
  alive: boolean;
  diedMs: number;
  memoryCgroupPid: number;
  /** The memory cgroup as last read: the victim's /proc is gone by the time an OOM record is read. */
  memoryCgroup?: MemoryCgroup;
  timeline: WorkerTimeline;
  markers: MarkerRing;
  prev?: Cumulative;
  signals: SignalFacts[];
  oom?: OomFacts;
  exit?: ExitRecord;
  verdict?: Verdict;
  slot: number;
  judging: boolean;
  slowWaits: { count: number; worst?: RunqSlowRecord };
}

interface ServiceState {
  service: Service;
  timeline: ServiceTimeline;
  markers: MarkerRing;
  masterKey: string;
  slots: Array<{ generation: number; key: string | null }>;
  deathTimes: number[];
  tcpId: number;
  lastSeenMs: number;
  /** Last cumulative cpu.stat of the service's cgroup (throttling). */
  cpuStat?: { nrThrottled: number; throttledUs: number };
  prevTcp?: Map<number, { retransmits: number; rstSent: number; rstRecv: number; listenOverflows: number }>;
}

export interface AgentHealth {
  startedMs: number;
  trackedProcesses: number;
  trackedWorkersAlive: number;
  refusedOverCap: number;
  records: { delivered: Record<string, number>; dropped: Record<string, number>; droppedTotal: number };
  features: Feature[];
  memory: { rssBytes: number; heapUsedBytes: number; timelineBytes: number };
  cpu: { userMs: number; systemMs: number };
  errors: Record<string, number>;
}

export interface Agent extends EventEmitter {
  readonly options: AgentOptions;
  start(): Promise<void>;
  stop(): Promise<void>;
  snapshot(): Snapshot;
  features(): Feature[];
  health(): AgentHealth;
  /** A worker's buckets and markers between two times; also its service's and the host's when asked. */
  history(workerKey: string, fromMs: number, toMs: number, also?: { serviceId?: string; host?: boolean }): HistoryAnswer;
  /** Tracks one process now (explicit --pid). */
  trackPid(pid: number): boolean;
  /** The native tracer once started (tools and tests that drive probe maps, e.g. flood_cfg). */
  nativeTracer(): Tracer | undefined;
}

export interface HistoryAnswer {
  timelines: Array<{ identity: Identity; buckets: ReturnType<WorkerTimeline['buckets']> }>;
  markers: Marker[];
  serviceBuckets: ServiceBucket[];
  hostBuckets: HostBucket[];
}

export interface AgentDeps {
  store?: BundleStore;
  logger?: Logger;
  tracer?: Tracer;
}

export function createAgent(input: AgentOptionsInput = {}, deps: AgentDeps = {}): Agent {
  return new AgentImpl(resolveOptions(input), deps);
}

class AgentImpl extends EventEmitter implements Agent {
  readonly options: AgentOptions;
  private readonly log: Logger;
  private readonly store?: BundleStore;
  private tracer?: Tracer;
  private ownsTracer = true;
  private tcp?: TcpWatcher;
  private loaded = new Set<string>();
  private probeFeatures: Feature[] = [];
  private gcTargets = new Map<string, { ok: boolean; reason: string; links: number[] }>();
  private gcExesSeen = new Set<string>();
  private readonly workers = new Map<string, WorkerState>();
  private readonly pidToKey = new Map<number, string>();
  private readonly services = new Map<string, ServiceState>();
  private readonly host: HostTimeline;
  private readonly hostMarkers: MarkerRing;
  private readonly cooldown: Cooldown;
  private pendingMarkers: Marker[] = [];
  private tickTimer?: NodeJS.Timeout;
  private discoveryTimer?: NodeJS.Timeout;
  private deathTimers = new Set<NodeJS.Timeout>();
  private bootOffsetMs = 0;
  private bootMs = bootUnixMs();
  private nextTcpId = 1;
  private refusedOverCap = 0;
  private lastCapWarnMs = 0;
  private dropHistory: Array<[number, number]> = [];
  private droppedSeen = 0;
  private droppedByType: number[] = [];
  private errors: Record<string, number> = {};
  private startedMs = 0;
  private stopped = false;
  private stopping?: Promise<void>;

  constructor(options: AgentOptions, deps: AgentDeps) {
    super();
    this.options = options;
    this.log = deps.logger ?? defaultLog;
    this.store = deps.store;
    if (deps.tracer) {
      this.tracer = deps.tracer;
      this.ownsTracer = false;
    }
    const cap = ringCapacity(options);
    this.host = new HostTimeline(cap);
    this.hostMarkers = new MarkerRing(options.maxMarkersPerWorker);
    this.cooldown = new Cooldown(options.thresholds.markerCooldownS * 1000);
  }

  // ------------------------------------------------------------ life cycle

  async start(): Promise<void> {
    this.startedMs = Date.now();
    this.syncClock();
    if (!this.tracer) {
      const addon = loadAddon();
      this.tracer = new addon.Tracer({
        probes: this.options.probes,
        ringBufferBytes: this.options.ringBufferBytes,
        disablePrograms: this.options.disablePrograms,
        rodata: {
          runqlat: { targ_min_us: this.options.slowWaitUs },
          ...(this.options.probes === undefined || this.options.probes.includes('disk') ? { disk: { targ_slow_us: this.options.slowBioUs } } : {}),
          ...(this.options.probes === undefined || this.options.probes.includes('pygc') ? { pygc: { targ_gc_min_us: this.options.gcRecordUs } } : {}),
        },
        onRecords: (batch) => this.onBatch(batch),
      });
    }
    this.collectFeatures();
    if (this.loaded.has('tcp')) this.tcp = new TcpWatcher(this.tracer);
    for (const pid of this.options.pids) this.trackPid(pid);
    this.runDiscovery();
    this.discoveryTimer = setInterval(() => this.runDiscovery(), this.options.discoveryIntervalMs);
    this.discoveryTimer.unref?.();
    this.scheduleTick();
    this.log.info('agent started', { probes: [...this.loaded].join(','), intervalMs: this.options.intervalMs, windowMs: this.options.windowMs });
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.stopped = true;
      clearTimeout(this.tickTimer);
      clearInterval(this.discoveryTimer);
      for (const t of this.deathTimers) clearTimeout(t);
      this.deathTimers.clear();
      const results = await Promise.allSettled([
        (async () => {
          if (this.tracer && this.ownsTracer) this.tracer.close();
        })(),
      ]);
      for (const r of results) if (r.status === 'rejected') this.log.error('stop failed', { error: String(r.reason) });
      this.log.info('agent stopped');
    })();
    return this.stopping;
  }

  private syncClock(): void {
    this.bootOffsetMs = Date.now() - loadAddon().bootTimeNs() / 1e6;
  }

  /** Unix ms of a record's CLOCK_BOOTTIME timestamp. */
  private recMs(tsNs: number): number {
    return Math.round(tsNs / 1e6 + this.bootOffsetMs);
  }

  private collectFeatures(): void {
    const feats: Feature[] = [];
    for (const p of this.tracer!.probes()) {
      if (p.loaded) this.loaded.add(p.name);
      const off = p.programs.filter((g) => !g.attached && !g.deferred);
      feats.push({
        name: p.name,
        enabled: p.loaded && off.length < p.programs.length,
        reason: !p.loaded ? p.error?.message.split('\n')[0] ?? 'not loaded'
          : off.length ? `off: ${off.map((g) => `${g.section} (${g.error?.message.split('\n')[0] ?? 'not attached'})`).join('; ')}` : '',
      });
    }
    this.probeFeatures = feats;
    for (const f of feats) if (!f.enabled || f.reason) this.log.warn(`probe ${f.name}: ${f.enabled ? 'partly on' : 'off'}`, { reason: f.reason });
  }

  nativeTracer(): Tracer | undefined {
    return this.tracer;
  }

  features(): Feature[] {
    const gc = [...this.gcTargets.entries()].map(([path, t]) => ({ name: `gc-usdt ${path}`, enabled: t.ok, reason: t.reason }));
    return [...this.probeFeatures, ...gc];
  }

  // ------------------------------------------------------------ discovery and tracking

  trackPid(pid: number): boolean {
    const st = readStat(pid);
    if (!st) return false;
    const cmd = readCmdline(pid) ?? [];
    const proc: DiscoveredProcess = { pid, startTicks: st.startTicks, ppid: st.ppid, comm: st.comm, cmdline: cmd, exe: '' };
    const svc: DiscoveredService = {
      id: `python-${pid}-${st.startTicks}`, name: serviceName('python', cmd, []), kind: 'python', master: proc, workers: [],
      ports: [], cgroup: '', memoryCgroup: '', unit: '',
    };
    this.adoptService(svc);
    return true;
  }

  private runDiscovery(): void {
    if (this.stopped) return;
    let found: DiscoveredService[];
    try {
      found = discover({ pids: this.options.pids, match: this.options.match, cgroup: this.options.cgroup,
        exclude: this.options.exclude, autoDiscover: this.options.autoDiscover || !(this.options.pids.length || this.options.match || this.options.cgroup) },
      process.pid, process.ppid, () => this.listeningNow());
    } catch (e) {
      this.countError('discovery', e);
      return;
    }
    for (const svc of found) this.adoptService(svc);
    this.reapVanished();
  }

  private adoptService(d: DiscoveredService): void {
    let s = this.services.get(d.id);
    const now = Date.now();
    if (!s) {
      s = {
        service: { id: d.id, name: d.name, kind: d.kind as ServiceKind, masterPid: d.master.pid, masterStartTicks: d.master.startTicks,
          ports: d.ports, cgroup: d.cgroup, unit: d.unit },
        timeline: new ServiceTimeline(d.id, ringCapacity(this.options), this.options.intervalMs),
        markers: new MarkerRing(this.options.maxMarkersPerWorker),
        masterKey: workerKey(d.master.pid, d.master.startTicks),
        slots: [],
        deathTimes: [],
        tcpId: this.nextTcpId++,
        lastSeenMs: now,
      };
      this.services.set(d.id, s);
      this.log.info('service found', { service: d.name, master: d.master.pid, workers: d.workers.length, ports: d.ports.join(',') });
      this.emit('topology');
    }
    s.lastSeenMs = now;
    if (d.ports.length && d.ports.join() !== s.service.ports.join()) {
      s.service.ports = d.ports;
      s.service.name = d.name;
      this.emit('topology');
    }
    this.watchPorts(s);
    const masterRole: Role = d.workers.length || s.slots.length ? 'master' : 'standalone';
    this.register(d.master, s, masterRole);
    for (const w of d.workers) this.register(w, s, 'worker');
  }

  private watchPorts(s: ServiceState): void {
    if (!this.tcp) return;
    for (const port of s.service.ports) {
      if (this.tcp.get(port)) continue;
      try {
        this.tcp.watch({ port, serviceId: s.tcpId });
      } catch (e) {
        this.countError('tcp-watch', e);
      }
    }
  }

  /** Starts tracking one process of a service (idempotent). */
  private register(p: DiscoveredProcess, s: ServiceState, role: Role, comm?: string, forked = false): WorkerState | undefined {
    const key = workerKey(p.pid, p.startTicks);
    const existing = this.workers.get(key);
    if (existing) {
      if (existing.identity.role !== role && role === 'master') existing.identity.role = role;
      return existing;
    }
    const alive = [...this.workers.values()].filter((w) => w.alive).length;
    if (alive >= this.options.maxTrackedProcesses) {
      this.refusedOverCap++;
      if (Date.now() - this.lastCapWarnMs > 60_000) {
        this.lastCapWarnMs = Date.now();
        this.log.warn(`tracked-process cap reached (${this.options.maxTrackedProcesses}): not tracking pid ${p.pid} and later ones; raise --max-tracked`, { refused: this.refusedOverCap });
      }
      // A forked child is already in the kernel's filter (its master follows forks): take it out.
      if (forked) this.untrack(p.pid);
      return undefined;
    }
    const isMaster = role === 'master';
    // Tracking from /proc starts now: whatever the kernel maps hold for this pid belongs to
    // an earlier holder of the pid. A forked child's entries are its own (tracked from fork).
    if (!forked) this.clearProcessMaps(p.pid);
    try {
      this.tracer!.track(p.pid, p.startTicks * (1e9 / CLK_TCK), isMaster ? TRACK_FOLLOW_FORKS : 0);
    } catch (e) {
      this.countError('track', e);
      return undefined;
    }
    // Slot and generation: a new worker takes the slot of the oldest dead one.
    let slot = -1;
    let generation = 0;
    if (role === 'worker') {
      slot = s.slots.findIndex((x) => x.key === null);
      if (slot < 0) {
        s.slots.push({ generation: 0, key });
        slot = s.slots.length - 1;
      } else {
        s.slots[slot].generation++;
        s.slots[slot].key = key;
      }
      generation = s.slots[slot].generation;
    }
    const cmd = p.cmdline.length ? p.cmdline : readCmdline(p.pid) ?? [];
    const w: WorkerState = {
      key,
      identity: {
        pid: p.pid, startTicks: p.startTicks, comm: comm ?? p.comm, cmdline: cmd.join(' ').slice(0, 512), serviceId: s.service.id,
        generation, role, ppid: p.ppid, startedMs: this.bootMs + p.startTicks * (1000 / CLK_TCK), slot: Math.max(0, slot),
      },
      alive: true,
      diedMs: 0,
      memoryCgroupPid: p.pid,
      timeline: new WorkerTimeline(ringCapacity(this.options), this.options.intervalMs),
      markers: new MarkerRing(this.options.maxMarkersPerWorker),
      signals: [],
      slot,
      judging: false,
      slowWaits: { count: 0 },
    };
    // A pid reused by a fork before its previous holder was judged: the kernel's per-pid
    // counters hold both, so this process's deltas start from its predecessor's last reading.
    const predecessor = this.workers.get(this.pidToKey.get(p.pid) ?? '');
    if (forked && predecessor && predecessor.key !== key) w.prev = predecessor.prev;
    this.workers.set(key, w);
    this.pidToKey.set(p.pid, key);
    // A forked child runs its parent's interpreter: nothing new to attach until it execs.
    if (!forked) this.attachGc(p.pid);
    this.emit('topology');
    return w;
  }

  /** GC probes attach once per interpreter binary (every process using it), not per pid. */
  private attachGc(pid: number): void {
    if (!this.loaded.has('pygc')) return;
    // One ELF inspection per executable: pools run many processes of one interpreter.
    const exe = readExe(pid);
    if (exe && this.gcExesSeen.has(exe)) return;
    if (exe) {
      if (this.gcExesSeen.size >= 1024) this.gcExesSeen.clear(); // bound
      this.gcExesSeen.add(exe);
    }
    let target;
    try {
      target = findGcProbeTarget(pid);
    } catch (e) {
      this.countError('gc-target', e);
      return;
    }
    // No file found (e.g. the process is already gone): nothing to attach, nothing to report.
    if (!target.path) return;
    const path = target.path;
    if (this.gcTargets.has(path)) return;
    if (this.gcTargets.size >= MAX_GC_TARGETS) return; // bound: interpreters are few; never a per-pid list
    if (!target.hasProbes) {
      this.gcTargets.set(path, { ok: false, reason: target.reason, links: [] });
      this.log.info(`no GC probes for ${path}: ${target.reason}`);
      return;
    }
    try {
      const links = attachGcProbes(this.tracer!, target.path, -1);
      this.gcTargets.set(path, { ok: true, reason: target.reason, links });
    } catch (e) {
      this.gcTargets.set(path, { ok: false, reason: (e as Error).message.split('\n')[0], links: [] });
    }
  }

  private serviceOf(w: WorkerState): ServiceState | undefined {
    return this.services.get(w.identity.serviceId);
  }

  /** The process a record is about: by identity when the record carries the start time. */
  private workerByPid(pid: number, startNs?: number): WorkerState | undefined {
    if (startNs !== undefined && startNs > 0) return this.workers.get(workerKey(pid, Math.floor(startNs / (1e9 / CLK_TCK))));
    const key = this.pidToKey.get(pid);
    return key ? this.workers.get(key) : undefined;
  }

  /** Processes that vanished without an exit record (e.g. lost): judged from what is known. */
  private reapVanished(): void {
    for (const w of this.workers.values()) {
      if (!w.alive || w.judging) continue;
      const st = readStat(w.identity.pid);
      if (st && st.startTicks === w.identity.startTicks && st.state !== 'Z') continue;
      if (st && st.state === 'Z') continue; // exit record is on its way or the parent has yet to reap
      this.scheduleJudge(w, Date.now());
    }
    // A child registered between its fork and its exec may turn out to be a pool helper.
    for (const w of [...this.workers.values()]) {
      if (!w.alive || w.judging || w.identity.role !== 'worker') continue;
      const cmd = readCmdline(w.identity.pid);
      if (!cmd) continue;
      const line = cmd.join(' ');
      if (NOT_A_WORKER.test(line)) this.retire(w, true);
      else if (line !== w.identity.cmdline && line) w.identity.cmdline = line.slice(0, 512);
    }
    // Services whose master is gone and that have no live process left are forgotten after the window.
    for (const [id, s] of this.services) {
      const live = [...this.workers.values()].some((w) => w.alive && w.identity.serviceId === id);
      if (!live && Date.now() - s.lastSeenMs > this.options.windowMs) {
        if (this.tcp) for (const port of s.service.ports) this.tcp.unwatch(port);
        this.services.delete(id);
        this.emit('topology');
      }
    }
  }

  // ------------------------------------------------------------ records

  private onBatch(batch: ArrayBuffer): void {
    try {
      decodeBatch(batch, (r) => this.onRecord(r as AnyRecord));
    } catch (e) {
      this.countError('decode', e);
    }
  }

  private onRecord(r: AnyRecord): void {
    switch (r.type) {
      case RecordType.RunqSlow: return this.onRunqSlow(r as RunqSlowRecord);
      case RecordType.Fork: return this.onFork(r as ForkRecord);
      case RecordType.Exec: return this.onExec(r as ExecRecord);
      case RecordType.Exit: return this.onExit(r as ExitRecord);
      case RecordType.Signal: return this.onSignal(r as SignalRecord);
      case RecordType.Oom: return this.onOom(r as OomRecord);
      case RecordType.Gc: return this.onGc(r as GcPauseRecord);
      case RecordType.BioSlow: return this.onBioSlow(r as BioSlowRecord);
      case RecordType.Tcp: return this.onTcp(r as TcpEventRecord);
      default: return undefined;
    }
  }

  private onRunqSlow(r: RunqSlowRecord): void {
    const w = this.workerByPid(r.pid);
    if (!w) return;
    // Aggregated per interval: the worst slow wait becomes one marker.
    w.slowWaits.count++;
    if (!w.slowWaits.worst || r.waitNs > w.slowWaits.worst.waitNs) w.slowWaits.worst = r;
  }

  private onFork(r: ForkRecord): void {
    if (r.isThread) return;
    const parent = this.workerByPid(r.parentPid);
    if (!parent || parent.identity.role === 'worker') {
      // The kernel tracked a child of a following parent we no longer know: drop it.
      if (r.tracked === 1 && !parent) this.untrack(r.childPid);
      return;
    }
    const s = this.serviceOf(parent);
    if (!s) return;
    const startTicks = Math.floor(r.childStartNs / (1e9 / CLK_TCK));
    if (parent.identity.role === 'standalone') {
      // It turned out to be a pre-fork server: from now on the kernel tracks its children from their fork.
      parent.identity.role = 'master';
      try {
        this.tracer!.track(parent.identity.pid, parent.identity.startTicks * (1e9 / CLK_TCK), TRACK_FOLLOW_FORKS);
      } catch (e) {
        this.countError('track', e);
      }
      this.emit('topology');
    }
    const w = this.register({ pid: r.childPid, startTicks, ppid: r.parentPid, comm: r.childComm, cmdline: [], exe: '' }, s, 'worker', r.childComm, true);
    if (w) this.log.debug('worker forked', { service: s.service.name, pid: r.childPid, generation: w.identity.generation });
  }

  private onExec(r: ExecRecord): void {
    const w = this.workerByPid(r.pid);
    if (!w) return;
    w.identity.comm = r.comm;
    const cmd = readCmdline(r.pid);
    if (cmd) w.identity.cmdline = cmd.join(' ').slice(0, 512);
    if (w.identity.role === 'worker' && NOT_A_WORKER.test(w.identity.cmdline)) this.retire(w, true);
    else this.attachGc(r.pid);
  }

  private onSignal(r: SignalRecord): void {
    const w = this.workerByPid(r.pid, r.startNs);
    if (!w) return;
    const tMs = this.recMs(r.tsNs);
    w.signals.push({ tMs, sig: r.sig, senderPid: r.senderPid, senderComm: r.senderComm, kernel: r.kernel });
    if (w.signals.length > MAX_SIGNALS_PER_WORKER) w.signals.shift();
    const fatal = [6, 9, 11, 7, 4, 8].includes(r.sig);
    this.addMarker(w, marker(tMs, 'signal', this.subject(w), fatal ? 'warning' : 'info',
      `${signalName(r.sig)} from ${r.kernel ? 'the kernel' : `pid ${r.senderPid} (${r.senderComm})`}`,
      { sig: r.sig, senderPid: r.senderPid, siCode: r.siCode }, { signal: signalName(r.sig), sender: r.kernel ? 'kernel' : r.senderComm }), true);
  }

  private onOom(r: OomRecord): void {
    const w = this.workerByPid(r.pid, r.startNs);
    if (!w) return;
    const tMs = this.recMs(r.tsNs);
    const rss = r.rssAnonBytes + r.rssFileBytes + r.rssShmemBytes;
    const scope = r.kind === OomKind.Cgroup ? 'cgroup' : r.kind === OomKind.Global ? 'global' : 'none';
    // Read while it lived: the victim's /proc may already show the root cgroup.
    const cg = w.memoryCgroup ?? memoryCgroupOf(w.memoryCgroupPid) ?? undefined;
    w.oom = {
      tMs, scope, cgroupPath: cg?.path ?? '', rssBytes: rss,
      limitBytes: r.oomLimitBytes || r.memcgLimitBytes, usageBytes: r.oomUsageBytes || r.memcgUsageBytes,
    };
    this.addMarker(w, marker(tMs, 'oom', this.subject(w), 'critical',
      `the kernel OOM-killer chose pid ${r.pid} (${r.comm}): RSS ${formatBytes(rss)}${w.oom.limitBytes ? `, ${scope} limit ${formatBytes(w.oom.limitBytes)}` : ''}`,
      { rssBytes: rss, limitBytes: w.oom.limitBytes, usageBytes: w.oom.usageBytes }, { scope }), true);
  }

  private onGc(r: GcPauseRecord): void {
    const w = this.workerByPid(r.pid);
    if (!w) return;
    const ms = r.durationNs / 1e6;
    if (ms < this.options.thresholds.gcPauseMs) return;
    this.addMarker(w, marker(this.recMs(r.tsNs), 'gc-pause', this.subject(w), ms > 4 * this.options.thresholds.gcPauseMs ? 'critical' : 'warning',
      `GC pause of ${ms.toFixed(1)} ms (generation ${r.generation}, ${r.collected} objects collected)`,
      { pauseMs: ms, generation: r.generation, collected: r.collected }));
  }

  private onBioSlow(r: BioSlowRecord): void {
    const w = r.pid ? this.workerByPid(r.pid) : undefined;
    if (!w) return;
    this.addMarker(w, marker(this.recMs(r.tsNs), 'slow-io', this.subject(w), 'warning',
      `a block request took ${(r.latencyNs / 1e6).toFixed(1)} ms (${r.bytes} bytes)`, { latencyMs: r.latencyNs / 1e6, bytes: r.bytes }));
  }

  private onTcp(r: TcpEventRecord): void {
    const s = [...this.services.values()].find((x) => x.tcpId === r.serviceId);
    if (!s) return;
    // Resets and lingering CLOSE_WAIT are counted in the kernel (sampled each tick); a full
    // accept queue is worth a marker the moment it happens.
    if (r.subtype === TcpEvent.BacklogFull || r.subtype === TcpEvent.ListenOverflow) {
      const name = TCP_EVENT_NAMES[r.subtype] ?? `event ${r.subtype}`;
      this.addServiceMarker(s, marker(this.recMs(r.tsNs), 'backlog-full', { pid: 0, startTicks: 0, serviceId: s.service.id }, 'critical',
        `port ${r.localPort}: the accept queue is full (${r.ackBacklog} of ${r.maxAckBacklog})${r.subtype === TcpEvent.ListenOverflow ? '; a client\'s handshake was dropped' : ''}`,
        { depth: r.ackBacklog, max: r.maxAckBacklog, port: r.localPort }, { event: name }));
    }
  }

  private onExit(r: ExitRecord): void {
    if (!r.groupDead) return; // a thread, not the process
    const w = this.workerByPid(r.pid, r.startNs);
    if (!w || !w.alive) return;
    w.exit = r;
    this.scheduleJudge(w, this.recMs(r.tsNs));
  }

  // ------------------------------------------------------------ deaths

  private scheduleJudge(w: WorkerState, deathMs: number): void {
    if (w.judging) return;
    w.judging = true;
    // Free the slot now: the master may fork the replacement before the verdict is in.
    const s = this.serviceOf(w);
    if (s && w.slot >= 0 && s.slots[w.slot]?.key === w.key) s.slots[w.slot].key = null;
    // Records the kernel wrote just before the exit may sit in the next batch.
    const t = setTimeout(() => {
      this.deathTimers.delete(t);
      this.judge(w, deathMs).catch((e) => this.countError('judge', e));
    }, this.options.deathSettleMs);
    this.deathTimers.add(t);
  }

  private async judge(w: WorkerState, deathMs: number): Promise<void> {
    if (this.stopped) return;
    this.tracer!.flush();
    const s = this.serviceOf(w);
    // A last bucket for the partial interval, with the RSS current at death.
    this.sampleWorker(w, this.intervalStart(deathMs), true);
    w.alive = false;
    w.diedMs = deathMs;
    const e = w.exit;
    const master = s ? this.workers.get(s.masterKey) : undefined;
    const verdict = decideVerdict({
      exit: {
        pid: w.identity.pid, comm: w.identity.comm, tMs: deathMs,
        exitStatus: e?.exitStatus ?? 0, termSignal: e?.termSignal ?? 0, coreDumped: e?.coreDumped ?? false,
      },
      signals: w.signals,
      oom: w.oom,
      masterPid: w.identity.role === 'worker' ? master?.identity.pid ?? w.identity.ppid : undefined,
      masterComm: master?.identity.comm,
      rss: w.timeline.series('rssBytes').map(([t, v], i, a) => [i === a.length - 1 ? deathMs : t + this.options.intervalMs, v]),
      lostRecords: this.lostBetween(deathMs - this.options.bundleWindowMs, deathMs),
    });
    if (!e && !w.oom) {
      verdict.kind = 'unknown';
      verdict.summary = `pid ${w.identity.pid} (${w.identity.comm}) disappeared at about ${new Date(deathMs).toISOString().slice(11, 23)} but its exit was not seen${verdict.summary ? '' : ''}: the cause is unknown.`;
    }
    w.verdict = verdict;
    const exitMarker = marker(deathMs, verdict.kind === 'oom-killed' ? 'oom-kill' : 'exit', this.subject(w), verdict.failure ? 'critical' : 'info',
      verdict.summary, { exitCode: verdict.exitCode, signal: verdict.signal }, { verdict: verdict.kind });
    this.addMarker(w, exitMarker, true);
    if (s) {
      if (verdict.failure) {
        s.deathTimes.push(deathMs);
        while (s.deathTimes.length > 1000) s.deathTimes.shift();
        const storm = restartStorm(s.service.id, s.deathTimes, deathMs, this.options.thresholds);
        if (storm) this.addServiceMarker(s, storm);
      }
    }
    this.retire(w, false);

    let bundleId = '';
    if (this.store && (verdict.failure || this.options.bundleCleanExits)) {
      bundleId = makeBundleId(deathMs, w.identity.pid);
      const bundle = this.bundleFor(w, s, verdict, bundleId, deathMs);
      const death: Death = { identity: w.identity, verdict, bundleId, tMs: deathMs };
      this.emit('death', death);
      try {
        const res = await this.store.write(bundle);
        const incident: IncidentSummary = {
          id: res.id, tMs: deathMs, service: s?.service.name ?? '', serviceId: s?.service.id ?? '', pid: w.identity.pid,
          startTicks: w.identity.startTicks, verdictKind: verdict.kind, summary: verdict.summary, failure: verdict.failure, bytes: res.bytes,
        };
        this.log.info(`post-mortem ${res.id}: ${verdict.kind}`, { pid: w.identity.pid, summary: verdict.summary });
        this.emit('bundle', incident, bundle);
      } catch (err) {
        this.countError('bundle-write', err);
        this.emit('store-error', (err as { code?: string }).code ?? 'PREMORTEM_ERR_STORE', `post-mortem of pid ${w.identity.pid} not written: ${(err as Error).message}`);
        this.log.error('could not write the post-mortem bundle; tracing continues', { pid: w.identity.pid, error: (err as Error).message });
      }
    } else {
      this.emit('death', { identity: w.identity, verdict, bundleId, tMs: deathMs } as Death);
      this.log.info(`worker ${w.identity.pid} ${verdict.kind}`, { summary: verdict.summary });
    }
    this.emit('topology');
  }

  private source(w: WorkerState): TimelineSource {
    return {
      identity: w.identity,
      buckets: (from, to) => w.timeline.buckets(from, to),
      markers: (from, to) => w.markers.between(from, to),
    };
  }

  private bundleFor(w: WorkerState, s: ServiceState | undefined, verdict: Verdict, id: string, deathMs: number) {
    const from = deathMs - this.options.bundleWindowMs;
    const to = deathMs + this.options.intervalMs;
    const siblings = s ? [...this.workers.values()].filter((x) => x !== w && x.identity.serviceId === s.service.id
      && x.identity.role === 'worker' && (x.alive || x.diedMs >= from)) : [];
    const master = s ? this.workers.get(s.masterKey) : undefined;
    // The dead worker's own cgroup (it may differ from the master's), re-read for fresh event counters.
    const cg = w.memoryCgroup ? rereadMemoryCgroup(w.memoryCgroup) : null;
    return buildBundle({
      id, agentVersion: AGENT_VERSION, intervalMs: this.options.intervalMs, windowStartMs: from, windowEndMs: to,
      dead: this.source(w), siblings: siblings.map((x) => this.source(x)),
      master: master && master !== w ? this.source(master) : undefined,
      service: s?.service, serviceBuckets: s ? s.timeline.buckets(from, to) : [], serviceMarkers: s ? s.markers.between(from, to) : [],
      hostBuckets: this.host.buckets(from, to), hostMarkers: this.hostMarkers.between(from, to),
      verdict, cgroup: cg, lostRecords: this.lostBetween(from, to),
    });
  }

  /** Stops tracking a process; its timeline stays (bounded) for context. */
  private retire(w: WorkerState, forget: boolean): void {
    const s = this.serviceOf(w);
    // The pid may already belong to a newer process we track: leave that one alone.
    const pidTakenByOther = this.pidToKey.has(w.identity.pid) && this.pidToKey.get(w.identity.pid) !== w.key;
    if (forget && s && w.slot >= 0 && s.slots[w.slot]?.key === w.key) {
      // Not a worker after all: give its slot back without counting a generation.
      s.slots[w.slot].key = null;
      if (s.slots[w.slot].generation === 0 && w.slot === s.slots.length - 1) s.slots.pop();
      else s.slots[w.slot].generation = Math.max(0, s.slots[w.slot].generation - 1);
    }
    if (!pidTakenByOther) this.untrack(w.identity.pid);
    if (this.pidToKey.get(w.identity.pid) === w.key) this.pidToKey.delete(w.identity.pid);
    w.alive = false;
    if (forget) this.workers.delete(w.key);
    // Dead timelines stay for siblings' bundles: one window long, at most MAX_DEAD_WORKERS.
    const dead = [...this.workers.values()].filter((x) => !x.alive).sort((a, b) => a.diedMs - b.diedMs);
    const cutoff = Date.now() - this.options.windowMs;
    let excess = dead.length - MAX_DEAD_WORKERS;
    for (const x of dead) {
      if (x.diedMs >= cutoff && excess <= 0) break;
      this.workers.delete(x.key);
      excess--;
    }
  }

  private untrack(pid: number): void {
    if (!this.tracer) return;
    try {
      this.tracer.untrack(pid);
    } catch (e) {
      if (!this.stopped) this.countError('untrack', e);
    }
    this.clearProcessMaps(pid);
  }

  private clearProcessMaps(pid: number): void {
    if (!this.tracer || this.stopped) return;
    for (const [probe, map] of PER_PROCESS_MAPS) {
      if (!this.loaded.has(probe)) continue;
      try {
        this.tracer.mapDelete(probe, map, pid);
      } catch (e) {
        this.countError('map-delete', e);
      }
    }
  }

  // ------------------------------------------------------------ ticks

  private intervalStart(tMs: number): number {
    return Math.floor(tMs / this.options.intervalMs) * this.options.intervalMs;
  }

  private scheduleTick(): void {
    if (this.stopped) return;
    const now = Date.now();
    const next = this.intervalStart(now) + this.options.intervalMs;
    this.tickTimer = setTimeout(() => {
      try {
        this.tick(next - this.options.intervalMs);
      } catch (e) {
        this.countError('tick', e);
      }
      this.scheduleTick();
    }, next - now + 5);
    this.tickTimer.unref?.();
  }

  private subject(w: WorkerState) {
    return { pid: w.identity.pid, startTicks: w.identity.startTicks, serviceId: w.identity.serviceId };
  }

  private addMarker(w: WorkerState, m: Marker, always = false): void {
    if (!always && !this.cooldown.admit(m)) return;
    w.markers.push(m);
    this.pendingMarkers.push(m);
    this.emit('marker', m);
  }

  private addServiceMarker(s: ServiceState, m: Marker): void {
    if (!this.cooldown.admit(m)) return;
    s.markers.push(m);
    this.pendingMarkers.push(m);
    this.emit('marker', m);
  }

  private sampleWorker(w: WorkerState, tMs: number, final = false): void {
    const now = readCumulative(this.tracer!, w.identity.pid, this.loaded);
    const rssLast = readRssLast(this.tracer!, w.identity.pid, this.loaded);
    let rssBytes: number | undefined;
    if (final && w.exit?.mmPresent) rssBytes = w.exit.rssAnonBytes + w.exit.rssFileBytes + w.exit.rssShmemBytes;
    else if (final && w.oom?.rssBytes) rssBytes = w.oom.rssBytes;
    else if (rssLast && rssLast.rssBytes > 0) rssBytes = rssLast.rssBytes;
    const b = bucketFrom(now, w.prev, { rssBytes });
    if (final && !now.stat) {
      // The process is gone: /proc counters are not available for the last bucket.
      delete b.cpuMs;
      b.threads = 0;
    }
    w.prev = now;
    // An exited task (zombie or gone) shows the root cgroup in /proc: keep the last one it lived in.
    const living = !final && now.stat !== undefined && now.stat.state !== 'Z';
    const cg = living
      ? this.cgroupCache.get(w.memoryCgroupPid) ?? this.cgroupCache.set(w.memoryCgroupPid, memoryCgroupOf(w.memoryCgroupPid)).get(w.memoryCgroupPid)
      : w.memoryCgroup && rereadMemoryCgroup(w.memoryCgroup);
    if (cg) {
      w.memoryCgroup = cg;
      b.cgroupUsageBytes = cg.usageBytes;
      b.cgroupLimitBytes = cg.limitBytes ?? 0;
    }
    b.signalsReceived = w.signals.filter((x) => x.tMs >= tMs && x.tMs < tMs + this.options.intervalMs).length;
    const pts = w.timeline.series('rssBytes', 9);
    pts.push([tMs, b.rssBytes ?? 0]);
    b.rssSlopeBytesPerS = slopePerSecond(pts.filter(([, v]) => v > 0));
    b.gap = this.droppedThisInterval > 0;
    w.timeline.push(tMs, b);
    if (w.slowWaits.worst) {
      const r = w.slowWaits.worst;
      this.addMarker(w, marker(this.recMs(r.tsNs), 'slow-wakeup', this.subject(w), r.waitNs > 100e6 ? 'critical' : 'warning',
        `waited ${(r.waitNs / 1e6).toFixed(1)} ms for a CPU (${w.slowWaits.count} slow waits this interval); pid ${r.culpritPid} (${r.culpritComm}) held CPU ${r.cpu}`,
        { waitMs: r.waitNs / 1e6, count: w.slowWaits.count, culpritPid: r.culpritPid, cpu: r.cpu },
        { culprit: r.culpritComm, cause: r.preempted ? 'preempted' : 'woken' }));
      w.slowWaits = { count: 0 };
    }
  }

  private cgroupCache = new Map<number, MemoryCgroup | null>();
  private socketCache?: { tMs: number; sockets: ReturnType<typeof readTcpSockets> };

  /**
   * /proc/net/tcp{,6}, read at most every PROC_NET_TCP_REFRESH_MS: the kernel walks every
   * socket of the host to write it (15,000 TIME_WAIT sockets under connection churn made it
   * most of the agent's CPU). The tcp probe's counters give the per-tick numbers; this gives
   * what they cannot see (TIME_WAIT, pending connections) and the accept queue between SYNs.
   */
  private socketsNow() {
    const now = Date.now();
    if (!this.socketCache || now - this.socketCache.tMs >= (this.tcp ? PROC_NET_TCP_REFRESH_MS : this.options.intervalMs / 2))
      this.socketCache = { tMs: now, sockets: readTcpSockets(undefined, new Set([...this.services.values()].flatMap((s) => s.service.ports))) };
    return this.socketCache.sockets;
  }

  private listeningCache?: { tMs: number; map: Map<number, number> };

  private listeningNow(): Map<number, number> {
    const now = Date.now();
    if (!this.listeningCache || now - this.listeningCache.tMs >= PROC_NET_TCP_REFRESH_MS)
      this.listeningCache = { tMs: now, map: listeningInodes() };
    return this.listeningCache.map;
  }
  private droppedThisInterval = 0;

  private tick(tMs: number): void {
    if (this.stopped || !this.tracer) return;
    this.syncClock();
    this.cgroupCache.clear();
    // Loss first, so this interval's buckets carry the gap flag.
    const stats = this.tracer.stats();
    const droppedTotal = stats.dropped.reduce((a, b) => a + b, 0);
    this.droppedThisInterval = droppedTotal - this.droppedSeen;
    if (this.droppedThisInterval > 0) {
      const m = marker(tMs, 'records-lost', { pid: 0, startTicks: 0, serviceId: '' }, 'warning',
        `${this.droppedThisInterval} kernel records were lost in this interval (ring buffer full): the timeline has a gap`,
        { dropped: this.droppedThisInterval, droppedTotal });
      this.hostMarkers.push(m);
      this.pendingMarkers.push(m);
      // One notice per record type that lost records, named after the record.
      stats.dropped.forEach((n, type) => {
        const delta = n - (this.droppedByType[type] ?? 0);
        if (delta > 0) this.emit('lost', { probe: RECORD_TYPE_NAMES[type] ?? `type ${type}`, dropped: delta, tMs, droppedTotal });
      });
    }
    this.droppedByType = stats.dropped.slice();
    this.droppedSeen = droppedTotal;
    this.dropHistory.push([tMs, droppedTotal]);
    if (this.dropHistory.length > MAX_DROP_HISTORY) this.dropHistory.shift();

    const hostSample = readHost();
    this.host.push(tMs, hostSample);
    const hostBucket = this.host.latest();

    const workerBuckets = [];
    for (const w of this.workers.values()) {
      if (!w.alive || w.judging) continue;
      this.sampleWorker(w, tMs);
      const b = w.timeline.latest()!;
      for (const m of workerMarkers(b, this.subject(w), this.options.thresholds, hostSample.memTotalBytes)) this.addMarker(w, m);
      workerBuckets.push({ pid: w.identity.pid, startTicks: w.identity.startTicks, serviceId: w.identity.serviceId, bucket: b });
    }

    const serviceBuckets = [];
    for (const s of this.services.values()) {
      this.sampleService(s, tMs);
      const b = s.timeline.latest()!;
      const hist = s.timeline.buckets(tMs - this.options.thresholds.closeWaitWindowS * 1000 - this.options.intervalMs, tMs);
      for (const m of serviceMarkers(b, hist, this.options.thresholds, this.options.intervalMs)) this.addServiceMarker(s, m);
      serviceBuckets.push(b);
    }

    const markers = this.pendingMarkers;
    this.pendingMarkers = [];
    this.emit('tick', { tMs, intervalMs: this.options.intervalMs, workers: workerBuckets, services: serviceBuckets, host: hostBucket as HostBucket, markers });
  }

  private sampleService(s: ServiceState, tMs: number): void {
    const alive = [...this.workers.values()].filter((w) => w.alive && w.identity.serviceId === s.service.id && w.identity.role === 'worker').length;
    const deaths = s.deathTimes.filter((t) => t >= tMs && t < tMs + this.options.intervalMs).length;
    let depth = 0, max = 0;
    const states: Record<string, number> = {};
    let retransmits = 0, rstSent = 0, rstRecv = 0, drops = 0;
    if (s.service.ports.length) {
      // States the tcp probe counts come from the kernel each tick; the ones it cannot see
      // (TIME_WAIT, pending connections) and the accept queue from /proc/net/tcp (cached).
      try {
        for (const sock of this.socketsNow()) {
          if (!s.service.ports.includes(sock.localPort)) continue;
          if (!this.tcp || UNTRACED_STATES.has(sock.state)) states[sock.state] = (states[sock.state] ?? 0) + 1;
          if (sock.state === 'LISTEN') depth += sock.rxQueue;
        }
      } catch (e) {
        this.countError('sockets', e);
      }
      for (const port of s.service.ports) {
        if (this.tcp?.get(port)) {
          try {
            const st = this.tcp.stats(port);
            const kd = this.tcp.listen(port);
            for (const [name, n] of Object.entries(st.current))
              if (n > 0 && !UNTRACED_STATES.has(name)) states[name] = (states[name] ?? 0) + n;
            const prev = s.prevTcp?.get(port);
            retransmits += st.retransmits - (prev?.retransmits ?? st.retransmits);
            rstSent += st.rstSent - (prev?.rstSent ?? st.rstSent);
            rstRecv += st.rstRecv - (prev?.rstRecv ?? st.rstRecv);
            drops += st.listenOverflows - (prev?.listenOverflows ?? st.listenOverflows);
            (s.prevTcp ??= new Map()).set(port, { retransmits: st.retransmits, rstSent: st.rstSent, rstRecv: st.rstRecv, listenOverflows: st.listenOverflows });
            // /proc shows no accept-queue maximum; the kernel saw it at each new connection,
            // and the queue's depth then, which may exceed the /proc snapshot.
            max += kd.max;
            if (kd.updatedNs && this.recMs(kd.updatedNs) >= tMs) depth = Math.max(depth, kd.depth);
          } catch (e) {
            this.countError('tcp-stats', e);
          }
        }
      }
    }
    s.timeline.push(tMs, {
      socketStates: states, backlogDepth: depth, backlogMax: max, retransmits, resetsSent: rstSent, resetsReceived: rstRecv,
      listenDrops: drops, workersAlive: alive, deaths, gap: this.droppedThisInterval > 0,
    });
  }

  private lostBetween(fromMs: number, toMs: number): number {
    let first: number | undefined, last: number | undefined;
    for (const [t, total] of this.dropHistory) {
      if (t < fromMs) continue;
      if (t > toMs) break;
      if (first === undefined) first = total;
      last = total;
    }
    const before = this.dropHistory.filter(([t]) => t < fromMs).pop()?.[1] ?? first ?? 0;
    return Math.max(0, (last ?? this.droppedSeen) - before);
  }

  private countError(where: string, e: unknown): void {
    this.errors[where] = (this.errors[where] ?? 0) + 1;
    if (this.errors[where] <= 3 || this.errors[where] % 100 === 0)
      this.log.warn(`${where} failed`, { error: (e as Error)?.message?.split('\n')[0] ?? String(e), count: this.errors[where] });
    this.emit('error-count', where, e);
  }

  // ------------------------------------------------------------ views

  snapshot(): Snapshot {
    const workers: Worker[] = [...this.workers.values()].map((w) => ({
      identity: w.identity, state: w.alive ? 'alive' : 'dead', lastVerdict: w.verdict, diedMs: w.diedMs,
    }));
    return { tMs: Date.now(), services: [...this.services.values()].map((s) => s.service), workers };
  }

  history(key: string, fromMs: number, toMs: number, also: { serviceId?: string; host?: boolean } = {}): HistoryAnswer {
    const out: HistoryAnswer = { timelines: [], markers: [], serviceBuckets: [], hostBuckets: [] };
    const w = key ? this.workers.get(key) : undefined;
    if (w) {
      out.timelines.push({ identity: w.identity, buckets: w.timeline.buckets(fromMs, toMs) });
      out.markers.push(...w.markers.between(fromMs, toMs));
    }
    const s = also.serviceId ? this.services.get(also.serviceId) : undefined;
    if (s) {
      out.serviceBuckets = s.timeline.buckets(fromMs, toMs);
      out.markers.push(...s.markers.between(fromMs, toMs));
    }
    if (also.host) {
      out.hostBuckets = this.host.buckets(fromMs, toMs);
      out.markers.push(...this.hostMarkers.between(fromMs, toMs));
    }
    return out;
  }

  health(): AgentHealth {
    const stats = this.tracer?.stats();
    const names: Record<number, string> = { 1: 'runq_slow', 2: 'fork', 3: 'exec', 4: 'exit', 5: 'signal', 6: 'oom', 7: 'bio_slow', 8: 'tcp', 9: 'gc', 10: 'flood' };
    const delivered: Record<string, number> = {};
    const dropped: Record<string, number> = {};
    for (const [n, name] of Object.entries(names)) {
      delivered[name] = stats?.delivered[Number(n)] ?? 0;
      dropped[name] = stats?.dropped[Number(n)] ?? 0;
    }
    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    let timelineBytes = 0;
    for (const w of this.workers.values()) timelineBytes += w.timeline.bytes();
    for (const s of this.services.values()) timelineBytes += s.timeline.bytes();
    return {
      startedMs: this.startedMs,
      trackedProcesses: this.workers.size,
      trackedWorkersAlive: [...this.workers.values()].filter((w) => w.alive).length,
      refusedOverCap: this.refusedOverCap,
      records: { delivered, dropped, droppedTotal: stats ? stats.dropped.reduce((a, b) => a + b, 0) : 0 },
      features: this.features(),
      memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, timelineBytes },
      cpu: { userMs: cpu.user / 1000, systemMs: cpu.system / 1000 },
      errors: { ...this.errors },
    };
  }
}

/** For `premortem run` without a store directory that can be written: reports and continues. */
export function ensureDataDir(dir: string): string | undefined {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}
