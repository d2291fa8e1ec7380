/**
 * The post-mortem bundle (what the store keeps about one death) and its
 * one-line summary. These mirror proto/premortem.proto (see index.ts).
 */
import type { Identity, Service } from './identity';
import type { PyStackSample, StackSampling } from './stacks';
import type { HostBucket, Marker, ServiceBucket, WorkerTimeline } from './timeline';
import type { Verdict, VerdictKind } from './verdict';

export interface CgroupLimits {
  path: string; memoryMaxBytes: number; memoryHighBytes: number; memoryCurrentBytes: number;
  memoryPeakBytes: number; cpuQuotaUs: number; cpuPeriodUs: number; pidsMax: number;
  memoryEvents: Record<string, number>;
}
export interface Bundle {
  formatVersion: number; id: string; createdMs: number; host: string; agentVersion: string;
  worker?: Identity; service?: Service; verdict?: Verdict; timelines: WorkerTimeline[];
  serviceBuckets: ServiceBucket[]; hostBuckets: HostBucket[]; markers: Marker[];
  cgroupLimits?: CgroupLimits; windowStartMs: number; windowEndMs: number; lostRecords: number;
  intervalMs: number; kernel: string;
  /** The dead worker's last Python stacks, oldest first (decode always fills it; writers may leave it out). */
  stacks?: PyStackSample[];
  /** How `stacks` were sampled; absent when stack sampling was off. */
  stackSampling?: StackSampling;
}
export interface IncidentSummary {
  id: string; tMs: number; service: string; serviceId: string; pid: number; startTicks: number;
  verdictKind: VerdictKind; summary: string; failure: boolean; bytes: number;
}
