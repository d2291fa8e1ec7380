/**
 * Deaths: a tracked process exits (or vanishes); after a short settle for the
 * kernel's trailing records, its last bucket is taken, the verdict decided from
 * the facts gathered meanwhile, and a failure's minutes before are frozen into
 * a post-mortem bundle and written to the store.
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
import type { Bundle, Death, IncidentSummary, Verdict } from '../proto';
import type { Registry } from '../registry/registry';
import type { ServiceState, WorkerState } from '../registry/state';
import { subjectOf, WorkerSampler } from '../sampling/worker';
import type { BundleStore } from '../store';
import { makeBundleId } from '../store';
import type { HostTimeline } from '../timeline';
import { buildBundle, TimelineSource } from './bundle';
import { decideVerdict } from './verdict';
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
}

export function createJudge(d: JudgeDeps): Judge {
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const source = (w: WorkerState): TimelineSource => ({
    identity: w.identity,
    buckets: (from, to) => w.timeline.buckets(from, to),
    markers: (from, to) => w.markers.between(from, to),
  });

  const bundleFor = (w: WorkerState, s: ServiceState | undefined, verdict: Verdict, id: string, deathMs: number) => {
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
    });
  };

  const verdictOf = (w: WorkerState, s: ServiceState | undefined, deathMs: number): Verdict => {
    const e = w.exit;
    const master = s ? d.registry.workers.get(s.masterKey) : undefined;
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
      why: d.why?.atDeath(w, deathMs),
    });
  };

  /** A failure counts for its service's restart storm (across restarts of the same lineage). */
  const noteFailure = (s: ServiceState, deathMs: number) => {
    const storm = restartStorm(s.service.id, d.registry.noteFailure(s, deathMs), deathMs, d.options.thresholds);
    if (storm) d.markers.raise(s, storm);
  };

  const writeBundle = async (w: WorkerState, s: ServiceState | undefined, verdict: Verdict, deathMs: number) => {
    const bundleId = makeBundleId(deathMs, w.identity.pid);
    const bundle = bundleFor(w, s, verdict, bundleId, deathMs);
    d.emit.death({ identity: w.identity, verdict, bundleId, tMs: deathMs });
    try {
      const res = await d.store!.write(bundle);
      const incident: IncidentSummary = {
        id: res.id, tMs: deathMs, service: s?.service.name ?? '', serviceId: s?.service.id ?? '', pid: w.identity.pid,
        startTicks: w.identity.startTicks, verdictKind: verdict.kind, summary: verdict.summary, failure: verdict.failure, bytes: res.bytes,
      };
      d.log.info(`post-mortem ${res.id}: ${verdict.kind}`, { pid: w.identity.pid, summary: verdict.summary });
      d.emit.bundle(incident, bundle);
    } catch (err) {
      d.errors.count('bundle-write', err);
      d.emit.storeError((err as { code?: string }).code ?? 'PREMORTEM_ERR_STORE', `post-mortem of pid ${w.identity.pid} not written: ${(err as Error).message}`);
      d.log.error('could not write the post-mortem bundle; tracing continues', { pid: w.identity.pid, error: (err as Error).message });
    }
  };

  const judge = async (w: WorkerState, deathMs: number) => {
    if (stopped) return;
    d.tracer.flush();
    const s = d.registry.serviceOf(w);
    // A last bucket for the partial interval, with the RSS current at death.
    d.sampler.sample(w, d.clock.intervalStart(deathMs), true);
    w.alive = false;
    w.diedMs = deathMs;
    const verdict = verdictOf(w, s, deathMs);
    w.verdict = verdict;
    d.markers.raise(w, marker(deathMs, verdict.kind === 'oom-killed' ? 'oom-kill' : 'exit', subjectOf(w), verdict.failure ? 'critical' : 'info',
      verdict.summary, { exitCode: verdict.exitCode, signal: verdict.signal }, { verdict: verdict.kind }), true);
    if (s && verdict.failure) noteFailure(s, deathMs);
    d.registry.retire(w, false);
    if (d.store && (verdict.failure || d.options.bundleCleanExits)) await writeBundle(w, s, verdict, deathMs);
    else {
      d.emit.death({ identity: w.identity, verdict, bundleId: '', tMs: deathMs });
      d.log.info(`worker ${w.identity.pid} ${verdict.kind}`, { summary: verdict.summary });
    }
    d.emit.topology();
  };

  return {
    schedule(w, deathMs) {
      if (w.judging) return;
      w.judging = true;
      d.registry.releaseSlot(w); // the master may fork the replacement before the verdict is in
      // Records the kernel wrote just before the exit may sit in the next batch.
      const t = setTimeout(() => {
        timers.delete(t);
        judge(w, deathMs).catch((e) => d.errors.count('judge', e));
      }, d.options.deathSettleMs);
      timers.add(t);
    },
    stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
    },
  };
}
