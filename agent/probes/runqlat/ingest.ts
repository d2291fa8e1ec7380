/** Slow waits for a CPU are aggregated per interval: the worst becomes one slow-wakeup marker at the tick. */
import type { IngestContext, RecordHandlers } from '../../ingest/context';
import { RecordType } from '../../records';
import type { RunqSlowRecord } from './index';

export function runqlatHandlers(ctx: IngestContext): RecordHandlers {
  const onRunqSlow = (r: RunqSlowRecord) => {
    const w = ctx.registry.workerByPid(r.pid);
    if (!w) return;
    w.slowWaits.count++;
    if (!w.slowWaits.worst || r.waitNs > w.slowWaits.worst.waitNs) w.slowWaits.worst = r;
  };
  return [[RecordType.RunqSlow, onRunqSlow]];
}
