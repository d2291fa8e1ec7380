/**
 * The agent: tracks Python worker pools found by discovery (and every worker
 * their masters fork, from the kernel's fork records), keeps their rolling
 * timelines, raises pre-failure markers, and on each death decides a verdict
 * and freezes the minutes before into a post-mortem bundle.
 *
 * This facade wires the rooms together and owns their life cycle:
 *   registry/  who is tracked (identities, services, slots) and the kernel pid filter
 *   probes/    each probe's records and what the agent does with them (ingest)
 *   sampling/  the tick: one bucket per timeline per interval, and the markers it raises
 *   deaths/    verdicts and post-mortem bundles
 *   core/      clock, markers, loss, errors
 * Listeners get typed events (events.ts): 'tick', 'death', 'bundle', 'lost', 'topology', 'store-error'.
 */
import { EventEmitter } from 'events';
import { AgentOptions, AgentOptionsInput, resolveOptions, ringCapacity } from './config';
import { Clock, createClock } from './core/clock';
import { createErrorCounter, ErrorCounter } from './core/errors';
import { createLossLedger, LossLedger } from './core/loss';
import { createMarkerBoard, MarkerBoard } from './core/markers';
import { createJudge, Judge } from './deaths/judge';
import { createWhy, type Why } from './deaths/why-facts';
import type { WhyFacts } from './deaths/why-text';
import type { AgentEvents } from './events';
import { probeFeatures } from './features';
import { createIngest } from './ingest/context';
import { log as defaultLog, Logger } from './log';
import { loadAddon, Tracer } from './native';
import { allHandlers, PROBES } from './probes';
import { TcpWatcher } from './probes/tcp';
import { unwatchServicePorts, watchServicePorts } from './probes/tcp/services';
import type { Feature, Snapshot } from '../proto/codec';
import { createPythonGc, PythonGc } from './python/gc';
import { createInterpreterCache } from './python/interpreter';
import { createStackSampler } from './python/stacks';
import { createKernelFilter } from './registry/kernel-filter';
import { Registry } from './registry/registry';
import { createWatch, Watch } from './registry/watch';
import { createHostSampler } from './sampling/host';
import { createServiceSampler } from './sampling/service';
import { createStackWatch, StackWatch, StackWatchStats } from './sampling/stacks';
import { createTicker, Ticker } from './sampling/ticker';
import { createWorkerSampler } from './sampling/worker';
import type { BundleStore } from './store';
import { HostTimeline } from './timeline';
import { AgentHealth, healthOf, HistoryAnswer, historyOf, snapshotOf } from './views';

export type { AgentHealth, HistoryAnswer } from './views';
export type { TickEvent } from './events';

export const AGENT_VERSION: string = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../package.json').version as string;
  } catch {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('../../package.json').version as string;
  }
})();

export interface Agent extends EventEmitter<AgentEvents> {
  readonly options: AgentOptions;
  start(): Promise<void>;
  stop(): Promise<void>;
  snapshot(): Snapshot;
  features(): Feature[];
  health(): AgentHealth;
  /** A worker's buckets and markers between two times; also its service's and the host's when asked. */
  history(workerKey: string, fromMs: number, toMs: number, also?: { serviceId?: string; host?: boolean }): HistoryAnswer;
  /**
   * Where a live worker's last window went (default: its server's timeout) and the requests it
   * has in flight; null: no such live worker.
   */
  why(workerKey: string, windowMs?: number): WhyFacts | null;
  /** Tracks one process now (explicit --pid). */
  trackPid(pid: number): boolean;
  /** The native tracer once started (tools and tests that drive probe maps, e.g. flood_cfg). */
  nativeTracer(): Tracer | undefined;
  /** Python stack sampling: samples, time spent, passes (undefined when off or not started). */
  stackStats(): StackWatchStats | undefined;
}

export interface AgentDeps {
  store?: BundleStore;
  logger?: Logger;
  tracer?: Tracer;
}

export function createAgent(input: AgentOptionsInput = {}, deps: AgentDeps = {}): Agent {
  return new AgentImpl(resolveOptions(input), deps);
}

/** What exists once the agent runs (it needs the tracer). */
interface Running {
  clock: Clock;
  tracer: Tracer;
  registry: Registry;
  watch: Watch;
  judge: Judge;
  ticker: Ticker;
  pythonGc: PythonGc;
  stacks?: StackWatch;
  probeFeatures: Feature[];
  why: Why;
}

class AgentImpl extends EventEmitter<AgentEvents> implements Agent {
  readonly options: AgentOptions;
  private readonly log: Logger;
  private readonly store?: BundleStore;
  private readonly givenTracer?: Tracer;
  private readonly errors: ErrorCounter;
  private readonly markers: MarkerBoard;
  private readonly loss: LossLedger = createLossLedger();
  private readonly host: HostTimeline;
  private running?: Running;
  private startedMs = 0;
  private stopped = false;
  private stopping?: Promise<void>;

  constructor(options: AgentOptions, deps: AgentDeps) {
    super();
    this.options = options;
    this.log = deps.logger ?? defaultLog;
    this.store = deps.store;
    this.givenTracer = deps.tracer;
    this.errors = createErrorCounter(this.log);
    this.markers = createMarkerBoard(options.thresholds.markerCooldownS * 1000, options.maxMarkersPerWorker);
    this.host = new HostTimeline(ringCapacity(options));
  }

  async start(): Promise<void> {
    this.startedMs = Date.now();
    const o = this.options;
    // Records are handed over on the event loop, after this synchronous wiring is complete.
    let onBatch = (_batch: ArrayBuffer) => undefined as void;
    const tracer = this.givenTracer ?? this.openTracer((b) => onBatch(b));
    if (!this.givenTracer && !loadAddon().tuneMalloc()) this.log.warn('malloc settings refused: the agent may hold more freed memory');
    const clock = createClock(o.intervalMs, () => loadAddon().bootTimeNs());
    const { loaded, features } = probeFeatures(tracer, this.log);
    const tcp = loaded.has('tcp') ? new TcpWatcher(tracer) : undefined;
    const interpreters = createInterpreterCache(); // one read per interpreter binary, for GC probes and stacks
    const pythonGc = createPythonGc({ tracer, log: this.log, interpreters });
    const kernel = createKernelFilter(tracer, loaded, this.errors, () => this.stopped);
    const registry = new Registry(o, clock, kernel, this.log, {
      registered: (w, forked) => { if (!forked) this.attachGc(pythonGc, loaded, w.identity.pid); }, // a fork runs its parent's interpreter
      ports: (s) => { if (tcp) watchServicePorts(tcp, s, this.errors); },
      forgotten: (s) => { if (tcp) unwatchServicePorts(tcp, s); },
      topology: () => this.emit('topology'),
    });
    const workerSampler = createWorkerSampler(tracer, loaded, o, clock, this.loss, this.markers);
    const why = createWhy({ options: o, clock, tracer, loaded, registry, threads: workerSampler.threads });
    const stacks = o.stackIntervalMs > 0
      ? createStackWatch({ options: o, registry, sampler: createStackSampler({ interpreters }), errors: this.errors }) : undefined;
    const judge = createJudge({ why,
      options: o, agentVersion: AGENT_VERSION, clock, tracer, registry, host: this.host, loss: this.loss, markers: this.markers,
      sampler: workerSampler, store: this.store, stacks, log: this.log, errors: this.errors,
      emit: {
        death: (d) => this.emit('death', d), bundle: (i, b) => this.emit('bundle', i, b),
        storeError: (code, message) => this.emit('store-error', code, message), topology: () => this.emit('topology'),
      },
    });
    const watch = createWatch(o, registry, this.errors, (w, tMs) => judge.schedule(w, tMs));
    const ingest = createIngest(allHandlers({
      options: o, clock, registry, markers: this.markers, judge, watch, errors: this.errors,
      topology: () => this.emit('topology'),
      execed: (pid) => this.attachGc(pythonGc, loaded, pid),
    }), this.errors);
    onBatch = (b) => ingest.onBatch(b);
    const ticker = createTicker({
      options: o, clock, tracer, registry, host: this.host, loss: this.loss, markers: this.markers, errors: this.errors,
      samplers: { worker: workerSampler, service: createServiceSampler(o, clock, registry, tcp, this.loss, this.errors), host: createHostSampler(tracer, loaded, this.errors) },
      emit: { tick: (t) => { stacks?.onMarkers(t.markers); this.emit('tick', t); }, lost: (l) => this.emit('lost', l) },
    });
    this.running = { clock, tracer, registry, watch, judge, ticker, pythonGc, stacks, probeFeatures: features, why };
    watch.start();
    ticker.start();
    stacks?.start();
    this.log.info('agent started', { probes: [...loaded].join(','), intervalMs: o.intervalMs, windowMs: o.windowMs });
  }

  private openTracer(onRecords: (batch: ArrayBuffer) => void): Tracer {
    const o = this.options;
    const wants = (probe: string) => (o.probes === undefined || o.probes.includes(probe)) && (probe !== 'requests' || o.requests);
    // --no-requests: the requests probe is not loaded at all.
    const probes = o.requests ? o.probes : (o.probes ?? PROBES.map((p) => p.name).filter((n) => n !== 'flood')).filter((n) => n !== 'requests');
    return new (loadAddon().Tracer)({
      probes,
      ringBufferBytes: o.ringBufferBytes,
      disablePrograms: o.disablePrograms,
      rodata: {
        runqlat: { targ_min_us: o.slowWaitUs },
        ...(wants('disk') ? { disk: { targ_slow_us: o.slowBioUs } } : {}),
        ...(wants('pygc') ? { pygc: { targ_gc_min_us: o.gcRecordUs } } : {}),
        ...(wants('requests') ? { requests: { targ_keep_query: o.requestQuery ? 1 : 0 } } : {}),
      },
      onRecords,
    });
  }

  /** GC probes attach once per interpreter binary (every process using it), not per pid: agent/python/gc.ts. */
  private attachGc(gc: PythonGc, loaded: ReadonlySet<string>, pid: number): void {
    if (!loaded.has('pygc')) return;
    try {
      gc.attachFor(pid);
    } catch (e) {
      this.errors.count('gc-target', e);
    }
  }

  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.stopped = true;
      const r = this.running;
      const results = await Promise.allSettled([
        (async () => {
          r?.ticker.stop();
          r?.watch.stop();
          r?.judge.stop();
          r?.stacks?.stop();
          r?.pythonGc.close();
          if (r && !this.givenTracer) r.tracer.close();
        })(),
      ]);
      for (const x of results) if (x.status === 'rejected') this.log.error('stop failed', { error: String(x.reason) });
      this.log.info('agent stopped');
    })();
    return this.stopping;
  }

  nativeTracer(): Tracer | undefined {
    return this.running?.tracer;
  }

  features(): Feature[] {
    if (!this.running) return [];
    const o = this.options;
    const off: Feature[] = o.requests ? [] : [{ name: 'requests', enabled: false, reason: 'off (--no-requests)' }];
    const stacks: Feature = o.stackIntervalMs > 0
      ? { name: 'python-stacks', enabled: true, reason: `every ${o.stackIntervalMs} ms per worker (${o.stackBurstIntervalMs} ms for ${o.stackBurstMs / 1000} s after a marker or a stop signal)` }
      : { name: 'python-stacks', enabled: false, reason: 'turned off (stackIntervalMs 0)' };
    return [...this.running.probeFeatures, ...off, ...this.running.pythonGc.features(), stacks];
  }

  stackStats(): StackWatchStats | undefined {
    return this.running?.stacks?.stats();
  }

  why(key: string, windowMs?: number): WhyFacts | null {
    const r = this.running;
    const w = r?.registry.workers.get(key);
    return r && w?.alive ? r.why.live(w, Date.now(), windowMs) : null;
  }

  trackPid(pid: number): boolean {
    return this.running?.registry.trackPid(pid) ?? false;
  }

  snapshot(): Snapshot {
    return this.running ? snapshotOf(this.running.registry) : { tMs: Date.now(), services: [], workers: [] };
  }

  history(key: string, fromMs: number, toMs: number, also: { serviceId?: string; host?: boolean } = {}): HistoryAnswer {
    if (!this.running) return { timelines: [], markers: [], serviceBuckets: [], hostBuckets: [] };
    return historyOf(this.running.registry, this.host, this.markers, key, fromMs, toMs, also);
  }

  health(): AgentHealth {
    return healthOf(this.startedMs, this.running?.registry, this.running?.tracer, this.features(), this.errors.counts());
  }
}
