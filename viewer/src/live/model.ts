/**
 * What the live page knows, without any DOM: the agent's Hello, services and
 * workers, their series, markers, incidents, losses, the connection's state and
 * the selection. Frames from the agent are applied here; the views only read.
 */
import { workerKey, type Death, type Delta, type Hello, type History, type Service, type Snapshot, type Worker } from '../codec';
import type { ConnState } from '../connection';
import { IncidentList } from './incidents';
import { MarkerList } from './markers';
import { LiveSeries, maxPointsOf } from './series';

/** Masters first, then workers, then the rest. */
export function roleRank(w: Worker): number {
  const r = w.identity?.role;
  return r === 'master' ? 0 : r === 'worker' ? 1 : 2;
}

export class LiveModel {
  hello?: Hello;
  services = new Map<string, Service>();
  workers = new Map<string, Worker>();
  readonly series = new LiveSeries();
  readonly markers = new MarkerList();
  readonly incidents = new IncidentList();
  lostTotal = 0;
  lostLastMs = 0;
  gapIntervals = 0;
  decodeErrors = 0;
  lastDeltaMs = 0;
  selectedService?: string;
  selectedWorker?: string;
  windowMs = 300_000;
  connState: ConnState = { kind: 'connecting', attempt: 0 };

  maxPoints(): number {
    return maxPointsOf(this.hello);
  }

  interval(): number {
    return this.hello?.intervalMs || 1000;
  }

  /** The topology: replaces services and workers, keeps a selection that still exists. */
  applySnapshot(s: Snapshot): void {
    this.services = new Map(s.services.map((x) => [x.id, x]));
    const next = new Map<string, Worker>();
    for (const w of s.workers) if (w.identity) next.set(workerKey(w.identity.pid, w.identity.startTicks), w);
    this.workers = next;
    this.series.prune(next, this.services);
    if (!this.selectedService || !this.services.has(this.selectedService)) this.selectedService = this.defaultService();
    if (!this.selectedWorker || !this.workers.has(this.selectedWorker)) this.selectedWorker = this.defaultWorker(this.selectedService);
  }

  applyDelta(d: Delta): void {
    const cap = this.maxPoints();
    this.lastDeltaMs = Date.now();
    for (const wb of d.workers) {
      if (!wb.bucket) continue;
      this.series.addWorker(workerKey(wb.pid, wb.startTicks), wb.bucket, cap);
      if (wb.bucket.gap) this.gapIntervals++;
    }
    for (const sb of d.services) this.series.addService(sb, cap);
    if (d.host) this.series.addHost(d.host, cap);
    this.markers.add(d.markers);
  }

  /** The worker turns dead (the next snapshot brings the topology); its incident is listed. */
  applyDeath(d: Death): void {
    const id = d.identity;
    if (id) this.workers.set(workerKey(id.pid, id.startTicks), { identity: id, state: 'dead', lastVerdict: d.verdict, diedMs: d.tMs });
    this.incidents.addDeath(d, this.services.get(id?.serviceId ?? '')?.name ?? '');
  }

  applyHistory(hist: History): void {
    const cap = this.maxPoints();
    for (const tl of hist.timelines) {
      if (!tl.identity) continue;
      const key = workerKey(tl.identity.pid, tl.identity.startTicks);
      if (!this.series.workers.has(key)) this.series.workers.set(key, []);
      for (const b of tl.buckets) this.series.addWorker(key, b, cap);
    }
    for (const sb of hist.serviceBuckets ?? []) this.series.addService(sb, cap);
    for (const hb of hist.hostBuckets ?? []) this.series.addHost(hb, cap);
    this.markers.add(hist.markers);
  }

  addLost(dropped: number, tMs: number): void {
    this.lostTotal += dropped;
    this.lostLastMs = tMs || Date.now();
  }

  /** The workers of one service, with their keys. */
  workersOf(serviceId: string | undefined): Array<[string, Worker]> {
    return [...this.workers.entries()].filter(([, w]) => w.identity?.serviceId === serviceId);
  }

  /** The first service with a live worker, else the first one. */
  defaultService(): string | undefined {
    const svcs = [...this.services.values()];
    const withWorkers = svcs.find((s) => [...this.workers.values()].some((w) => w.identity?.serviceId === s.id && w.state === 'alive' && w.identity.role === 'worker'));
    return (withWorkers ?? svcs[0])?.id;
  }

  /** A live worker of the service, else any live process of it. */
  defaultWorker(serviceId?: string): string | undefined {
    const ws = this.workersOf(serviceId).filter(([, w]) => w.state === 'alive');
    const worker = ws.find(([, w]) => w.identity?.role === 'worker') ?? ws[0];
    return worker?.[0];
  }

  selectService(id: string): void {
    this.selectedService = id;
    this.selectedWorker = this.defaultWorker(id);
  }

  selectWorker(key: string): void {
    const w = this.workers.get(key);
    if (w?.identity) this.selectedService = w.identity.serviceId;
    this.selectedWorker = key;
  }
}
