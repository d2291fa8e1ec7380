/**
 * The live stream: what the agent sends a viewer (ServerMessage) and what a
 * viewer asks for (ClientMessage). These mirror proto/premortem.proto (see index.ts).
 */
import type { IncidentSummary } from './bundle';
import type { Identity, Service, Worker } from './identity';
import type { Bucket, HostBucket, Marker, ServiceBucket, WorkerTimeline } from './timeline';
import type { Verdict } from './verdict';

export interface Feature { name: string; enabled: boolean; reason: string }
export interface Hello {
  agentVersion: string; protocolVersion: number; minClientVersion: number; features: Feature[];
  intervalMs: number; host: string; serverTimeMs: number; windowMs: number;
}
export interface Snapshot { tMs: number; services: Service[]; workers: Worker[] }
export interface WorkerBucket { pid: number; startTicks: number; serviceId: string; bucket?: Bucket }
export interface Delta {
  tMs: number; workers: WorkerBucket[]; services: ServiceBucket[]; host?: HostBucket;
  markers: Marker[]; intervalMs: number;
}
export interface Death { identity?: Identity; verdict?: Verdict; bundleId: string; tMs: number }
export interface BundleReady { incident?: IncidentSummary }
export interface Lost { probe: string; dropped: number; tMs: number; droppedTotal: number }
export interface History {
  requestId: number; timelines: WorkerTimeline[]; markers: Marker[]; fromMs: number; toMs: number;
  serviceBuckets: ServiceBucket[]; hostBuckets: HostBucket[];
}
export interface ProtoErrorMessage { code: string; message: string }

export type ServerBody =
  'hello' | 'snapshot' | 'delta' | 'death' | 'bundleReady' | 'lost' | 'history' | 'error';
export interface ServerMessage {
  protocolVersion: number;
  /** Which member of the oneof is set (filled by decode; ignored by encode). */
  body?: ServerBody;
  hello?: Hello; snapshot?: Snapshot; delta?: Delta; death?: Death; bundleReady?: BundleReady;
  lost?: Lost; history?: History; error?: ProtoErrorMessage;
}
export interface Subscribe { workerKeys: string[]; serviceIds: string[]; all: boolean }
export interface Unsubscribe { workerKeys: string[]; serviceIds: string[]; all: boolean }
export interface HistoryRequest { requestId: number; workerKey: string; fromMs: number; toMs: number; serviceId: string; host: boolean }
export type ClientBody = 'subscribe' | 'unsubscribe' | 'historyRequest';
export interface ClientMessage {
  protocolVersion: number;
  body?: ClientBody;
  subscribe?: Subscribe; unsubscribe?: Unsubscribe; historyRequest?: HistoryRequest;
}
