/**
 * Decoder for the fixed-layout kernel records (bpf/pm_common.h and the probe
 * headers). Offsets live in LAYOUT, which test/kernel/records.test.ts checks against
 * the sizes and offsets the addon reports from the C headers.
 */

export const LAYOUT_VERSION = 1;

/** Record type numbers: fixed forever (bpf/pm_common.h enum pm_record_type). */
export const RecordType = {
  RunqSlow: 1,
  Fork: 2,
  Exec: 3,
  Exit: 4,
  Signal: 5,
  Oom: 6,
  BioSlow: 7,
  Tcp: 8,
  Gc: 9,
  Flood: 10,
} as const;
export type RecordTypeNumber = (typeof RecordType)[keyof typeof RecordType];

export const RECORD_TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(RecordType).map(([name, n]) => [n, name]),
);

/** The snake_case name of a record type, as /metrics and /api/health label it: RunqSlow -> runq_slow. */
export const RECORD_METRIC_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(RecordType).map(([name, n]) => [n, name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()]),
);

export interface StructSpec {
  size: number;
  type?: number;
  offsets: Record<string, number>;
}

/**
 * Sizes and offsets, mirrored from the C headers. The core structs are here;
 * each probe module (agent/probes/<probe>.ts) adds its own with registerLayout.
 */
export const LAYOUT: Record<string, StructSpec> = {
  hdr: { size: 16, offsets: { type: 0, size: 2, cpu: 4, ts_ns: 8 } },
  tracked: { size: 16, offsets: { start_ns: 0, flags: 8 } },
  hist: { size: 280, offsets: { slots: 0, count: 256, sum_ns: 264, max_ns: 272 } },
};

export function registerLayout(name: string, spec: StructSpec): StructSpec {
  LAYOUT[name] = spec;
  return spec;
}

export const HIST_SLOTS = 32;
export const COMM_LEN = 16;

export interface RecordHeader {
  type: number;
  size: number;
  cpu: number;
  /** CLOCK_BOOTTIME nanoseconds. */
  tsNs: number;
}

export interface UnknownRecord extends RecordHeader {
  type: number;
  unknown: true;
}

/** Any decoded record (the union of every probe's records is AnyRecord in agent/probes). */
export type KernelRecord = RecordHeader;

/** Reads a u64 as a number (exact below 2^53; ns timestamps stay within ~1 ns beyond). */
export function u64(dv: DataView, off: number): number {
  return dv.getUint32(off, true) + dv.getUint32(off + 4, true) * 4294967296;
}

/** A NUL-terminated fixed-size C string. */
export function cstr(dv: DataView, off: number, len: number): string {
  let s = '';
  for (let i = 0; i < len; i++) {
    const c = dv.getUint8(off + i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  return s;
}

export function header(dv: DataView, off: number): RecordHeader {
  return {
    type: dv.getUint16(off, true),
    size: dv.getUint16(off + 2, true),
    cpu: dv.getUint32(off + 4, true),
    tsNs: u64(dv, off + 8),
  };
}

/**
 * Decodes one record. `h` is a fresh header object the decoder may extend and
 * return: assign fields to it (Object.assign or h.x = ...) rather than spreading
 * it into a new object — spreads cost ~5x per record at millions of records/s.
 */
export type Decoder = (dv: DataView, off: number, h: RecordHeader) => KernelRecord;
// Indexed by record type: an array lookup per record, no Map.
const decoders: Array<Decoder | undefined> = [];
const minSizes: number[] = [];

/** Registers the decoder of one record type (probes add theirs in their module). */
export function registerDecoder(type: number, minSize: number, decode: Decoder): void {
  decoders[type] = decode;
  minSizes[type] = minSize;
}

/** Whether a record type has a decoder (the probes register theirs when agent/probes is imported). */
export function hasDecoder(type: number): boolean {
  return decoders[type] !== undefined;
}

export class RecordFormatError extends Error {
  readonly code = 'PREMORTEM_ERR_RECORD_FORMAT';
}

/**
 * Calls `fn` for each record of a batch. A record whose size field would run
 * past the batch (or below a header) stops the walk with an error: the batch
 * is corrupt and nothing after it can be trusted.
 */
export function decodeBatch(batch: ArrayBuffer, fn: (rec: KernelRecord) => void): number {
  const dv = new DataView(batch);
  const end = batch.byteLength;
  let off = 0;
  let n = 0;
  while (off < end) {
    if (end - off < LAYOUT.hdr.size) throw new RecordFormatError(`truncated record header at byte ${off} of ${end}`);
    const type = dv.getUint16(off, true);
    const size = dv.getUint16(off + 2, true);
    if (size < LAYOUT.hdr.size || off + size > end)
      throw new RecordFormatError(`record at byte ${off} claims ${size} bytes; ${end - off} remain`);
    const decode = decoders[type];
    if (decode !== undefined && size >= minSizes[type]) {
      fn(decode(dv, off, header(dv, off)));
    } else {
      const h = header(dv, off) as UnknownRecord;
      h.unknown = true;
      fn(h);
    }
    // The ring buffer hands records 8-byte aligned; our sizes are multiples of 8.
    off += size;
    n++;
  }
  return n;
}

/** A decoded log2 histogram (slot 0: < 1 µs; slot i: [2^(i-1), 2^i) µs). */
export interface Histogram {
  slots: number[];
  count: number;
  sumNs: number;
  maxNs: number;
}

export function decodeHist(buf: ArrayBuffer, offset = 0): Histogram {
  const dv = new DataView(buf, offset, LAYOUT.hist.size);
  const slots: number[] = [];
  for (let i = 0; i < HIST_SLOTS; i++) slots.push(u64(dv, i * 8));
  return {
    slots,
    count: u64(dv, LAYOUT.hist.offsets.count),
    sumNs: u64(dv, LAYOUT.hist.offsets.sum_ns),
    maxNs: u64(dv, LAYOUT.hist.offsets.max_ns),
  };
}

/** Upper bound in µs of a histogram slot (exclusive). */
export function slotHighUs(slot: number): number {
  return 2 ** slot;
}

