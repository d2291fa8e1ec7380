/**
 * Per-interval sampling: reads the kernel's cumulative per-process maps (and
 * /proc where the kernel keeps the number itself) for every tracked process at
 * once and turns them into one bucket of deltas and gauges per process. A
 * probe that is off leaves its fields 0 (the feature list says why).
 */
import type { Tracer } from '../native';
import { decodeHist, HIST_SLOTS, Histogram } from '../records';
import { decodeCpuStats, CpuStats, TimeClass } from '../probes/runqlat';
import { decodeFaultStats, decodeRssLast, FaultStats, RssLast } from '../probes/memory';
import { decodeDiskStats, deviceName, DiskStats } from '../probes/disk';
import type { DeviceBucket } from '../../proto/codec';
import { decodeGcStats, GcStats } from '../probes/pygc';
import { histPercentileUs, WorkerField, WorkerSample } from '../timeline';
import { CLK_TCK, PAGE_SIZE, ProcStat } from '../procfs';
import { readStatFast } from './proc-read';

/** Cumulative counters of one process as last read. */
export interface Cumulative {
  runq?: Histogram;
  cpu?: CpuStats;
  faults?: FaultStats;
  rssLast?: RssLast;
  dstate?: Histogram;
  disk?: DiskStats;
  gc?: GcStats;
  stat?: ProcStat;
}

/**
 * The per-process maps read at every tick, and where each value goes. A probe that is not
 * loaded is skipped (its fields stay 0 and the feature list says why). Adding a map is a line.
 */
interface MapSource {
  probe: string;
  map: string;
  apply(c: Cumulative, values: ArrayBuffer, offset: number): void;
}

const MAP_SOURCES: readonly MapSource[] = [
  { probe: 'runqlat', map: 'runq_hist', apply: (c, v, o) => { c.runq = decodeHist(v, o); } },
  { probe: 'runqlat', map: 'cpu_stats', apply: (c, v, o) => { c.cpu = decodeCpuStats(v, o); } },
  { probe: 'memory', map: 'faults', apply: (c, v, o) => { c.faults = decodeFaultStats(v, o); } },
  { probe: 'memory', map: 'rss_last', apply: (c, v, o) => { c.rssLast = decodeRssLast(v, o); } },
  { probe: 'disk', map: 'dstate_hist', apply: (c, v, o) => { c.dstate = decodeHist(v, o); } },
  { probe: 'disk', map: 'disk_proc', apply: (c, v, o) => { c.disk = decodeDiskStats(v, o); } },
  { probe: 'pygc', map: 'gc_stats', apply: (c, v, o) => { c.gc = decodeGcStats(v, o); } },
];

/**
 * The cumulative counters of many processes: each map read once for all of them
 * (Tracer.mapLookupMany: one call per map, not per process and map), then /proc/PID/stat.
 * Result i belongs to pids[i].
 */
export function readCumulativeMany(tracer: Tracer, pids: ArrayLike<number>, loaded: ReadonlySet<string>): Cumulative[] {
  const out: Cumulative[] = new Array(pids.length);
  for (let i = 0; i < pids.length; i++) out[i] = {};
  if (!pids.length) return out;
  const keys = Uint32Array.from(pids);
  for (const src of MAP_SOURCES) {
    if (!loaded.has(src.probe)) continue;
    let r: ReturnType<Tracer['mapLookupMany']>;
    try {
      r = tracer.mapLookupMany(src.probe, src.map, keys);
    } catch {
      continue; // this map is absent from this build (or its probe failed): the field stays 0
    }
    for (let i = 0; i < keys.length; i++) if (r.found[i]) src.apply(out[i], r.values, i * r.valueSize);
  }
  for (let i = 0; i < keys.length; i++) out[i].stat = readStatFast(keys[i]) ?? undefined;
  return out;
}

export function readCumulative(tracer: Tracer, pid: number, loaded: ReadonlySet<string>): Cumulative {
  return readCumulativeMany(tracer, [pid], loaded)[0];
}

const d = (now = 0, before = 0) => Math.max(0, now - before);

export function histDelta(now?: Histogram, before?: Histogram): { slots: number[]; count: number; sumNs: number; maxNs: number } {
  const slots = new Array<number>(HIST_SLOTS).fill(0);
  if (!now) return { slots, count: 0, sumNs: 0, maxNs: 0 };
  for (let i = 0; i < HIST_SLOTS; i++) slots[i] = d(now.slots[i], before?.slots[i]);
  const count = d(now.count, before?.count);
  // The kernel keeps an all-time max: it is this interval's max only if it moved.
  let top = HIST_SLOTS - 1;
  while (top > 0 && slots[top] === 0) top--;
  const maxNs = now.maxNs > (before?.maxNs ?? 0) ? now.maxNs : count ? 2 ** top * 1000 : 0;
  return { slots, count, sumNs: d(now.sumNs, before?.sumNs), maxNs };
}

/** One bucket from two cumulative readings (and gauges read now). */
export function bucketFrom(now: Cumulative, before: Cumulative | undefined, gauges: { rssBytes?: number }): WorkerSample {
  const runq = histDelta(now.runq, before?.runq);
  const dstate = histDelta(now.dstate, before?.dstate);
  // Percentiles are slot upper bounds; never report them above the measured max.
  const cap = (us: number) => (runq.maxNs > 0 ? Math.min(us, Math.max(1, Math.round(runq.maxNs / 1000))) : us);
  const s: WorkerSample = {
    runqP50Us: cap(histPercentileUs(runq.slots, 0.5)),
    runqP99Us: cap(histPercentileUs(runq.slots, 0.99)),
    runqHist: runq.slots,
    runqCount: runq.count,
    runqMaxUs: Math.round(runq.maxNs / 1000),
    involuntarySwitches: d(now.cpu?.involuntarySwitches, before?.cpu?.involuntarySwitches),
    voluntarySwitches: d(now.cpu?.voluntarySwitches, before?.cpu?.voluntarySwitches),
    dstateNs: dstate.sumNs,
    dstateMaxNs: dstate.maxNs,
  };
  if (now.cpu) timeFields(s, now.cpu, before?.cpu);
  if (now.faults) {
    s.minorFaults = d(now.faults.minor, before?.faults?.minor);
    s.majorFaults = d(now.faults.major, before?.faults?.major);
  } else if (now.stat) {
    // No fault probe: the kernel's own per-process counters from /proc.
    s.minorFaults = d(now.stat.minflt, before?.stat?.minflt);
    s.majorFaults = d(now.stat.majflt, before?.stat?.majflt);
  }
  if (now.stat) {
    const ticks = now.stat.utimeTicks + now.stat.stimeTicks;
    const prev = before?.stat ? before.stat.utimeTicks + before.stat.stimeTicks : ticks;
    s.cpuMs = d(ticks, prev) * (1000 / CLK_TCK);
    s.threads = now.stat.threads;
  }
  s.rssBytes = gauges.rssBytes ?? (now.stat ? now.stat.rssPages * PAGE_SIZE : 0);
  if (now.disk) {
    const lat = histDelta(now.disk.latency, before?.disk?.latency);
    s.bioLatP99Us = lat.count ? Math.min(histPercentileUs(lat.slots, 0.99), Math.max(1, Math.round(lat.maxNs / 1000))) : 0;
    s.bioLatMaxUs = Math.round(lat.maxNs / 1000);
    s.bioReadBytes = d(now.disk.readBytes, before?.disk?.readBytes);
    s.bioWriteBytes = d(now.disk.writeBytes, before?.disk?.writeBytes);
    s.bioOps = d(now.disk.readOps + now.disk.writeOps + now.disk.flushOps + now.disk.otherOps,
      before?.disk ? before.disk.readOps + before.disk.writeOps + before.disk.flushOps + before.disk.otherOps : 0);
  }
  if (now.gc) {
    let pauses = 0, ns = 0, max = 0;
    // Collections whose generation could not be read (3.8's cloned collector) are pauses too.
    const all = (x?: GcStats) => (x ? [...x.generations, x.unknownGeneration] : []);
    const prevAll = all(before?.gc ?? undefined);
    all(now.gc).forEach((g, i) => {
      const b = prevAll[i];
      pauses += d(g.count, b?.count);
      ns += d(g.sumNs, b?.sumNs);
      if (g.maxNs > (b?.maxNs ?? 0)) max = Math.max(max, g.maxNs);
    });
    s.gcPauses = pauses;
    s.gcPauseNs = ns;
    s.gcMaxPauseNs = max;
  }
  return s;
}

/** Bucket fields of each time class (bpf/runqlat.h pm_time_class): where the interval's thread time went. */
const TIME_FIELDS: ReadonlyArray<[number, WorkerField]> = [
  [TimeClass.OnCpu, 'onCpuNs'], [TimeClass.Runq, 'runqWaitNs'], [TimeClass.Throttled, 'throttledNs'],
  [TimeClass.DState, 'blockedIoNs'], [TimeClass.Fault, 'faultWaitNs'], [TimeClass.Net, 'sleepNetNs'],
  [TimeClass.Lock, 'sleepLockNs'], [TimeClass.Timer, 'sleepTimerNs'], [TimeClass.Other, 'sleepOtherNs'],
];

function timeFields(s: WorkerSample, now: CpuStats, before: CpuStats | undefined): void {
  for (const [cls, field] of TIME_FIELDS) s[field] = d(now.time[cls], before?.time[cls]);
  // The system call of the latest D sleep, when one ended in this interval.
  s.blockedSyscall = (s.blockedIoNs ?? 0) > 0 ? now.dstateSyscall : 0;
}

/** Block devices that served requests since the last reading, busiest first. */
export function deviceBuckets(now: Map<string, DiskStats>, before: Map<string, DiskStats> | undefined): DeviceBucket[] {
  const out: DeviceBucket[] = [];
  for (const [majMin, n] of now) {
    const b = before?.get(majMin);
    const lat = histDelta(n.latency, b?.latency);
    if (!lat.count) continue;
    const maxUs = Math.max(1, Math.round(lat.maxNs / 1000));
    out.push({
      device: deviceName(majMin), ops: lat.count,
      readBytes: d(n.readBytes, b?.readBytes), writeBytes: d(n.writeBytes, b?.writeBytes),
      latP50Us: Math.min(histPercentileUs(lat.slots, 0.5), maxUs), latP99Us: Math.min(histPercentileUs(lat.slots, 0.99), maxUs),
      latMaxUs: Math.round(lat.maxNs / 1000), slow: d(n.slow, b?.slow), errors: d(n.errors, b?.errors),
    });
  }
  return out.sort((x, y) => y.ops - x.ops);
}
