/**
 * Deaths: a tracked process exits (or vanishes); after a short settle, and once
 * every record the kernel submitted before it is in (settle.ts: a pass-count
 * barrier, a sync per batch only when the reader is behind), its last bucket is taken, its last
 * Python stacks frozen, the verdict decided from the facts gathered meanwhile
 * (with what its master's log says), and a failure's minutes before are frozen
 * into a post-mortem bundle and written to the store. The facts come from
 * death-facts.ts, the bundle's contents from death-bundle.ts.
 */
import type { AgentOptions } from '../config';
import type { Clock } from '../core/clock';
import type { ErrorCounter } from '../core/errors';
import type { LossLedger } from '../core/loss';
import { MarkerBoard, marker } from '../core/markers';
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
import { bundleOfDeath } from './death-bundle';
import { gatherDeathFacts } from './death-facts';
import { createMasterLogReader, type MasterLogReader } from './master-log';
import { createSettleQueue, SettleStats, tracerBarrier } from './settle';
import { decideVerdict } from './verdict';
import { addNamespacedPids } from '../container/pids';
import type { Why } from './why-facts';

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
  /** Where the last seconds went, the requests in flight (absent: not gathered). */
  why?: Why;
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


/** The dead worker's last bucket, its stacks frozen, its verdict decided and kept on it. */
function decideDeath(d: JudgeDeps, masterLogs: MasterLogReader, w: WorkerState, s: ServiceState | undefined, deathMs: number, synced: boolean) {
  // A last bucket for the partial interval, with the RSS current at death.
  d.sampler.sample(w, d.clock.intervalStart(deathMs), true);
  w.alive = false;
  w.diedMs = deathMs;
  const stacks = d.stacks?.freeze(w);
  const verdict = decideVerdict(gatherDeathFacts({ ...d, masterLogs }, w, s, deathMs, stacks));
  if (!synced) verdict.evidence.push({ what: 'records', value: 'the kernel record reader was behind when this death was judged: records sent just before it may be missing', tMs: deathMs, number: 0, unit: '' });
  addNamespacedPids(verdict, w.identity, s ? d.registry.workers.get(s.masterKey)?.identity : undefined); // the pids its own logs print
  w.verdict = verdict;
  return { verdict, stacks };
}

/** The death on its timeline, in its service's restart storm, and out of the registry. */
function recordDeath(d: JudgeDeps, w: WorkerState, s: ServiceState | undefined, verdict: Verdict, deathMs: number): void {
  d.markers.raise(w, marker(deathMs, verdict.kind === 'oom-killed' ? 'oom-kill' : 'exit', subjectOf(w), verdict.failure ? 'critical' : 'info',
    verdict.summary, { exitCode: verdict.exitCode, signal: verdict.signal }, { verdict: verdict.kind }), true);
  if (s && verdict.failure) noteFailure(d, s, deathMs);
  d.registry.retire(w, false);
}

/** A failure counts for its service's restart storm (across restarts of the same lineage). */
function noteFailure(d: JudgeDeps, s: ServiceState, deathMs: number): void {
  const storm = restartStorm(s.service.id, d.registry.noteFailure(s, deathMs), deathMs, d.options.thresholds);
  if (storm) d.markers.raise(s, storm);
}

/** The death announced with its bundle's id, the bundle written; a store failure is told, tracing goes on. */
async function writeBundle(d: JudgeDeps, store: BundleStore, w: WorkerState, s: ServiceState | undefined, verdict: Verdict, deathMs: number, stacks?: FrozenStacks) {
  const bundleId = makeBundleId(deathMs, w.identity.pid);
  const bundle = bundleOfDeath(d, w, s, verdict, bundleId, deathMs, stacks);
  d.emit.death({ identity: w.identity, verdict, bundleId, tMs: deathMs });
  try {
    const { incident } = await store.write(bundle);
    d.log.info(`post-mortem ${incident.id}: ${verdict.kind}`, { pid: w.identity.pid, summary: verdict.summary });
    d.emit.bundle(incident, bundle);
  } catch (err) {
    d.errors.count('bundle-write', err);
    d.emit.storeError((err as { code?: string }).code ?? 'PREMORTEM_ERR_STORE', `post-mortem of pid ${w.identity.pid} not written: ${(err as Error).message}`);
    d.log.error('could not write the post-mortem bundle; tracing continues', { pid: w.identity.pid, error: (err as Error).message });
  }
}

export function createJudge(d: JudgeDeps): Judge {
  let stopped = false;
  const masterLogs = createMasterLogReader();

  const judge = async (w: WorkerState, seenMs: number, synced: boolean) => {
    if (stopped) return;
    // Found gone by a scan, its exit record may have come in while it waited: that time is the death's.
    const deathMs = w.exit ? d.clock.recMs(w.exit.tsNs) : seenMs;
    const s = d.registry.serviceOf(w);
    const { verdict, stacks } = decideDeath(d, masterLogs, w, s, deathMs, synced);
    recordDeath(d, w, s, verdict, deathMs);
    if (d.store && (verdict.failure || d.options.bundleCleanExits)) await writeBundle(d, d.store, w, s, verdict, deathMs, stacks);
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
