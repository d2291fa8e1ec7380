/**
 * Rolling timelines: fixed-capacity rings of fixed-interval buckets, stored in
 * columns (agent/timeline-store.ts) that cost memory only for what they hold:
 * a field that stays 0 costs nothing, a column is as narrow as its values
 * (exact for integers below 2^32, else Float32: 2^-24 relative), histograms
 * keep their non-zero slots. A worker ring of C buckets never exceeds
 * WorkerTimeline.maxBytes(C) = C × (9 + 4 × WORKER_FIELDS + 135) bytes.
 * The field lists are open: a new field is one more name in its list.
 */
import type { Bucket, DeviceBucket, HostBucket, Marker, ServiceBucket } from '../proto/codec';
import { HIST_SLOTS } from './records';
import { Column, ColumnRing, HistogramLog, maxBytesPerBucket } from './timeline-store';

/** Numeric bucket fields, in storage order. */
export const WORKER_FIELDS = [
  'runqP50Us', 'runqP99Us', 'runqMaxUs', 'runqCount', 'involuntarySwitches', 'voluntarySwitches', 'cpuMs',
  'minorFaults', 'majorFaults', 'rssBytes', 'rssSlopeBytesPerS', 'cgroupUsageBytes', 'cgroupLimitBytes',
  'dstateNs', 'dstateMaxNs', 'bioReadBytes', 'bioWriteBytes', 'bioOps', 'gcPauses', 'gcPauseNs',
  'gcMaxPauseNs', 'threads', 'signalsReceived', 'bioLatP99Us', 'bioLatMaxUs',
  // Where the time went (issue 15): thread time per scheduler state, and the latest D-sleep syscall.
  'onCpuNs', 'runqWaitNs', 'throttledNs', 'blockedIoNs', 'faultWaitNs', 'sleepNetNs', 'sleepLockNs',
  'sleepTimerNs', 'sleepOtherNs', 'blockedSyscall',
] as const satisfies ReadonlyArray<keyof Bucket>;
export type WorkerField = (typeof WORKER_FIELDS)[number];
export type WorkerSample = Partial<Record<WorkerField, number>> & { runqHist?: ArrayLike<number>; gap?: boolean };

export const TCP_STATE_ORDER = [
  'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT',
  'LAST_ACK', 'LISTEN', 'CLOSING', 'NEW_SYN_RECV',
] as const;

export const SERVICE_FIELDS = [
  'backlogDepth', 'backlogMax', 'retransmits', 'resetsSent', 'resetsReceived', 'listenDrops', 'cpuThrottledUs',
  'nrThrottled', 'workersAlive', 'deaths',
] as const satisfies ReadonlyArray<keyof ServiceBucket>;
export type ServiceField = (typeof SERVICE_FIELDS)[number];
export type ServiceSample = Partial<Record<ServiceField, number>> & { socketStates?: Record<string, number>; gap?: boolean };

export const HOST_FIELDS = [
  'psiMemSomeAvg10', 'psiMemFullAvg10', 'psiCpuSomeAvg10', 'psiIoSomeAvg10', 'load1', 'memTotalBytes',
  'memAvailableBytes', 'psiIoFullAvg10',
] as const satisfies ReadonlyArray<keyof HostBucket>;
export type HostSampleFields = Partial<Record<(typeof HOST_FIELDS)[number], number>> & { devices?: DeviceBucket[] };

export class WorkerTimeline {
  private readonly ring: ColumnRing;
  private readonly hist: HistogramLog;
  readonly intervalMs: number;

  constructor(capacity: number, intervalMs: number) {
    this.ring = new ColumnRing(capacity, WORKER_FIELDS.length);
    this.hist = new HistogramLog(capacity, HIST_SLOTS);
    this.intervalMs = intervalMs;
  }

  /** Most bytes a worker ring of `capacity` buckets can hold (every field and histogram slot in use). */
  static maxBytes(capacity: number): number {
    return capacity * maxBytesPerBucket(WORKER_FIELDS.length, true);
  }

  get length(): number {
    return this.ring.length;
  }

  push(tMs: number, s: WorkerSample): void {
    const slot = this.ring.push(tMs, s.gap ?? false);
    const cols = this.ring.cols;
    for (let f = 0; f < WORKER_FIELDS.length; f++) cols[f].set(slot, s[WORKER_FIELDS[f]] ?? 0);
    this.hist.put(slot, s.runqHist);
  }

  bucket(i: number): Bucket {
    const b = { tMs: this.ring.time(i), intervalMs: this.intervalMs, gap: this.ring.gap(i) } as Bucket;
    const out = b as unknown as Record<string, number>;
    for (let f = 0; f < WORKER_FIELDS.length; f++) out[WORKER_FIELDS[f]] = this.ring.value(i, f);
    b.runqHist = this.hist.get(this.ring.slot(i));
    return b;
  }

  latest(): Bucket | undefined {
    return this.length ? this.bucket(this.length - 1) : undefined;
  }

  /** Values of one field over the last n buckets, oldest first. */
  series(field: WorkerField, n = this.length): Array<[number, number]> {
    const k = WORKER_FIELDS.indexOf(field);
    const out: Array<[number, number]> = [];
    for (let i = Math.max(0, this.length - n); i < this.length; i++) out.push([this.ring.time(i), this.ring.value(i, k)]);
    return out;
  }

  buckets(fromMs = -Infinity, toMs = Infinity): Bucket[] {
    const [a, b] = this.ring.range(fromMs, toMs);
    const out: Bucket[] = [];
    for (let i = a; i < b; i++) out.push(this.bucket(i));
    return out;
  }

  /** Bytes held now (columns and histograms in use; grows with the ring up to maxBytes). */
  bytes(): number {
    return this.ring.bytes() + this.hist.bytes();
  }
}

export class ServiceTimeline {
  private readonly ring: ColumnRing;
  /** One column per TCP state, after the service fields. */
  private readonly states: Column[];
  readonly intervalMs: number;
  readonly serviceId: string;

  constructor(serviceId: string, capacity: number, intervalMs: number) {
    this.serviceId = serviceId;
    this.ring = new ColumnRing(capacity, SERVICE_FIELDS.length + TCP_STATE_ORDER.length);
    this.states = this.ring.cols.slice(SERVICE_FIELDS.length);
    this.intervalMs = intervalMs;
  }

  get length(): number {
    return this.ring.length;
  }

  push(tMs: number, s: ServiceSample): void {
    const slot = this.ring.push(tMs, s.gap ?? false);
    for (let f = 0; f < SERVICE_FIELDS.length; f++) this.ring.cols[f].set(slot, s[SERVICE_FIELDS[f]] ?? 0);
    for (let k = 0; k < TCP_STATE_ORDER.length; k++) this.states[k].set(slot, s.socketStates?.[TCP_STATE_ORDER[k]] ?? 0);
  }

  bucket(i: number): ServiceBucket {
    const b = { serviceId: this.serviceId, tMs: this.ring.time(i), gap: this.ring.gap(i), socketStates: {} } as ServiceBucket;
    const out = b as unknown as Record<string, number>;
    for (let f = 0; f < SERVICE_FIELDS.length; f++) out[SERVICE_FIELDS[f]] = this.ring.value(i, f);
    const slot = this.ring.slot(i);
    TCP_STATE_ORDER.forEach((st, k) => {
      const n = this.states[k].get(slot);
      if (n) b.socketStates[st] = n;
    });
    return b;
  }

  latest(): ServiceBucket | undefined {
    return this.length ? this.bucket(this.length - 1) : undefined;
  }

  buckets(fromMs = -Infinity, toMs = Infinity): ServiceBucket[] {
    const [a, b] = this.ring.range(fromMs, toMs);
    const out: ServiceBucket[] = [];
    for (let i = a; i < b; i++) out.push(this.bucket(i));
    return out;
  }

  bytes(): number {
    return this.ring.bytes();
  }
}

/** Block devices kept per host bucket (the busiest ones). */
export const MAX_DEVICES_PER_BUCKET = 16;

export class HostTimeline {
  private readonly ring: ColumnRing;
  /** Per physical slot: the devices active in that interval (few, and often none). */
  private readonly devices: Array<DeviceBucket[] | undefined>;

  constructor(capacity: number) {
    // One per agent: its gauges (PSI, load) are kept exactly, as read.
    this.ring = new ColumnRing(capacity, HOST_FIELDS.length, true);
    this.devices = new Array(capacity);
  }

  push(tMs: number, s: HostSampleFields): void {
    const slot = this.ring.push(tMs, false);
    for (let f = 0; f < HOST_FIELDS.length; f++) this.ring.cols[f].set(slot, s[HOST_FIELDS[f]] ?? 0);
    this.devices[slot] = s.devices?.length ? s.devices.slice(0, MAX_DEVICES_PER_BUCKET) : undefined;
  }

  bucket(i: number): HostBucket {
    const b = { tMs: this.ring.time(i) } as HostBucket;
    const out = b as unknown as Record<string, number>;
    for (let f = 0; f < HOST_FIELDS.length; f++) out[HOST_FIELDS[f]] = this.ring.value(i, f);
    b.devices = this.devices[this.ring.slot(i)] ?? [];
    return b;
  }

  latest(): HostBucket | undefined {
    return this.ring.length ? this.bucket(this.ring.length - 1) : undefined;
  }

  buckets(fromMs = -Infinity, toMs = Infinity): HostBucket[] {
    const [a, b] = this.ring.range(fromMs, toMs);
    const out: HostBucket[] = [];
    for (let i = a; i < b; i++) out.push(this.bucket(i));
    return out;
  }
}

/** A bounded list of markers, oldest dropped first. */
export class MarkerRing {
  private items: Marker[] = [];
  constructor(readonly max: number) {}

  push(m: Marker): void {
    this.items.push(m);
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
  }

  between(fromMs: number, toMs: number): Marker[] {
    return this.items.filter((m) => m.tMs >= fromMs && m.tMs < toMs);
  }

  all(): Marker[] {
    return this.items.slice();
  }

  get length(): number {
    return this.items.length;
  }
}

/** Percentile (0..1) of a log2 µs histogram: the upper bound of the slot holding it. */
export function histPercentileUs(slots: ArrayLike<number>, q: number): number {
  let total = 0;
  for (let i = 0; i < slots.length; i++) total += slots[i];
  if (!total) return 0;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i < slots.length; i++) {
    seen += slots[i];
    if (seen >= rank) return 2 ** i; // slot i holds [2^(i-1), 2^i) µs
  }
  return 2 ** (slots.length - 1);
}

/** Least-squares slope of (t ms, value) points, per second. */
export function slopePerSecond(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  let st = 0, sv = 0;
  for (const [t, v] of points) {
    st += t;
    sv += v;
  }
  const mt = st / n, mv = sv / n;
  let num = 0, den = 0;
  for (const [t, v] of points) {
    num += (t - mt) * (v - mv);
    den += (t - mt) * (t - mt);
  }
  return den === 0 ? 0 : (num / den) * 1000;
}
