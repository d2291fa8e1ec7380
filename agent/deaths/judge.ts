/**
 * Deaths: a tracked process exits (or vanishes); after a short settle, and once
 * every record the kernel submitted before it is in (settle.ts: a pass-count
 * barrier, a sync per batch only when the reader is behind), its last bucket is taken, its last
 * Python stacks frozen, the verdict decided from the facts gathered meanwhile
 * (with what its master's log says), and a failure's minutes before are frozen
 * into a post-mortem bundle and written to the store.
 */
import type { AgentOptions } from '../config';
import type { Clock } from '../core/clock';
import type { ErrorCounter } from '../core/errors';
import type { LossLedger } from '../core/loss';
import { MarkerBoard, marker } from '../core/markers';
import { rereadMemoryCgroup } from '../cgroup/memory';
import { restartStorm } from '../detectors';
import type { Logger } from '../log';
import type { Tracer } from '../native';
import type { Bundle, Death, IncidentSummary, Verdict } from '../../proto/codec';
import type { Registry } from '../registry/registry';
import type { ServiceState, WorkerState } from '../registry/state';
import { subjectOf, WorkerSampler } from '../sampling/worker';
import type { BundleStore } from '../store';
import { makeBundleId } from '../store';
import type { HostTimeline } from '../timeline';
import type { FrozenStacks } from '../sampling/stack-ring';
import { buildBundle, TimelineSource } from './bundle';
import { createMasterLogReader } from './master-log';
import { createSettleQueue, SettleStats, tracerBarrier } from './settle';
import { decideVerdict, SIGNAL_LOOKBACK_MS } from './verdict';

export interface JudgeDeps {
  options: AgentOptions;
  agentVersion: string;
  clock: Clock;
  tracer: Tracer;
  registry: Registry;
  host: HostTimeline;
  loss: LossLedger;
  markers: MarkerBoard;
  sampler: WorkerSampler;
  store?: BundleStore;
  /** The workers' last Python stacks (agent/sampling/stacks.ts); absent when stack sampling is off. */
  stacks?: { freeze(w: WorkerState): FrozenStacks | undefined };
  log: Logger;
  errors: ErrorCounter;
  emit: {
    death(d: Death): void;
    bundle(i: IncidentSummary, b: Bundle): void;
    storeError(code: string, message: string): void;
    topology(): void;
  };
}

export interface Judge {
  /** A death at `deathMs` (from its exit record, or when it was found gone): judged after the settle time. */
  schedule(w: WorkerState, deathMs: number): void;
  stop(): void;
  /** Batches judged, syncs with the record reader, deaths judged without one. */
  stats(): SettleStats;
}


export function createJudge(d: JudgeDeps): Judge {
  let stopped = false;
  const masterLogs = createMasterLogReader();

  const source = (w: WorkerState): TimelineSource => ({
    identity: w.identity,
    buckets: (from, to) => w.timeline.buckets(from, to),
    markers: (from, to) => w.markers.between(from, to),
  });

  const bundleFor = (w: WorkerState, s: ServiceState | undefined, verdict: Verdict, id: string, deathMs: number, stacks?: FrozenStacks) => {
    const from = deathMs - d.options.bundleWindowMs;
    const to = deathMs + d.options.intervalMs;
    const siblings = s ? [...d.registry.workers.values()].filter((x) => x !== w && x.identity.serviceId === s.service.id
      && x.identity.role === 'worker' && (x.alive || x.diedMs >= from)) : [];
    const master = s ? d.registry.workers.get(s.masterKey) : undefined;
    // The cgroup the OOM killer acted in, else the dead worker's own (it may differ from the
    // master's), re-read for fresh event counters: the facts name what the summary names.
    const known = w.oomCgroup ?? w.memoryCgroup;
    return buildBundle({
      id, agentVersion: d.agentVersion, intervalMs: d.options.intervalMs, windowStartMs: from, windowEndMs: to,
      dead: source(w), siblings: siblings.map(source), master: master && master !== w ? source(master) : undefined,
      service: s?.service, serviceBuckets: s ? s.timeline.buckets(from, to) : [], serviceMarkers: s ? s.markers.between(from, to) : [],
      hostBuckets: d.host.buckets(from, to), hostMarkers: d.markers.host.markers.between(from, to),
      verdict, cgroup: known ? rereadMemoryCgroup(known) : null,
      cpu: s ? [...s.cpuCgroups.values()].find((c) => c.last?.quotaUs)?.last : undefined,
      lostRecords: d.loss.between(from, to),
      stacks: stacks?.stacks.map((k) => k.sample), stackSampling: stacks?.sampling,
    });
  };

  const verdictOf = (w: WorkerState, s: ServiceState | undefined, deathMs: number, stacks?: FrozenStacks): Verdict => {
    const e = w.exit;
    const master = s ? d.registry.workers.get(s.masterKey) : undefined;
    const hasMaster = w.identity.role === 'worker' && master && master !== w;
    // A master's log line about a kill comes just before its first signal: read after that.
    const firstFromMaster = hasMaster ? w.signals.find((x) => !x.kernel && x.senderPid === master.identity.pid && x.tMs >= deathMs - SIGNAL_LOOKBACK_MS) : undefined;
    return decideVerdict({
      exit: {
        pid: w.identity.pid, comm: w.identity.comm, tMs: deathMs,
        exitStatus: e?.exitStatus ?? 0, termSignal: e?.termSignal ?? 0, coreDumped: e?.coreDumped ?? false,
      },
      exitSeen: e !== undefined,
      signals: w.signals,
      oom: w.oom,
      masterPid: w.identity.role === 'worker' ? master?.identity.pid ?? w.identity.ppid : undefined,
      masterComm: master?.identity.comm,
      rss: w.timeline.series('rssBytes').map(([t, v], i, a) => [i === a.length - 1 ? deathMs : t + d.options.intervalMs, v]),
      lostRecords: d.loss.between(deathMs - d.options.bundleWindowMs, deathMs),
      stacks: stacks?.stacks,
      master: hasMaster && master.alive ? masterLogs.factsFor(master.key, master.identity.pid, master.identity.comm, w.identity.pid, firstFromMaster?.tMs ?? 0) : undefined,
      masterSignals: hasMaster ? master.signals : undefined,
    });
  };

  /** A failure counts for its service's restart storm (across restarts of the same lineage). */
  const noteFailure = (s: ServiceState, deathMs: number) => {
    const storm = restartStorm(s.service.id, d.registry.noteFailure(s, deathMs), deathMs, d.options.thresholds);
    if (storm) d.markers.raise(s, storm);
  };

  const writeBundle = async (w: WorkerState, s: ServiceState | undefined, verdict: Verdict, deathMs: number, stacks?: FrozenStacks) => {
    const bundleId = makeBundleId(deathMs, w.identity.pid);
    const bundle = bundleFor(w, s, verdict, bundleId, deathMs, stacks);
    d.emit.death({ identity: w.identity, verdict, bundleId, tMs: deathMs });
    try {
      const { incident } = await d.store!.write(bundle);
      d.log.info(`post-mortem ${incident.id}: ${verdict.kind}`, { pid: w.identity.pid, summary: verdict.summary });
      d.emit.bundle(incident, bundle);
    } catch (err) {
      d.errors.count('bundle-write', err);
      d.emit.storeError((err as { code?: string }).code ?? 'PREMORTEM_ERR_STORE', `post-mortem of pid ${w.identity.pid} not written: ${(err as Error).message}`);
      d.log.error('could not write the post-mortem bundle; tracing continues', { pid: w.identity.pid, error: (err as Error).message });
    }
  };

  const judge = async (w: WorkerState, seenMs: number, synced: boolean) => {
    if (stopped) return;
    // Found gone by a scan, its exit record may have come in while it waited: that time is the death's.
    const deathMs = w.exit ? d.clock.recMs(w.exit.tsNs) : seenMs;
    const s = d.registry.serviceOf(w);
    // A last bucket for the partial interval, with the RSS current at death.
    d.sampler.sample(w, d.clock.intervalStart(deathMs), true);
    w.alive = false;
    w.diedMs = deathMs;
    const stacks = d.stacks?.freeze(w);
    const verdict = verdictOf(w, s, deathMs, stacks);
    if (!synced) verdict.evidence.push({ what: 'records', value: 'the kernel record reader was behind when this death was judged: records sent just before it may be missing', tMs: deathMs, number: 0, unit: '' });
    w.verdict = verdict;
    d.markers.raise(w, marker(deathMs, verdict.kind === 'oom-killed' ? 'oom-kill' : 'exit', subjectOf(w), verdict.failure ? 'critical' : 'info',
      verdict.summary, { exitCode: verdict.exitCode, signal: verdict.signal }, { verdict: verdict.kind }), true);
    if (s && verdict.failure) noteFailure(s, deathMs);
    d.registry.retire(w, false);
    if (d.store && (verdict.failure || d.options.bundleCleanExits)) await writeBundle(w, s, verdict, deathMs, stacks);
    else {
      d.emit.death({ identity: w.identity, verdict, bundleId: '', tMs: deathMs });
      d.log.info(`worker ${w.identity.pid} ${verdict.kind}`, { summary: verdict.summary });
    }
    d.emit.topology();
  };

  // Deaths due together are judged once the records before them are in (settle.ts).
  const settle = createSettleQueue<{ w: WorkerState; deathMs: number }>(tracerBarrier(d.tracer), (due, synced) => {
    for (const x of due) judge(x.w, x.deathMs, synced).catch((e) => d.errors.count('judge', e));
  });

  return {
    schedule(w, deathMs) {
      if (w.judging) return;
      w.judging = true;
      d.registry.releaseSlot(w); // the master may fork the replacement before the verdict is in
      settle.add({ w, deathMs }, Date.now() + d.options.deathSettleMs);
    },
    stop() {
      stopped = true;
      settle.stop();
    },
    stats: () => settle.stats(),
  };
}
