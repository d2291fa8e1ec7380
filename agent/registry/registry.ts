/**
 * The registry: every process the agent tracks and every service it belongs
 * to, with their identities (pid + start ticks: a reused pid is another
 * process), the worker slots and generations of each service, and the kernel
 * pid filter kept in step. One owner for this state; the rest of the agent
 * asks it.
 */
import type { AgentOptions } from '../config';
import { ringCapacity } from '../config';
import type { Clock } from '../core/clock';
import { NS_PER_TICK } from '../core/clock';
import { cpuCgroupOf, readCpuThrottling } from '../cgroup/cpu';
import type { Logger } from '../log';
import type { Role, ServiceKind } from '../../proto/codec';
import { workerKey } from '../../proto/codec';
import { readCmdline, readStat } from '../procfs';
import { MarkerRing, ServiceTimeline, WorkerTimeline } from '../timeline';
import { DiscoveredProcess, DiscoveredService, serviceName } from './discovery';
import type { KernelFilter } from './kernel-filter';
import type { ServiceState, WorkerState } from './state';

/** Dead workers kept (for siblings' context in later bundles) before the oldest is forgotten. */
const MAX_DEAD_WORKERS = 256;
/** Failure times kept per service instance and per lineage (restart storms look back one window). */
export const MAX_DEATH_TIMES = 1000;
/** Service lineages whose recent failures are kept (oldest forgotten first). */
const MAX_LINEAGES = 256;
/** CPU cgroups followed per service (a pool normally shares one). */
const MAX_CPU_CGROUPS_PER_SERVICE = 8;
/** The cap on tracked processes is said at most this often. */
const CAP_WARN_EVERY_MS = 60_000;
/** A command line is kept up to this length. */
const MAX_CMDLINE = 512;

export interface RegistryHooks {
  /** A process started being tracked (`forked`: from its parent's fork record, before it ran anything). */
  registered(w: WorkerState, forked: boolean): void;
  /** A service's listening ports are known or changed. */
  ports(s: ServiceState): void;
  /** A service with no live process was forgotten. */
  forgotten(s: ServiceState): void;
  /** Services or processes came or went. */
  topology(): void;
}

export interface RegisterOptions {
  comm?: string;
  /** Seen at its fork: the kernel tracks it already (its master follows forks) and its maps are its own. */
  forked?: boolean;
}

export class Registry {
  readonly workers = new Map<string, WorkerState>();
  readonly services = new Map<string, ServiceState>();
  private readonly pidToKey = new Map<number, string>();
  private readonly lineages = new Map<string, number[]>();
  private nextTcpId = 1;
  private lastCapWarnMs = 0;
  refusedOverCap = 0;

  constructor(
    private readonly options: AgentOptions,
    private readonly clock: Clock,
    private readonly kernel: KernelFilter,
    private readonly log: Logger,
    private readonly hooks: RegistryHooks,
  ) {}

  /** Tracks one process by pid, as a service of its own (explicit --pid). */
  trackPid(pid: number): boolean {
    const st = readStat(pid);
    if (!st) return false;
    const cmd = readCmdline(pid) ?? [];
    const proc: DiscoveredProcess = { pid, startTicks: st.startTicks, ppid: st.ppid, comm: st.comm, cmdline: cmd, exe: '' };
    this.adoptService({
      id: `python-${pid}-${st.startTicks}`, name: serviceName('python', cmd, []), kind: 'python', master: proc, workers: [],
      ports: [], cgroup: '', memoryCgroup: '', unit: '',
    });
    return true;
  }

  /** A service as discovery found it: created the first time, its ports and processes kept up to date. */
  adoptService(d: DiscoveredService): ServiceState {
    let s = this.services.get(d.id);
    if (!s) {
      s = this.newService(d);
      this.services.set(d.id, s);
      this.log.info('service found', { service: d.name, master: d.master.pid, workers: d.workers.length, ports: d.ports.join(',') });
      this.hooks.topology();
    }
    s.lastSeenMs = Date.now();
    if (d.ports.length && d.ports.join() !== s.service.ports.join()) {
      s.service.ports = d.ports;
      s.service.name = d.name;
      this.hooks.topology();
    }
    this.hooks.ports(s);
    const masterRole: Role = d.workers.length || s.slots.length ? 'master' : 'standalone';
    this.register(d.master, s, masterRole);
    for (const w of d.workers) this.register(w, s, 'worker');
    this.noteCpuCgroups(s, [d.master, ...d.workers]);
    return s;
  }

  private newService(d: DiscoveredService): ServiceState {
    return {
      service: { id: d.id, name: d.name, kind: d.kind as ServiceKind, masterPid: d.master.pid, masterStartTicks: d.master.startTicks,
        ports: d.ports, cgroup: d.cgroup, unit: d.unit },
      timeline: new ServiceTimeline(d.id, ringCapacity(this.options), this.options.intervalMs),
      markers: new MarkerRing(this.options.maxMarkersPerWorker),
      masterKey: workerKey(d.master.pid, d.master.startTicks),
      slots: [],
      deathTimes: [],
      lineage: `${d.kind}|${d.unit || d.cgroup}|${d.master.cmdline.join(' ')}`,
      tcpId: this.nextTcpId++,
      lastSeenMs: Date.now(),
      cpuCgroups: new Map(),
    };
  }

  /** Cgroup membership changes rarely: it is re-read at discovery, not per tick or per fork. */
  private noteCpuCgroups(s: ServiceState, procs: DiscoveredProcess[]): void {
    for (const p of procs) {
      const cg = cpuCgroupOf(p.pid);
      if (!cg || s.cpuCgroups.has(cg.dir)) continue;
      if (s.cpuCgroups.size >= MAX_CPU_CGROUPS_PER_SERVICE) break;
      s.cpuCgroups.set(cg.dir, { cg, last: readCpuThrottling(cg) ?? undefined });
    }
  }

  /** Starts tracking one process of a service (idempotent); undefined when refused. */
  register(p: DiscoveredProcess, s: ServiceState, role: Role, opts: RegisterOptions = {}): WorkerState | undefined {
    const key = workerKey(p.pid, p.startTicks);
    const existing = this.workers.get(key);
    if (existing) {
      if (existing.identity.role !== role && role === 'master') existing.identity.role = role;
      return existing;
    }
    if (this.aliveCount() >= this.options.maxTrackedProcesses) {
      this.refuseOverCap(p.pid, opts.forked ?? false);
      return undefined;
    }
    // Tracking from /proc starts now: whatever the kernel maps hold for this pid belongs to
    // an earlier holder of the pid. A forked child's entries are its own (tracked from fork).
    if (!opts.forked) this.kernel.clearMaps(p.pid);
    // A standalone server follows forks too: its first child must be tracked from its fork
    // (a pre-fork pool found before it forked), not from whenever the agent reads the record.
    if (!this.kernel.track(p.pid, p.startTicks, role === 'master' || role === 'standalone')) return undefined;
    const slot = role === 'worker' ? this.takeSlot(s, key) : -1;
    const w = this.newWorker(p, s, role, slot, opts.comm);
    // A pid reused by a fork before its previous holder was judged: the kernel's per-pid
    // counters hold both, so this process's deltas start from its predecessor's last reading.
    const predecessor = this.workers.get(this.pidToKey.get(p.pid) ?? '');
    if (opts.forked && predecessor && predecessor.key !== key) w.prev = predecessor.prev;
    this.workers.set(key, w);
    this.pidToKey.set(p.pid, key);
    this.hooks.registered(w, opts.forked ?? false);
    this.hooks.topology();
    return w;
  }

  private refuseOverCap(pid: number, forked: boolean): void {
    this.refusedOverCap++;
    if (Date.now() - this.lastCapWarnMs > CAP_WARN_EVERY_MS) {
      this.lastCapWarnMs = Date.now();
      this.log.warn(`tracked-process cap reached (${this.options.maxTrackedProcesses}): not tracking pid ${pid} and later ones; raise --max-tracked`, { refused: this.refusedOverCap });
    }
    // A forked child is already in the kernel's filter (its master follows forks): take it out.
    if (forked) this.kernel.untrack(pid);
  }

  /** A new worker takes the slot of the oldest dead one, one generation up. */
  private takeSlot(s: ServiceState, key: string): number {
    const free = s.slots.findIndex((x) => x.key === null);
    if (free < 0) {
      s.slots.push({ generation: 0, key });
      return s.slots.length - 1;
    }
    s.slots[free].generation++;
    s.slots[free].key = key;
    return free;
  }

  private newWorker(p: DiscoveredProcess, s: ServiceState, role: Role, slot: number, comm?: string): WorkerState {
    const cmd = p.cmdline.length ? p.cmdline : readCmdline(p.pid) ?? [];
    return {
      key: workerKey(p.pid, p.startTicks),
      identity: {
        pid: p.pid, startTicks: p.startTicks, comm: comm ?? p.comm, cmdline: cmd.join(' ').slice(0, MAX_CMDLINE), serviceId: s.service.id,
        generation: slot >= 0 ? s.slots[slot].generation : 0, slot: Math.max(slot, 0), role, ppid: p.ppid, startedMs: this.clock.bootMs + p.startTicks * (NS_PER_TICK / 1e6),
      },
      alive: true,
      diedMs: 0,
      timeline: new WorkerTimeline(ringCapacity(this.options), this.options.intervalMs),
      markers: new MarkerRing(this.options.maxMarkersPerWorker),
      signals: [],
      slot,
      judging: false,
      slowWaits: { count: 0 },
    };
  }

  /** A process the kernel tracks (its parent followed forks) that the agent does not know: out of the filter. */
  untrackUnknown(pid: number): void {
    if (!this.pidToKey.has(pid)) this.kernel.untrack(pid);
  }

  /** The process a record is about: by identity when the record carries the start time. */
  workerByPid(pid: number, startNs?: number): WorkerState | undefined {
    if (startNs !== undefined && startNs > 0) return this.workers.get(workerKey(pid, Math.floor(startNs / NS_PER_TICK)));
    const key = this.pidToKey.get(pid);
    return key ? this.workers.get(key) : undefined;
  }

  serviceOf(w: WorkerState): ServiceState | undefined {
    return this.services.get(w.identity.serviceId);
  }

  serviceByTcpId(id: number): ServiceState | undefined {
    for (const s of this.services.values()) if (s.tcpId === id) return s;
    return undefined;
  }

  aliveCount(): number {
    let n = 0;
    for (const w of this.workers.values()) if (w.alive) n++;
    return n;
  }

  /** Live workers (role worker) of one service. */
  liveWorkers(serviceId: string): number {
    let n = 0;
    for (const w of this.workers.values()) if (w.alive && w.identity.serviceId === serviceId && w.identity.role === 'worker') n++;
    return n;
  }

  /** Dead: its slot is free at once (the master may fork the replacement before the verdict is in). */
  releaseSlot(w: WorkerState): void {
    const s = this.serviceOf(w);
    if (s && w.slot >= 0 && s.slots[w.slot]?.key === w.key) s.slots[w.slot].key = null;
  }

  /**
   * Stops tracking a process; its timeline stays (bounded) for its siblings' bundles.
   * `forget`: it was not a worker after all (a pool helper): its slot and timeline go too.
   */
  retire(w: WorkerState, forget: boolean): void {
    const s = this.serviceOf(w);
    // The pid may already belong to a newer process we track: leave that one alone.
    const pidTakenByOther = this.pidToKey.has(w.identity.pid) && this.pidToKey.get(w.identity.pid) !== w.key;
    if (forget && s && w.slot >= 0 && s.slots[w.slot]?.key === w.key) {
      // Not a worker after all: give its slot back without counting a generation.
      s.slots[w.slot].key = null;
      if (s.slots[w.slot].generation === 0 && w.slot === s.slots.length - 1) s.slots.pop();
      else s.slots[w.slot].generation = Math.max(0, s.slots[w.slot].generation - 1);
    }
    if (!pidTakenByOther) this.kernel.untrack(w.identity.pid);
    if (this.pidToKey.get(w.identity.pid) === w.key) this.pidToKey.delete(w.identity.pid);
    w.alive = false;
    if (forget) this.workers.delete(w.key);
    this.trimDead();
  }

  /** Dead timelines stay for siblings' bundles: one window long, at most MAX_DEAD_WORKERS. */
  private trimDead(): void {
    const dead = [...this.workers.values()].filter((x) => !x.alive).sort((a, b) => a.diedMs - b.diedMs);
    const cutoff = Date.now() - this.options.windowMs;
    let excess = dead.length - MAX_DEAD_WORKERS;
    for (const x of dead) {
      if (x.diedMs >= cutoff && excess <= 0) break;
      this.workers.delete(x.key);
      excess--;
    }
  }

  /** Services whose master is gone and that have no live process left are forgotten after the window. */
  forgetIdleServices(now: number): void {
    for (const [id, s] of this.services) {
      const live = [...this.workers.values()].some((w) => w.alive && w.identity.serviceId === id);
      if (!live && now - s.lastSeenMs > this.options.windowMs) {
        this.services.delete(id);
        this.hooks.forgotten(s);
        this.hooks.topology();
      }
    }
  }

  /** Records a failure of a service; the failure times of every instance of its lineage, newest last. */
  noteFailure(s: ServiceState, deathMs: number): number[] {
    s.deathTimes.push(deathMs);
    while (s.deathTimes.length > MAX_DEATH_TIMES) s.deathTimes.shift();
    let times = this.lineages.get(s.lineage);
    if (!times) {
      if (this.lineages.size >= MAX_LINEAGES) this.lineages.delete(this.lineages.keys().next().value!);
      this.lineages.set(s.lineage, (times = []));
    }
    times.push(deathMs);
    const keepMs = this.options.thresholds.restartStormWindowS * 1000;
    while (times.length && (times[0] < deathMs - keepMs || times.length > MAX_DEATH_TIMES)) times.shift();
    return times;
  }
}
