/** A Python GC pause over the threshold becomes a gc-pause marker on its worker. */
import { marker } from '../../core/markers';
import type { IngestContext, RecordHandlers } from '../../ingest/context';
import { RecordType } from '../../records';
import { subjectOf } from '../../sampling/worker';
import { GcPauseRecord, GC_GENERATION_UNKNOWN } from './index';

/** A pause this many times the threshold is critical. */
const CRITICAL_FACTOR = 4;

export function pygcHandlers(ctx: IngestContext): RecordHandlers {
  const onGc = (r: GcPauseRecord) => {
    const w = ctx.registry.workerByPid(r.pid);
    if (!w) return;
    const ms = r.durationNs / 1e6;
    const threshold = ctx.options.thresholds.gcPauseMs;
    if (ms < threshold) return;
    const generation = r.generation === GC_GENERATION_UNKNOWN ? 'generation unknown' : `generation ${r.generation}`;
    ctx.markers.raise(w, marker(ctx.clock.recMs(r.tsNs), 'gc-pause', subjectOf(w), ms > CRITICAL_FACTOR * threshold ? 'critical' : 'warning',
      `GC pause of ${ms.toFixed(1)} ms (${generation}, ${r.collected} objects collected)`,
      { pauseMs: ms, generation: r.generation, collected: r.collected }));
  };
  return [[RecordType.Gc, onGc]];
}
