/**
 * Storage of the timeline rings (agent/timeline.ts): memory for what a ring
 * holds, not for what it could hold.
 *
 * A numeric field is a Column: a typed array allocated at the field's first
 * non-zero value (a field that stays 0 — no disk I/O, no GC — costs nothing),
 * grown by doubling while the ring fills (a worker that lived a minute holds a
 * minute), and widened when a value needs it:
 *   Uint8 (0..255) -> Uint16 (..65,535) -> Uint32 (..2^32 - 1) -> Float32.
 * PRECISION: a value is exact while its column has held only integers in
 * [0, 2^32). A column that held anything else (negative, fractional, larger) is
 * Float32 from then on: each value within 2^-24 of itself, relative (0.06 ppm:
 * 8 GiB +- 512 B, 3 s of nanoseconds +- 128 ns); integers up to 2^24 stay exact.
 * An `exact` column (host gauges) widens to Float64 instead.
 *
 * Histograms (32 log2 slots per bucket) go to a HistogramLog: per bucket only
 * the slots from the first to the last non-zero one, at the width the largest
 * count needs (1, 2 or 4 bytes: the kernel's per-interval counts, as the dense
 * Uint32 layout kept them), in one byte pool used as a ring.
 *
 * Bounds: a Column never exceeds capacity x 4 bytes (8 when exact), a
 * HistogramLog never capacity x (HIST_ENTRY_MAX_BYTES + 5): see maxBytesPerBucket.
 */

type Narrow = Uint8Array | Uint16Array | Uint32Array | Float32Array | Float64Array;
const RUNGS = [Uint8Array, Uint16Array, Uint32Array, Float32Array, Float64Array] as const;
const FLOAT32 = 3;
const FLOAT64 = 4;
/** Smallest allocation of a growing array (elements). */
const MIN_LENGTH = 16;

/** The narrowest rung that holds v exactly (FLOAT32 for anything that is not an integer in [0, 2^32)). */
export function rungOf(v: number): number {
  if (v >= 0 && v <= 0xffffffff && Number.isInteger(v)) return v <= 0xff ? 0 : v <= 0xffff ? 1 : 2;
  return FLOAT32;
}

function grownLength(current: number, needed: number, capacity: number): number {
  return Math.min(capacity, Math.max(needed, current * 2, MIN_LENGTH));
}

/** One numeric field of a ring, by physical slot. */
export class Column {
  private data: Narrow | null = null;
  private rung = -1;

  constructor(private readonly capacity: number, private readonly exact = false) {}

  get(slot: number): number {
    const d = this.data;
    return d !== null && slot < d.length ? d[slot] : 0;
  }

  set(slot: number, v: number): void {
    let d = this.data;
    if (v === 0) {
      if (d !== null && slot < d.length) d[slot] = 0; // else it reads as 0 already
      return;
    }
    let r = rungOf(v);
    if (r === FLOAT32 && this.exact) r = FLOAT64;
    const length = d?.length ?? 0;
    if (d === null || slot >= length || r > this.rung)
      d = this.resize(slot >= length ? grownLength(length, slot + 1, this.capacity) : length, Math.max(r, this.rung));
    d[slot] = v;
  }

  /** Bytes held (0 until the first non-zero value). */
  bytes(): number {
    return this.data?.byteLength ?? 0;
  }

  /** The element type in use: 'none' until the first non-zero value. */
  get kind(): string {
    return this.data ? this.data.constructor.name : 'none';
  }

  private resize(length: number, rung: number): Narrow {
    const next = new RUNGS[rung](length);
    if (this.data) for (let i = 0; i < this.data.length; i++) next[i] = this.data[i];
    this.data = next;
    this.rung = rung;
    return next;
  }
}

/** A growable Float64 array (bucket times: epoch ms need all 53 bits). */
class Float64Column {
  private data = new Float64Array(0);
  constructor(private readonly capacity: number) {}
  get(slot: number): number {
    return this.data[slot];
  }
  set(slot: number, v: number): void {
    if (slot >= this.data.length) {
      const next = new Float64Array(grownLength(this.data.length, slot + 1, this.capacity));
      next.set(this.data);
      this.data = next;
    }
    this.data[slot] = v;
  }
  bytes(): number {
    return this.data.byteLength;
  }
}

/** A ring of buckets: times, gap flags and `fields` Columns. Index 0 is the oldest kept bucket. */
export class ColumnRing {
  readonly capacity: number;
  private head = 0; // next write position
  private size = 0;
  private readonly times: Float64Column;
  private readonly gaps: Column;
  readonly cols: Column[];

  constructor(capacity: number, fields: number, exact = false) {
    this.capacity = capacity;
    this.times = new Float64Column(capacity);
    this.gaps = new Column(capacity);
    this.cols = Array.from({ length: fields }, () => new Column(capacity, exact));
  }

  get length(): number {
    return this.size;
  }

  /** Starts a bucket; returns its physical slot (write its fields with cols[f].set(slot, v)). */
  push(tMs: number, gap: boolean): number {
    const slot = this.head;
    this.times.set(slot, tMs);
    this.gaps.set(slot, gap ? 1 : 0);
    this.head = (this.head + 1) % this.capacity;
    if (this.size < this.capacity) this.size++;
    return slot;
  }

  /** Physical slot of the i-th oldest bucket. */
  slot(i: number): number {
    return (this.head - this.size + i + this.capacity) % this.capacity;
  }

  time(i: number): number {
    return this.times.get(this.slot(i));
  }

  value(i: number, field: number): number {
    return this.cols[field].get(this.slot(i));
  }

  gap(i: number): boolean {
    return this.gaps.get(this.slot(i)) === 1;
  }

  /** Indices [first, last) of buckets with from <= t < to (times ascend in ring order). */
  range(fromMs: number, toMs: number): [number, number] {
    const first = this.lowerBound(fromMs);
    return [first, Math.max(first, this.lowerBound(toMs))];
  }

  bytes(): number {
    return this.times.bytes() + this.gaps.bytes() + this.cols.reduce((a, c) => a + c.bytes(), 0);
  }

  /** The first index whose time is >= t. */
  private lowerBound(t: number): number {
    let lo = 0, hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.time(mid) < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Largest encoded histogram: 2 header bytes + 32 slots x 4 bytes. */
export const HIST_ENTRY_MAX_BYTES = 2 + 32 * 4;

/**
 * Histograms of a ring's buckets in one byte pool, itself a ring: entries are
 * written in bucket order and the bucket overwritten is always the oldest, so
 * the live entries are one contiguous run of the pool. An entry is
 * [first slot, count | width code << 6, counts at that width]; an all-zero
 * histogram takes no bytes. The pool doubles when the next entry does not fit.
 */
export class HistogramLog {
  private pool = new Uint8Array(0);
  private headOffset = 0;
  private used = 0;
  private readonly offsets: Column;
  private readonly lengths: Column;

  constructor(private readonly capacity: number, private readonly slots: number) {
    this.offsets = new Column(capacity);
    this.lengths = new Column(capacity);
  }

  /** Replaces the histogram of physical slot `slot` (the ring's oldest, or a new one). */
  put(slot: number, hist: ArrayLike<number> | undefined): void {
    this.used -= this.lengths.get(slot); // the overwritten bucket leaves the front of the run
    this.lengths.set(slot, 0);
    this.offsets.set(slot, 0);
    let lo = 0, hi = -1, max = 0;
    const n = Math.min(hist?.length ?? 0, this.slots);
    for (let i = 0; i < n; i++) {
      const v = hist![i] >>> 0; // the dense layout was Uint32 too
      if (v === 0) continue;
      if (hi < 0) lo = i;
      hi = i;
      if (v > max) max = v;
    }
    if (hi < 0) return;
    const count = hi - lo + 1;
    const code = max <= 0xff ? 0 : max <= 0xffff ? 1 : 2;
    const width = 1 << code;
    const len = 2 + count * width;
    if (this.pool.length - this.used < len) this.grow(len);
    const start = this.headOffset;
    const P = this.pool.length;
    const writeByte = (k: number, b: number) => { this.pool[(start + k) % P] = b; };
    writeByte(0, lo);
    writeByte(1, count | (code << 6));
    for (let i = 0; i < count; i++) {
      const v = hist![lo + i] >>> 0;
      for (let b = 0; b < width; b++) writeByte(2 + i * width + b, (v >>> (8 * b)) & 0xff);
    }
    this.offsets.set(slot, start);
    this.lengths.set(slot, len);
    this.headOffset = (start + len) % P;
    this.used += len;
  }

  /** The histogram of a physical slot, trailing zeros trimmed ([] when empty). */
  get(slot: number): number[] {
    const len = this.lengths.get(slot);
    if (len === 0) return [];
    const P = this.pool.length;
    const at = this.offsets.get(slot);
    const byte = (k: number) => this.pool[(at + k) % P];
    const lo = byte(0), head = byte(1);
    const count = head & 0x3f, width = 1 << (head >> 6);
    const out = new Array<number>(lo + count).fill(0);
    for (let i = 0; i < count; i++) {
      let v = 0;
      for (let b = width - 1; b >= 0; b--) v = v * 256 + byte(2 + i * width + b);
      out[lo + i] = v;
    }
    return out;
  }

  bytes(): number {
    return this.pool.byteLength + this.offsets.bytes() + this.lengths.bytes();
  }

  /** A larger pool with the live run copied to its start; offsets follow. */
  private grow(need: number): void {
    const P = this.pool.length;
    const bound = this.capacity * HIST_ENTRY_MAX_BYTES;
    const size = Math.min(bound, Math.max(P * 2, this.used + need, 256));
    const next = new Uint8Array(size);
    const start = (this.headOffset - this.used + P) % Math.max(P, 1);
    for (let k = 0; k < this.used; k++) next[k] = this.pool[(start + k) % P];
    for (let slot = 0; slot < this.capacity; slot++)
      if (this.lengths.get(slot) > 0) this.offsets.set(slot, (this.offsets.get(slot) - start + P) % P);
    this.pool = next;
    this.headOffset = this.used % size;
  }
}

/**
 * Most bytes one bucket can ever cost: time (8) + gap flag (1) + 4 per field (8 when exact) and,
 * with a histogram, its largest entry plus its offset (4) and length (1).
 */
export function maxBytesPerBucket(fields: number, withHistogram: boolean, exact = false): number {
  return 8 + 1 + fields * (exact ? 8 : 4) + (withHistogram ? HIST_ENTRY_MAX_BYTES + 4 + 1 : 0);
}
