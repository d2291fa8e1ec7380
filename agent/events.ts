/**
 * What the agent tells its listeners (the server, /metrics, OTLP, the CLI), one
 * typed event each: `agent.on('death', (d) => ...)` knows `d` is a Death.
 */
import type { LostNotice } from './core/loss';
import type { Bundle, Death, HostBucket, IncidentSummary, Marker, ServiceBucket, WorkerBucket } from '../proto/codec';

/** One interval: the newest bucket of every tracked process and service, the host's, and the markers raised. */
export interface TickEvent {
  tMs: number;
  intervalMs: number;
  workers: Array<WorkerBucket & { bucket: NonNullable<WorkerBucket['bucket']> }>;
  services: ServiceBucket[];
  host: HostBucket;
  markers: Marker[];
}

export interface AgentEvents {
  tick: [TickEvent];
  /** A tracked process died and was judged (a bundle follows when it was a failure). */
  death: [Death];
  /** A post-mortem was written. */
  bundle: [IncidentSummary, Bundle];
  /** Records of one type were lost since the last notice. */
  lost: [LostNotice];
  /** Services or processes came or went. */
  topology: [];
  /** A post-mortem could not be written (its code is stable: PREMORTEM_ERR_...). */
  'store-error': [code: string, message: string];
}
