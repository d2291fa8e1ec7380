/**
 * One bucket per tracked process per tick: the kernel's cumulative
 * per-process counters (deltas since the last tick), RSS, the memory cgroup,
 * signals received; then the markers its newest bucket raises.
 */
import type { AgentOptions } from '../config';
import type { Clock } from '../core/clock';
import type { LossLedger } from '../core/loss';
import { MarkerBoard, marker, Subject } from '../core/markers';
import { rereadMemoryCgroup } from '../cgroup/memory';
import type { Tracer } from '../native';
import type { WorkerState } from '../registry/state';
import { slopePerSecond } from '../timeline';
import { bucketFrom, Cumulative, readCumulative, readCumulativeMany } from './cumulative';
import { createCgroupTickCache } from './proc-read';
import { createThreadSampler, ThreadSampler } from './threads';

/** Buckets of RSS history the slope is fitted over. */
const RSS_SLOPE_BUCKETS = 10;
/** A slow wait longer than this is critical rather than a warning. */
const CRITICAL_WAIT_NS = 100e6;

export const subjectOf = (w: WorkerState): Subject => ({ pid: w.identity.pid, startTicks: w.identity.startTicks, serviceId: w.identity.serviceId });

export interface WorkerSampler {
  /** Appends the bucket of interval `tMs`; `final`: the process is gone (its exit record holds the last RSS). */
  sample(w: WorkerState, tMs: number, final?: boolean): void;
  /**
   * Starts a tick: forgets the memory cgroups read last tick and reads the kernel counters of
   * `workers` (those alive and not being judged) at once, for their sample() calls that follow.
   */
  newTick(workers?: Iterable<WorkerState>): void;
  /** Per-thread time of multi-threaded workers (where their last seconds went, thread by thread). */
  readonly threads: ThreadSampler;
}

export function createWorkerSampler(tracer: Tracer, loaded: ReadonlySet<string>, options: AgentOptions, clock: Clock,
  loss: LossLedger, markers: MarkerBoard): WorkerSampler {
  // Processes of one pool share a cgroup: its files are read once per tick.
  const cgroups = createCgroupTickCache();
  const cgroupOf = (pid: number) => cgroups.of(pid);
  // This tick's kernel counters, read for all workers at once by newTick().
  let prefetched = new Map<WorkerState, Cumulative>();

  const rssAtDeath = (w: WorkerState): number | undefined => {
    if (w.exit?.mmPresent) return w.exit.rssAnonBytes + w.exit.rssFileBytes + w.exit.rssShmemBytes;
    return w.oom?.rssBytes || undefined;
  };

  const slowWakeupMarker = (w: WorkerState) => {
    const r = w.slowWaits.worst;
    if (!r) return;
    markers.raise(w, marker(clock.recMs(r.tsNs), 'slow-wakeup', subjectOf(w), r.waitNs > CRITICAL_WAIT_NS ? 'critical' : 'warning',
      `waited ${(r.waitNs / 1e6).toFixed(1)} ms for a CPU (${w.slowWaits.count} slow waits this interval); pid ${r.culpritPid} (${r.culpritComm}) held CPU ${r.cpu}`,
      { waitMs: r.waitNs / 1e6, count: w.slowWaits.count, culpritPid: r.culpritPid, cpu: r.cpu },
      { culprit: r.culpritComm, cause: r.preempted ? 'preempted' : 'woken' }));
    w.slowWaits = { count: 0 };
  };

  const threads = createThreadSampler(tracer, loaded, options.bundleWindowMs);

  return {
    threads,
    newTick(workers) {
      cgroups.clear();
      const batch = workers ? [...workers].filter((w) => w.alive && !w.judging) : [];
      const read = readCumulativeMany(tracer, batch.map((w) => w.identity.pid), loaded);
      prefetched = new Map(batch.map((w, i) => [w, read[i]]));
    },
    sample(w, tMs, final = false) {
      const early = final ? undefined : prefetched.get(w);
      prefetched.delete(w);
      const now = early ?? readCumulative(tracer, w.identity.pid, loaded);
      const rssLast = now.rssLast;
      const rssBytes = (final ? rssAtDeath(w) : undefined) ?? (rssLast && rssLast.rssBytes > 0 ? rssLast.rssBytes : undefined);
      const b = bucketFrom(now, w.prev, { rssBytes });
      if (final && !now.stat) {
        // The process is gone: /proc counters are not available for the last bucket.
        delete b.cpuMs;
        b.threads = 0;
      }
      w.prev = now;
      // An exited task (zombie or gone) shows the root cgroup in /proc: keep the last one it lived in.
      const living = !final && now.stat !== undefined && now.stat.state !== 'Z';
      let cg = living ? cgroupOf(w.identity.pid) : w.memoryCgroup && rereadMemoryCgroup(w.memoryCgroup);
      // A task on its way out already shows the root cgroup: keep the one it lived in.
      if (cg && cg.path === '/' && w.memoryCgroup && w.memoryCgroup.path !== '/') cg = rereadMemoryCgroup(w.memoryCgroup);
      if (cg) {
        w.memoryCgroup = cg;
        b.cgroupUsageBytes = cg.usageBytes;
        b.cgroupLimitBytes = cg.limitBytes ?? 0;
      }
      b.signalsReceived = w.signals.filter((x) => x.tMs >= tMs && x.tMs < tMs + options.intervalMs).length;
      const pts = w.timeline.series('rssBytes', RSS_SLOPE_BUCKETS - 1);
      pts.push([tMs, b.rssBytes ?? 0]);
      b.rssSlopeBytesPerS = slopePerSecond(pts.filter(([, v]) => v > 0));
      b.gap = loss.thisInterval > 0;
      w.timeline.push(tMs, b);
      threads.sample(w, tMs, final, now.stat?.threads ?? 0);
      slowWakeupMarker(w);
    },
  };
}
