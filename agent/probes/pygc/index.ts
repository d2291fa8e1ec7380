/**
 * pygc: CPython garbage-collection pauses (bpf/pygc.h), from USDT
 * python:gc__start / gc__done or from a uprobe/uretprobe pair on the
 * collector's entry point (agent/python/gc.ts chooses per interpreter).
 */
import type { Tracer } from '../../native';
import { COMM_LEN, Histogram, RecordHeader, RecordType, cstr, decodeHist, registerDecoder, registerLayout, u64 } from '../../records';

export const GC_GENERATIONS = 3;
/** `generation` of a pause whose generation could not be read (a compiler clone of the collector). */
export const GC_GENERATION_UNKNOWN = -1;
const KERNEL_GEN_UNKNOWN = 0xffffffff; // PM_GC_GEN_UNKNOWN

export const GC_PAUSE = registerLayout('gc_pause', {
  size: 64,
  type: RecordType.Gc,
  offsets: { pid: 16, tid: 20, generation: 24, duration_ns: 32, collected: 40, comm: 48 },
});

export const GC_STATS = registerLayout('gc_stats', {
  size: 144,
  offsets: {
    count: 0, sum_ns: 24, max_ns: 48, collected: 72, slow: 96, unmatched: 104,
    unknown_count: 112, unknown_sum_ns: 120, unknown_max_ns: 128, unknown_collected: 136,
  },
});

/** A collection longer than the load-time threshold (pygc rodata targ_gc_min_us). */
export interface GcPauseRecord extends RecordHeader {
  type: typeof RecordType.Gc;
  pid: number;
  tid: number;
  /** 0..2, or GC_GENERATION_UNKNOWN. */
  generation: number;
  durationNs: number;
  /** Objects collected; -1 when the collection failed. */
  collected: number;
  comm: string;
}

const G = GC_PAUSE.offsets;
registerDecoder(RecordType.Gc, GC_PAUSE.size, (dv, o, h) => {
  const r = h as GcPauseRecord;
  r.pid = dv.getUint32(o + G.pid, true);
  r.tid = dv.getUint32(o + G.tid, true);
  const gen = dv.getUint32(o + G.generation, true);
  r.generation = gen === KERNEL_GEN_UNKNOWN ? GC_GENERATION_UNKNOWN : gen;
  r.durationNs = u64(dv, o + G.duration_ns);
  r.collected = Number(dv.getBigInt64(o + G.collected, true));
  r.comm = cstr(dv, o + G.comm, COMM_LEN);
  return r;
});

export interface GcGenerationStats {
  count: number;
  sumNs: number;
  maxNs: number;
  collected: number;
}

/** Cumulative collections of one tracked process, by generation. */
export interface GcStats {
  generations: GcGenerationStats[];
  /** Collections whose generation could not be read (uprobe on a compiler clone of the collector). */
  unknownGeneration: GcGenerationStats;
  /** Pauses above the threshold, counted even when the record was dropped. */
  slow: number;
  /** An end of collection without its start (attached mid-collection). */
  unmatched: number;
}

export function decodeGcStats(buf: ArrayBuffer, offset = 0): GcStats {
  const dv = new DataView(buf, offset, GC_STATS.size);
  const o = GC_STATS.offsets;
  const generations: GcGenerationStats[] = [];
  for (let g = 0; g < GC_GENERATIONS; g++)
    generations.push({
      count: u64(dv, o.count + 8 * g),
      sumNs: u64(dv, o.sum_ns + 8 * g),
      maxNs: u64(dv, o.max_ns + 8 * g),
      collected: u64(dv, o.collected + 8 * g),
    });
  const unknownGeneration = {
    count: u64(dv, o.unknown_count), sumNs: u64(dv, o.unknown_sum_ns),
    maxNs: u64(dv, o.unknown_max_ns), collected: u64(dv, o.unknown_collected),
  };
  return { generations, unknownGeneration, slow: u64(dv, o.slow), unmatched: u64(dv, o.unmatched) };
}

/** GC statistics of a tracked process, or null when it has not collected since tracking began. */
export function readGcStats(tracer: Tracer, pid: number): GcStats | null {
  const v = tracer.mapLookup('pygc', 'gc_stats', pid);
  return v ? decodeGcStats(v) : null;
}

/** Histogram of a tracked process's GC pause durations, or null. */
export function readGcHist(tracer: Tracer, pid: number): Histogram | null {
  const v = tracer.mapLookup('pygc', 'gc_hist', pid);
  return v ? decodeHist(v) : null;
}

/**
 * Attaches gc__start and gc__done to the interpreter binary or libpython at
 * `path` for process `pid` (-1: every process mapping it; see agent/python/gc.ts).
 * Returns the two link ids (detach them with tracer.detach).
 */
export function attachGcProbes(tracer: Tracer, path: string, pid: number): number[] {
  const start = tracer.attachUsdt('pygc', 'gc_start', path, pid, 'python', 'gc__start');
  try {
    return [start, tracer.attachUsdt('pygc', 'gc_done', path, pid, 'python', 'gc__done')];
  } catch (e) {
    tracer.detach(start);
    throw e;
  }
}

/** Where the uprobe on a collector's entry point finds the generation (PM_GC_GEN_FROM_* in bpf/pygc.h). */
export type GcGenerationSource =
  | { from: 'arg'; index: number }
  | { from: 'const'; generation: number }
  /** The argument; when it is "auto" (-1), the generation_stats counter that moved (3.13). */
  | { from: 'arg-or-stats'; index: number; tstateInterp: number; statsStride: number; statsOffset: number }
  | { from: 'unknown' };

/** The attach cookie gc_entry reads (PM_GC_GEN_FROM_* in bpf/pygc.h). */
export function gcEntryCookie(gen: GcGenerationSource): number {
  if (gen.from === 'arg') return 1 | (gen.index << 8);
  if (gen.from === 'const') return 2 | (gen.generation << 8);
  if (gen.from === 'arg-or-stats') {
    if (gen.tstateInterp > 0xff || gen.statsStride > 0xff || gen.statsOffset >= 2 ** 21)
      throw new RangeError(`GC stats layout out of the cookie's range: ${JSON.stringify(gen)}`);
    // Bits 32+ by multiplication: JS bit operators are 32-bit (exact below 2^53).
    return ((3 | (gen.index << 8) | (gen.tstateInterp << 16) | (gen.statsStride << 24)) >>> 0) + gen.statsOffset * 2 ** 32;
  }
  return 0;
}

/** One collector entry point: a function of the file, by file offset. */
export interface GcEntryPoint {
  fileOffset: number;
  generation: GcGenerationSource;
}

/**
 * Attaches gc_entry (uprobe) and gc_return (uretprobe) to each entry point of
 * the binary at `path` (pid -1: every process mapping it). Returns the link
 * ids; on failure nothing stays attached.
 */
export function attachGcUprobes(tracer: Tracer, path: string, entries: GcEntryPoint[], pid: number): number[] {
  const links: number[] = [];
  try {
    for (const e of entries) {
      links.push(tracer.attachUprobe('pygc', 'gc_entry', path, e.fileOffset, pid, gcEntryCookie(e.generation)));
      links.push(tracer.attachUprobe('pygc', 'gc_return', path, e.fileOffset, pid));
    }
    return links;
  } catch (e) {
    for (const l of links) tracer.detach(l);
    throw e;
  }
}
