/**
 * Assembles a post-mortem bundle: the dead worker's frozen timeline, its
 * siblings' and master's over the same span, the service's socket series,
 * host context, cgroup limits, markers and the verdict.
 */
import * as os from 'os';
import type { Bundle, CgroupLimits, HostBucket, Identity, Marker, PyStackSample, Service, ServiceBucket, StackSampling, Verdict, WorkerTimeline as WorkerTimelineMsg } from '../../proto/codec';
import { BUNDLE_FORMAT_VERSION } from '../../proto/codec';
import type { MemoryCgroup } from '../cgroup/memory';
import type { CpuThrottling } from '../cgroup/cpu';

export interface TimelineSource {
  identity: Identity;
  buckets(fromMs: number, toMs: number): WorkerTimelineMsg['buckets'];
  markers(fromMs: number, toMs: number): Marker[];
}

export interface BundleInput {
  id: string;
  agentVersion: string;
  intervalMs: number;
  windowStartMs: number;
  windowEndMs: number;
  dead: TimelineSource;
  siblings: TimelineSource[];
  master?: TimelineSource;
  service?: Service;
  serviceBuckets: ServiceBucket[];
  serviceMarkers: Marker[];
  hostBuckets: HostBucket[];
  hostMarkers: Marker[];
  verdict: Verdict;
  cgroup?: MemoryCgroup | null;
  /** The service's CPU bandwidth (quota), when its cgroup has one. */
  cpu?: CpuThrottling;
  lostRecords: number;
  /** The dead worker's last distinct Python stacks with frames, oldest first, and how they were sampled. */
  stacks?: PyStackSample[];
  stackSampling?: StackSampling;
}

export function cgroupLimits(cg: MemoryCgroup | null | undefined, cpu?: CpuThrottling): CgroupLimits | undefined {
  if (!cg) return undefined;
  const events: Record<string, number> = {};
  for (const [k, v] of Object.entries(cg.events ?? {})) if (typeof v === 'number') events[k] = v;
  return {
    path: cg.path,
    memoryMaxBytes: cg.limitBytes ?? 0,
    memoryHighBytes: cg.highBytes ?? 0,
    memoryCurrentBytes: cg.usageBytes,
    memoryPeakBytes: cg.peakBytes ?? 0,
    cpuQuotaUs: cpu?.quotaUs ?? 0,
    cpuPeriodUs: cpu?.quotaUs ? cpu.periodUs : 0,
    pidsMax: 0,
    memoryEvents: events,
  };
}

export function buildBundle(i: BundleInput): Bundle {
  const from = i.windowStartMs, to = i.windowEndMs;
  const sources = [i.dead, ...i.siblings, ...(i.master ? [i.master] : [])];
  const markers = [
    ...sources.flatMap((s) => s.markers(from, to)),
    ...i.serviceMarkers.filter((m) => m.tMs >= from && m.tMs < to),
    ...i.hostMarkers.filter((m) => m.tMs >= from && m.tMs < to),
  ].sort((a, b) => a.tMs - b.tMs);
  return {
    formatVersion: BUNDLE_FORMAT_VERSION,
    id: i.id,
    createdMs: Date.now(),
    host: os.hostname(),
    agentVersion: i.agentVersion,
    worker: i.dead.identity,
    service: i.service,
    verdict: i.verdict,
    timelines: sources.map((s) => ({ identity: s.identity, buckets: s.buckets(from, to) })),
    serviceBuckets: i.serviceBuckets,
    hostBuckets: i.hostBuckets,
    markers,
    cgroupLimits: cgroupLimits(i.cgroup, i.cpu),
    windowStartMs: from,
    windowEndMs: to,
    lostRecords: i.lostRecords,
    intervalMs: i.intervalMs,
    kernel: os.release(),
    ...(i.stackSampling ? { stacks: i.stacks ?? [], stackSampling: i.stackSampling } : {}),
  };
}
