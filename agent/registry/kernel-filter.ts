/**
 * The kernel's side of tracking: the pid filter map the BPF programs consult,
 * and the per-process maps they fill, cleared when a pid changes hands.
 */
import type { Tracer } from '../native';
import type { ErrorCounter } from '../core/errors';
import { NS_PER_TICK } from '../core/clock';

/** bpf/pm_common.h PM_TRACK_FOLLOW_FORKS: the kernel tracks the process's children from their fork. */
export const TRACK_FOLLOW_FORKS = 1;

/** Kernel maps holding per-process state, cleared when a process is retired or a pid reused. */
const PER_PROCESS_MAPS: Array<[string, string]> = [
  ['runqlat', 'runq_hist'], ['runqlat', 'cpu_stats'], ['memory', 'faults'], ['memory', 'rss_last'],
  ['disk', 'disk_proc'], ['disk', 'dstate_hist'], ['pygc', 'gc_hist'], ['pygc', 'gc_stats'],
];

export interface KernelFilter {
  /** Adds the process (identity pid + start ticks) to the pid filter; false when the kernel refused. */
  track(pid: number, startTicks: number, followForks: boolean): boolean;
  /** Takes the pid out of the filter and clears what the per-process maps hold for it. */
  untrack(pid: number): void;
  /** Clears the per-process maps of a pid (an earlier holder's counters). */
  clearMaps(pid: number): void;
}

export function createKernelFilter(tracer: Tracer, loaded: ReadonlySet<string>, errors: ErrorCounter, stopped: () => boolean): KernelFilter {
  const clearMaps = (pid: number) => {
    if (stopped()) return;
    for (const [probe, map] of PER_PROCESS_MAPS) {
      if (!loaded.has(probe)) continue;
      try {
        tracer.mapDelete(probe, map, pid);
      } catch (e) {
        errors.count('map-delete', e);
      }
    }
  };
  return {
    track(pid, startTicks, followForks) {
      try {
        tracer.track(pid, startTicks * NS_PER_TICK, followForks ? TRACK_FOLLOW_FORKS : 0);
        return true;
      } catch (e) {
        errors.count('track', e);
        return false;
      }
    },
    untrack(pid) {
      try {
        tracer.untrack(pid);
      } catch (e) {
        if (!stopped()) errors.count('untrack', e);
      }
      clearMaps(pid);
    },
    clearMaps,
  };
}
