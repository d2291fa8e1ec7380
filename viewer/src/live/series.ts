/**
 * The rows behind the live charts: one bucket series per worker, per service
 * and for the host, each sorted by time and capped at the agent's window.
 */
import type { Bucket, Hello, HostBucket, ServiceBucket } from '../codec';

/** Points kept per series when Hello does not say (window / interval). */
const DEFAULT_MAX_POINTS = 600;
/** Hard cap on points per series, whatever the agent's window. */
const MAX_POINTS_CAP = 3600;

/** Inserts by tMs (the same tMs replaces), then drops the oldest beyond cap. */
export function insertSorted<T extends { tMs: number }>(arr: T[], item: T, cap: number): void {
  const n = arr.length;
  if (!n || arr[n - 1].tMs < item.tMs) arr.push(item);
  else {
    let i = n - 1;
    while (i >= 0 && arr[i].tMs > item.tMs) i--;
    if (i >= 0 && arr[i].tMs === item.tMs) arr[i] = item;
    else arr.splice(i + 1, 0, item);
  }
  if (arr.length > cap) arr.splice(0, arr.length - cap);
}

/** Points per series: the agent's window in intervals, within MAX_POINTS_CAP. */
export function maxPointsOf(hello?: Hello): number {
  if (!hello || !hello.windowMs || !hello.intervalMs) return DEFAULT_MAX_POINTS;
  return Math.min(MAX_POINTS_CAP, Math.ceil(hello.windowMs / hello.intervalMs));
}

export class LiveSeries {
  /** By worker key (pid:startTicks). */
  readonly workers = new Map<string, Bucket[]>();
  /** By service id. */
  readonly services = new Map<string, ServiceBucket[]>();
  readonly host: HostBucket[] = [];

  addWorker(key: string, b: Bucket, cap: number): void {
    let arr = this.workers.get(key);
    if (!arr) this.workers.set(key, (arr = []));
    insertSorted(arr, b, cap);
  }

  addService(sb: ServiceBucket, cap: number): void {
    let arr = this.services.get(sb.serviceId);
    if (!arr) this.services.set(sb.serviceId, (arr = []));
    insertSorted(arr, sb, cap);
  }

  addHost(hb: HostBucket, cap: number): void {
    insertSorted(this.host, hb, cap);
  }

  /** Forgets the series of workers and services the agent no longer lists. */
  prune(workerKeys: Map<string, unknown>, serviceIds: Map<string, unknown>): void {
    for (const k of [...this.workers.keys()]) if (!workerKeys.has(k)) this.workers.delete(k);
    for (const k of [...this.services.keys()]) if (!serviceIds.has(k)) this.services.delete(k);
  }

  /** The end of each worker's newest bucket (0 for an empty series). */
  workerEndsMs(intervalMs: number): number[] {
    return [...this.workers.values()].map((a) => (a.length ? a[a.length - 1].tMs + intervalMs : 0));
  }
}
