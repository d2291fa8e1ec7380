/**
 * `premortem export ID --format perfetto`: a post-mortem as a Chrome/Perfetto
 * JSON trace (Trace Event Format, `{"traceEvents": [...]}`), which opens in
 * ui.perfetto.dev and chrome://tracing.
 *
 * Layout of the trace:
 *   - one process track per worker timeline of the bundle (the dead worker
 *     first, then its siblings and the master), pid = the real pid, with
 *     process_name / thread_name / process_labels / process_sort_index
 *     metadata ("M") naming pid, comm, role and (dead worker) the verdict;
 *   - one process track for the service (SERVICE_TRACK_PID) and one for the
 *     host (HOST_TRACK_PID), which real pids never reach (pid_max <= 2^22);
 *   - counter tracks ("C") per worker: RSS, runqueue latency p99, page faults,
 *     D-state time, CPU time, involuntary switches; per service: accept-queue
 *     (backlog) depth and max, socket counts by state; per host: PSI. A counter
 *     sample sits at the start of the bucket it describes and holds until the
 *     next one (deltas are per interval, gauges are the value at its end);
 *   - complete slices ("X") for markers that carry a duration: gc-pause
 *     (numbers.pauseMs), slow-wakeup (numbers.waitMs), slow-io
 *     (numbers.latencyMs). Their records are written when the pause or wait
 *     ends, so a slice runs from tMs - duration to tMs;
 *   - instant events ("i") for signals, OOM, the exit (with the verdict) and
 *     every other marker, with their numbers and details in args.
 * Timestamps are unix microseconds (exact: below 2^53), so trace times read
 * the same as the bundle's `tMs` * 1000.
 */
import type { Bundle, Bucket, Identity, Marker } from '../../proto/codec';

/** pid of the service track: above any real pid (Linux pid_max is at most 2^22). */
export const SERVICE_TRACK_PID = 0x7ffffff0;
/** pid of the host track. */
export const HOST_TRACK_PID = 0x7ffffff1;
/** Base for worker tracks whose pid repeats in one bundle (pid reuse): pid + n * PID_REUSE_STRIDE. */
const PID_REUSE_STRIDE = 1 << 23;

/** Trace Event Format event (the subset written here). */
export interface TraceEvent {
  name: string;
  ph: 'M' | 'C' | 'X' | 'i';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  s?: 'g' | 'p' | 't';
  args?: Record<string, unknown>;
}

export interface PerfettoTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, string | number>;
}

/** Worker counter tracks: counter name -> [args key, value of a bucket]. */
const WORKER_COUNTERS: Array<[string, string, (b: Bucket) => number]> = [
  ['RSS', 'bytes', (b) => b.rssBytes],
  ['runqueue latency p99', 'us', (b) => b.runqP99Us],
  ['page faults', 'minor', (b) => b.minorFaults],
  ['major page faults', 'major', (b) => b.majorFaults],
  ['D-state time', 'ms', (b) => b.dstateNs / 1e6],
  ['CPU time', 'ms', (b) => b.cpuMs],
  ['involuntary switches', 'count', (b) => b.involuntarySwitches],
];

/** Markers drawn as slices: kind -> the number holding the duration in ms, and the slice's name. */
const DURATION_MARKERS: Record<string, { ms: string; name: (m: Marker) => string; cat: string }> = {
  'gc-pause': { ms: 'pauseMs', cat: 'gc', name: (m) => `GC pause${m.numbers.generation !== undefined ? ` (generation ${m.numbers.generation})` : ''}` },
  'slow-wakeup': { ms: 'waitMs', cat: 'sched', name: () => 'runqueue wait' },
  'slow-io': { ms: 'latencyMs', cat: 'disk', name: () => 'slow block I/O' },
};

const us = (tMs: number) => Math.round(tMs * 1000);
const finite = (n: number) => (Number.isFinite(n) ? n : 0);

function markerName(m: Marker): string {
  switch (m.kind) {
    case 'signal': return m.details.signal ? `signal ${m.details.signal}` : 'signal';
    case 'oom': return 'OOM victim';
    case 'oom-kill': return `exit: ${m.details.verdict ?? 'oom-killed'}`;
    case 'exit': return `exit: ${m.details.verdict ?? 'exited'}`;
    default: return m.kind;
  }
}

function markerCat(m: Marker): string {
  if (m.kind === 'signal') return 'signal';
  if (m.kind === 'oom') return 'oom';
  if (m.kind === 'exit' || m.kind === 'oom-kill') return 'exit';
  return 'marker';
}

function processLabel(id: Identity, verdict?: string): string {
  return `${id.comm || 'process'} pid ${id.pid} (${id.role}${verdict ? `, ${verdict}` : ''})`;
}

/** The trace as an object (what exportBundle serialises). */
export function bundleToTrace(bundle: Bundle): PerfettoTrace {
  const meta: TraceEvent[] = [];
  const timed: TraceEvent[] = [];
  const verdict = bundle.verdict;
  const dead = bundle.worker;
  const trackOf = new Map<string, number>(); // "pid:startTicks" -> track pid
  const used = new Set<number>();

  const addProcess = (pid: number, name: string, sort: number, labels: string, args: Record<string, unknown>) => {
    meta.push({ name: 'process_name', ph: 'M', pid, tid: pid, args: { name, ...args } });
    meta.push({ name: 'process_sort_index', ph: 'M', pid, tid: pid, args: { sort_index: sort } });
    if (labels) meta.push({ name: 'process_labels', ph: 'M', pid, tid: pid, args: { labels } });
  };

  bundle.timelines.forEach((t, i) => {
    const id = t.identity;
    if (!id) return;
    let pid = id.pid;
    for (let n = 1; used.has(pid); n++) pid = id.pid + n * PID_REUSE_STRIDE;
    used.add(pid);
    trackOf.set(`${id.pid}:${id.startTicks}`, pid);
    const isDead = i === 0 && dead !== undefined && dead.pid === id.pid && dead.startTicks === id.startTicks;
    const v = isDead ? verdict?.kind : undefined;
    addProcess(pid, processLabel(id, v), i, [id.role, isDead ? `died: ${v ?? 'unknown'}` : '', id.role === 'worker' ? `generation ${id.generation}` : '']
      .filter(Boolean).join(', '), {
      pid: id.pid, comm: id.comm, role: id.role, startTicks: id.startTicks, generation: id.generation, cmdline: id.cmdline,
      ...(isDead ? { verdict: verdict?.kind ?? 'unknown', summary: verdict?.summary ?? '' } : {}),
    });
    meta.push({ name: 'thread_name', ph: 'M', pid, tid: pid, args: { name: `${id.comm || 'main'} (${id.role})`, pid: id.pid, comm: id.comm, role: id.role, ...(v ? { verdict: v } : {}) } });
    for (const b of t.buckets) {
      const ts = us(b.tMs);
      for (const [name, key, value] of WORKER_COUNTERS) timed.push({ name, ph: 'C', pid, tid: pid, ts, cat: 'worker', args: { [key]: finite(value(b)) } });
    }
  });

  const svc = bundle.service;
  if (bundle.serviceBuckets.length || svc) {
    addProcess(SERVICE_TRACK_PID, `service ${svc?.name ?? ''}`.trim(), bundle.timelines.length, `service, ports ${svc?.ports.join(',') ?? ''}`, {
      serviceId: svc?.id ?? '', kind: svc?.kind ?? 'unknown', masterPid: svc?.masterPid ?? 0,
    });
    meta.push({ name: 'thread_name', ph: 'M', pid: SERVICE_TRACK_PID, tid: SERVICE_TRACK_PID, args: { name: 'sockets' } });
    // Every state seen in the window gets a series, 0 where absent, so each track is continuous.
    const states = [...new Set(bundle.serviceBuckets.flatMap((b) => Object.keys(b.socketStates)))].sort();
    for (const b of bundle.serviceBuckets) {
      const ts = us(b.tMs);
      const tid = SERVICE_TRACK_PID;
      timed.push({ name: 'backlog depth', ph: 'C', pid: SERVICE_TRACK_PID, tid, ts, cat: 'service', args: { depth: b.backlogDepth } });
      timed.push({ name: 'backlog max', ph: 'C', pid: SERVICE_TRACK_PID, tid, ts, cat: 'service', args: { max: b.backlogMax } });
      timed.push({ name: 'workers alive', ph: 'C', pid: SERVICE_TRACK_PID, tid, ts, cat: 'service', args: { workers: b.workersAlive } });
      if (states.length) {
        const args: Record<string, number> = {};
        for (const s of states) args[s] = b.socketStates[s] ?? 0;
        timed.push({ name: 'sockets', ph: 'C', pid: SERVICE_TRACK_PID, tid, ts, cat: 'service', args });
      }
    }
  }
  if (bundle.hostBuckets.length) {
    addProcess(HOST_TRACK_PID, `host ${bundle.host}`.trim(), bundle.timelines.length + 1, `kernel ${bundle.kernel}`, { host: bundle.host, kernel: bundle.kernel });
    for (const b of bundle.hostBuckets) {
      timed.push({ name: 'PSI avg10', ph: 'C', pid: HOST_TRACK_PID, tid: HOST_TRACK_PID, ts: us(b.tMs), cat: 'host', args: {
        memSome: finite(b.psiMemSomeAvg10), memFull: finite(b.psiMemFullAvg10), cpuSome: finite(b.psiCpuSomeAvg10), ioSome: finite(b.psiIoSomeAvg10),
      } });
    }
  }

  let exitSeen = false;
  for (const m of bundle.markers) {
    let pid: number;
    if (m.pid) pid = trackOf.get(`${m.pid}:${m.startTicks}`) ?? trackOf.get([...trackOf.keys()].find((k) => k.startsWith(`${m.pid}:`)) ?? '') ?? m.pid;
    else pid = m.serviceId ? SERVICE_TRACK_PID : HOST_TRACK_PID;
    if (!m.pid && !m.serviceId && !bundle.hostBuckets.length && !meta.some((e) => e.pid === HOST_TRACK_PID)) {
      addProcess(HOST_TRACK_PID, `host ${bundle.host}`.trim(), bundle.timelines.length + 1, '', { host: bundle.host });
    }
    const args = { message: m.message, severity: m.severity, kind: m.kind, ...m.numbers, ...m.details };
    const dur = DURATION_MARKERS[m.kind];
    const ms = dur ? m.numbers[dur.ms] : undefined;
    if (dur && typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) {
      const d = Math.round(ms * 1000);
      timed.push({ name: dur.name(m), ph: 'X', pid, tid: pid, ts: us(m.tMs) - d, dur: d, cat: dur.cat, args });
      continue;
    }
    if ((m.kind === 'exit' || m.kind === 'oom-kill') && dead && m.pid === dead.pid) {
      exitSeen = true;
      Object.assign(args, { verdict: verdict?.kind ?? m.details.verdict ?? 'unknown', summary: verdict?.summary ?? m.message });
    }
    timed.push({ name: markerName(m), ph: 'i', s: pid === HOST_TRACK_PID ? 'g' : 'p', pid, tid: pid, ts: us(m.tMs), cat: markerCat(m), args });
  }
  if (!exitSeen && dead && verdict) {
    // Older bundles may lack the exit marker: the verdict still marks the death.
    const pid = trackOf.get(`${dead.pid}:${dead.startTicks}`) ?? dead.pid;
    timed.push({ name: `exit: ${verdict.kind}`, ph: 'i', s: 'p', pid, tid: pid, ts: us(verdict.tMs), cat: 'exit', args: {
      verdict: verdict.kind, summary: verdict.summary, signal: verdict.signalName, exitCode: verdict.exitCode, senderPid: verdict.senderPid, senderComm: verdict.senderComm,
    } });
  }
  // Stable order by time (metadata first): readers that do not sort still see each track in order.
  timed.sort((a, b) => a.ts! - b.ts!);
  return {
    traceEvents: [...meta, ...timed],
    displayTimeUnit: 'ms',
    otherData: {
      producer: `premortem ${bundle.agentVersion}`.trim(), bundleId: bundle.id, host: bundle.host, kernel: bundle.kernel,
      verdict: verdict?.kind ?? 'unknown', summary: verdict?.summary ?? '', windowStartMs: bundle.windowStartMs, windowEndMs: bundle.windowEndMs,
      intervalMs: bundle.intervalMs, lostRecords: bundle.lostRecords,
    },
  };
}

/** The JSON trace text of a post-mortem. */
export function exportBundle(bundle: Bundle): string {
  return JSON.stringify(bundleToTrace(bundle)) + '\n';
}
