/**
 * Decoder for the fixed-layout kernel records (bpf/pm_common.h and the probe
 * headers). Offsets live in LAYOUT, which test/records.test.ts checks against
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

export interface StructSpec {
  size: number;
  type?: number;
  offsets: Record<string, number>;
}

/** Sizes and offsets, mirrored from the C headers. */
export const LAYOUT: Record<string, StructSpec> = {
  hdr: { size: 16, offsets: { type: 0, size: 2, cpu: 4, ts_ns: 8 } },
  tracked: { size: 16, offsets: { start_ns: 0, flags: 8 } },
  hist: { size: 280, offsets: { slots: 0, count: 256, sum_ns: 264, max_ns: 272 } },
  cpu_stats: {
    size: 32,
    offsets: { involuntary_switches: 0, voluntary_switches: 8, slow_waits: 16, wakeups: 24 },
  },
  runq_slow: {
    size: 80,
    type: RecordType.RunqSlow,
    offsets: {
      pid: 16, tid: 20, wait_ns: 24, culprit_pid: 32, culprit_tid: 36, preempted: 40,
      comm: 48, culprit_comm: 64,
    },
  },
  flood: { size: 24, type: RecordType.Flood, offsets: { seq: 16 } },
  flood_cfg: { size: 8, offsets: { tgid: 0, batch: 4 } },
};

export const HIST_SLOTS = 32;
export const COMM_LEN = 16;

export interface RecordHeader {
  type: number;
  size: number;
  cpu: number;
  /** CLOCK_BOOTTIME nanoseconds. */
  tsNs: number;
}

export interface RunqSlowRecord extends RecordHeader {
  type: typeof RecordType.RunqSlow;
  pid: number;
  tid: number;
  waitNs: number;
  culpritPid: number;
  culpritTid: number;
  /** The wait began with a preemption (true) or a wakeup (false). */
  preempted: boolean;
  comm: string;
  culpritComm: string;
}

export interface FloodRecord extends RecordHeader {
  type: typeof RecordType.Flood;
  seq: number;
}

export interface UnknownRecord extends RecordHeader {
  type: number;
  unknown: true;
}

export type KernelRecord = RunqSlowRecord | FloodRecord | UnknownRecord;

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

function header(dv: DataView, off: number): RecordHeader {
  return {
    type: dv.getUint16(off, true),
    size: dv.getUint16(off + 2, true),
    cpu: dv.getUint32(off + 4, true),
    tsNs: u64(dv, off + 8),
  };
}

type Decoder = (dv: DataView, off: number, h: RecordHeader) => KernelRecord;
const decoders = new Map<number, Decoder>();

/** Registers the decoder of one record type (probes add theirs in their module). */
export function registerDecoder(type: number, minSize: number, decode: Decoder): void {
  decoders.set(type, (dv, off, h) => {
    if (h.size < minSize) return { ...h, unknown: true } as UnknownRecord;
    return decode(dv, off, h);
  });
}

const R = LAYOUT.runq_slow.offsets;
registerDecoder(RecordType.RunqSlow, LAYOUT.runq_slow.size, (dv, o, h) => ({
  ...h,
  type: RecordType.RunqSlow,
  pid: dv.getUint32(o + R.pid, true),
  tid: dv.getUint32(o + R.tid, true),
  waitNs: u64(dv, o + R.wait_ns),
  culpritPid: dv.getUint32(o + R.culprit_pid, true),
  culpritTid: dv.getUint32(o + R.culprit_tid, true),
  preempted: dv.getUint32(o + R.preempted, true) !== 0,
  comm: cstr(dv, o + R.comm, COMM_LEN),
  culpritComm: cstr(dv, o + R.culprit_comm, COMM_LEN),
}));

registerDecoder(RecordType.Flood, LAYOUT.flood.size, (dv, o, h) => ({
  ...h,
  type: RecordType.Flood,
  seq: u64(dv, o + LAYOUT.flood.offsets.seq),
}));

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
    const h = header(dv, off);
    if (h.size < LAYOUT.hdr.size || off + h.size > end)
      throw new RecordFormatError(`record at byte ${off} claims ${h.size} bytes; ${end - off} remain`);
    const decode = decoders.get(h.type);
    fn(decode ? decode(dv, off, h) : ({ ...h, unknown: true } as UnknownRecord));
    // The ring buffer hands records 8-byte aligned; our sizes are multiples of 8.
    off += h.size;
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

/** Lower bound in µs of a histogram slot. */
export function slotLowUs(slot: number): number {
  return slot === 0 ? 0 : 2 ** (slot - 1);
}

/** Upper bound in µs of a histogram slot (exclusive). */
export function slotHighUs(slot: number): number {
  return 2 ** slot;
}

export interface CpuStats {
  involuntarySwitches: number;
  voluntarySwitches: number;
  slowWaits: number;
  wakeups: number;
}

export function decodeCpuStats(buf: ArrayBuffer, offset = 0): CpuStats {
  const dv = new DataView(buf, offset, LAYOUT.cpu_stats.size);
  const o = LAYOUT.cpu_stats.offsets;
  return {
    involuntarySwitches: u64(dv, o.involuntary_switches),
    voluntarySwitches: u64(dv, o.voluntary_switches),
    slowWaits: u64(dv, o.slow_waits),
    wakeups: u64(dv, o.wakeups),
  };
}
