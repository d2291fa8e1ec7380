/** What the agent shows: the topology (snapshot), a timeline's history, and its own health. */
import type { MarkerBoard } from './core/markers';
import type { Tracer } from './native';
import type { Feature, HostBucket, Identity, Marker, ServiceBucket, Snapshot, Worker } from '../proto/codec';
import { RECORD_METRIC_NAMES } from './records';
import type { Registry } from './registry/registry';
import type { HostTimeline, WorkerTimeline } from './timeline';

export interface HistoryAnswer {
  timelines: Array<{ identity: Identity; buckets: ReturnType<WorkerTimeline['buckets']> }>;
  markers: Marker[];
  serviceBuckets: ServiceBucket[];
  hostBuckets: HostBucket[];
}

export interface AgentHealth {
  startedMs: number;
  trackedProcesses: number;
  trackedWorkersAlive: number;
  refusedOverCap: number;
  records: { delivered: Record<string, number>; dropped: Record<string, number>; droppedTotal: number };
  features: Feature[];
  memory: { rssBytes: number; heapUsedBytes: number; timelineBytes: number };
  cpu: { userMs: number; systemMs: number };
  errors: Record<string, number>;
}

export function snapshotOf(registry: Registry): Snapshot {
  const workers: Worker[] = [...registry.workers.values()].map((w) => ({
    identity: w.identity, state: w.alive ? 'alive' : 'dead', lastVerdict: w.verdict, diedMs: w.diedMs,
  }));
  return { tMs: Date.now(), services: [...registry.services.values()].map((s) => s.service), workers };
}

export function historyOf(registry: Registry, host: HostTimeline, markers: MarkerBoard, key: string, fromMs: number, toMs: number,
  also: { serviceId?: string; host?: boolean } = {}): HistoryAnswer {
  const out: HistoryAnswer = { timelines: [], markers: [], serviceBuckets: [], hostBuckets: [] };
  const w = key ? registry.workers.get(key) : undefined;
  if (w) {
    out.timelines.push({ identity: w.identity, buckets: w.timeline.buckets(fromMs, toMs) });
    out.markers.push(...w.markers.between(fromMs, toMs));
  }
  const s = also.serviceId ? registry.services.get(also.serviceId) : undefined;
  if (s) {
    out.serviceBuckets = s.timeline.buckets(fromMs, toMs);
    out.markers.push(...s.markers.between(fromMs, toMs));
  }
  if (also.host) {
    out.hostBuckets = host.buckets(fromMs, toMs);
    out.markers.push(...markers.host.markers.between(fromMs, toMs));
  }
  return out;
}

export function healthOf(startedMs: number, registry: Registry | undefined, tracer: Tracer | undefined, features: Feature[], errors: Record<string, number>): AgentHealth {
  const stats = tracer?.stats();
  const delivered: Record<string, number> = {};
  const dropped: Record<string, number> = {};
  for (const [n, name] of Object.entries(RECORD_METRIC_NAMES)) {
    delivered[name] = stats?.delivered[Number(n)] ?? 0;
    dropped[name] = stats?.dropped[Number(n)] ?? 0;
  }
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  let timelineBytes = 0;
  for (const w of registry?.workers.values() ?? []) timelineBytes += w.timeline.bytes();
  for (const s of registry?.services.values() ?? []) timelineBytes += s.timeline.bytes();
  return {
    startedMs,
    trackedProcesses: registry?.workers.size ?? 0,
    trackedWorkersAlive: registry?.aliveCount() ?? 0,
    refusedOverCap: registry?.refusedOverCap ?? 0,
    records: { delivered, dropped, droppedTotal: stats ? stats.dropped.reduce((a, b) => a + b, 0) : 0 },
    features,
    memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed, timelineBytes },
    cpu: { userMs: cpu.user / 1000, systemMs: cpu.system / 1000 },
    errors,
  };
}
