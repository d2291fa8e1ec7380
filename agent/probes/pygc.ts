/** pygc: CPython garbage-collection pauses from USDT python:gc__start / gc__done (bpf/pygc.h). */
import type { Tracer } from '../native';
import { COMM_LEN, Histogram, RecordHeader, RecordType, cstr, decodeHist, registerDecoder, registerLayout, u64 } from '../records';

export const GC_GENERATIONS = 3;

export const GC_PAUSE = registerLayout('gc_pause', {
  size: 64,
  type: RecordType.Gc,
  offsets: { pid: 16, tid: 20, generation: 24, duration_ns: 32, collected: 40, comm: 48 },
});

export const GC_STATS = registerLayout('gc_stats', {
  size: 112,
  offsets: { count: 0, sum_ns: 24, max_ns: 48, collected: 72, slow: 96, unmatched: 104 },
});

/** A collection longer than the load-time threshold (pygc rodata targ_gc_min_us). */
export interface GcPauseRecord extends RecordHeader {
  type: typeof RecordType.Gc;
  pid: number;
  tid: number;
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
  r.generation = dv.getUint32(o + G.generation, true);
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
  /** Pauses above the threshold, counted even when the record was dropped. */
  slow: number;
  /** gc__done without its gc__start (attached mid-collection). */
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
  return { generations, slow: u64(dv, o.slow), unmatched: u64(dv, o.unmatched) };
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
 * `path` for process `pid` (see agent/python-usdt.ts findGcProbeTarget).
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
