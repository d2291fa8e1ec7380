/**
 * Rolling timelines: fixed-capacity rings of fixed-interval buckets, stored in
 * columns (typed arrays) so that memory is known in advance: a worker ring of
 * C buckets costs C × (WORKER_FIELDS × 8 + HIST_SLOTS × 4 + 9) bytes.
 */
import type { Bucket, DeviceBucket, HostBucket, Marker, ServiceBucket } from '../proto/codec';
import { HIST_SLOTS } from './records';

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

/** A ring of columns. Index 0 is the oldest kept bucket. */
class ColumnRing {
  readonly capacity: number;
  private head = 0; // next write position
  private size = 0;
  private readonly times: Float64Array;
  private readonly cols: Float64Array[];
  private readonly gaps: Uint8Array;

  constructor(capacity: number, fields: number) {
    this.capacity = capacity;
    this.times = new Float64Array(capacity);
    this.cols = Array.from({ length: fields }, () => new Float64Array(capacity));
    this.gaps = new Uint8Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Appends a bucket; returns its physical slot (for side arrays). */
  push(tMs: number, values: ArrayLike<number>, gap: boolean): number {
    const slot = this.head;
    this.times[slot] = tMs;
    for (let f = 0; f < this.cols.length; f++) this.cols[f][slot] = values[f] ?? 0;
    this.gaps[slot] = gap ? 1 : 0;
    this.head = (this.head + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
    return slot;
  }

  /** Physical slot of the i-th oldest bucket. */
  slot(i: number): number {
    return (this.head - this.size + i + this.capacity) % this.capacity;
  }

  time(i: number): number {
    return this.times[this.slot(i)];
  }

  value(i: number, field: number): number {
    return this.cols[field][this.slot(i)];
  }

  gap(i: number): boolean {
    return this.gaps[this.slot(i)] === 1;
  }

  /** Indices [first, last) of buckets with from <= t < to. */
  range(fromMs: number, toMs: number): [number, number] {
    let first = 0;
    while (first < this.size && this.time(first) < fromMs) first++;
    let last = first;
    while (last < this.size && this.time(last) < toMs) last++;
    return [first, last];
  }

  bytes(): number {
    return this.capacity * (8 + this.cols.length * 8 + 1);
  }
}

export class WorkerTimeline {
  private readonly ring: ColumnRing;
  private readonly hist: Uint32Array;
  readonly intervalMs: number;

  constructor(capacity: number, intervalMs: number) {
    this.ring = new ColumnRing(capacity, WORKER_FIELDS.length);
    this.hist = new Uint32Array(capacity * HIST_SLOTS);
    this.intervalMs = intervalMs;
  }

  get length(): number {
    return this.ring.length;
  }

  push(tMs: number, s: WorkerSample): void {
    const values = WORKER_FIELDS.map((f) => s[f] ?? 0);
    const slot = this.ring.push(tMs, values, s.gap ?? false);
    const base = slot * HIST_SLOTS;
    for (let i = 0; i < HIST_SLOTS; i++) this.hist[base + i] = s.runqHist?.[i] ?? 0;
  }

  bucket(i: number): Bucket {
    const b = { tMs: this.ring.time(i), intervalMs: this.intervalMs, gap: this.ring.gap(i) } as Bucket;
    WORKER_FIELDS.forEach((f, k) => ((b as unknown as Record<string, number>)[f] = this.ring.value(i, k)));
    const base = this.ring.slot(i) * HIST_SLOTS;
    let last = HIST_SLOTS;
    while (last > 0 && this.hist[base + last - 1] === 0) last--;
    b.runqHist = Array.from(this.hist.subarray(base, base + last));
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

  bytes(): number {
    return this.ring.bytes() + this.hist.byteLength;
  }
}

export class ServiceTimeline {
  private readonly ring: ColumnRing;
  private readonly states: Uint32Array;
  readonly intervalMs: number;
  readonly serviceId: string;

  constructor(serviceId: string, capacity: number, intervalMs: number) {
    this.serviceId = serviceId;
    this.ring = new ColumnRing(capacity, SERVICE_FIELDS.length);
    this.states = new Uint32Array(capacity * TCP_STATE_ORDER.length);
    this.intervalMs = intervalMs;
  }

  get length(): number {
    return this.ring.length;
  }

  push(tMs: number, s: ServiceSample): void {
    const slot = this.ring.push(tMs, SERVICE_FIELDS.map((f) => s[f] ?? 0), s.gap ?? false);
    TCP_STATE_ORDER.forEach((st, i) => (this.states[slot * TCP_STATE_ORDER.length + i] = s.socketStates?.[st] ?? 0));
  }

  bucket(i: number): ServiceBucket {
    const b = { serviceId: this.serviceId, tMs: this.ring.time(i), gap: this.ring.gap(i), socketStates: {} } as ServiceBucket;
    SERVICE_FIELDS.forEach((f, k) => ((b as unknown as Record<string, number>)[f] = this.ring.value(i, k)));
    const base = this.ring.slot(i) * TCP_STATE_ORDER.length;
    TCP_STATE_ORDER.forEach((st, k) => {
      const n = this.states[base + k];
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
    return this.ring.bytes() + this.states.byteLength;
  }
}

/** Block devices kept per host bucket (the busiest ones). */
export const MAX_DEVICES_PER_BUCKET = 16;

export class HostTimeline {
  private readonly ring: ColumnRing;
  /** Per physical slot: the devices active in that interval (few, and often none). */
  private readonly devices: Array<DeviceBucket[] | undefined>;

  constructor(capacity: number) {
    this.ring = new ColumnRing(capacity, HOST_FIELDS.length);
    this.devices = new Array(capacity);
  }

  push(tMs: number, s: HostSampleFields): void {
    const slot = this.ring.push(tMs, HOST_FIELDS.map((f) => s[f] ?? 0), false);
    this.devices[slot] = s.devices?.length ? s.devices.slice(0, MAX_DEVICES_PER_BUCKET) : undefined;
  }

  bucket(i: number): HostBucket {
    const b = { tMs: this.ring.time(i) } as HostBucket;
    HOST_FIELDS.forEach((f, k) => ((b as unknown as Record<string, number>)[f] = this.ring.value(i, k)));
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
