/**
 * What a dead worker's post-mortem bundle holds, read from the registry and the
 * timelines: the window around the death, its siblings and master over that
 * window, the service's and host's series and markers, its cgroup re-read.
 * (bundle.ts assembles the message from these.)
 */
import type { Bundle, Verdict } from '../../proto/codec';
import { rereadMemoryCgroup } from '../cgroup/memory';
import type { AgentOptions } from '../config';
import type { LossLedger } from '../core/loss';
import type { MarkerBoard } from '../core/markers';
import type { Registry } from '../registry/registry';
import type { ServiceState, WorkerState } from '../registry/state';
import type { FrozenStacks } from '../sampling/stack-ring';
import type { HostTimeline } from '../timeline';
import { buildBundle, type TimelineSource } from './bundle';

export interface DeathBundleDeps {
  options: Pick<AgentOptions, 'intervalMs' | 'bundleWindowMs'>;
  agentVersion: string;
  registry: Registry;
  host: HostTimeline;
  loss: LossLedger;
  markers: MarkerBoard;
}

function source(w: WorkerState): TimelineSource {
  return {
    identity: w.identity,
    buckets: (from, to) => w.timeline.buckets(from, to),
    markers: (from, to) => w.markers.between(from, to),
  };
}

export function bundleOfDeath(d: DeathBundleDeps, w: WorkerState, s: ServiceState | undefined, verdict: Verdict, id: string, deathMs: number, stacks?: FrozenStacks): Bundle {
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
}
