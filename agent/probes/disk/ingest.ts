/** A block request slower than the threshold, issued by a tracked process: a slow-io marker naming the device. */
import { marker } from '../../core/markers';
import type { IngestContext, RecordHandlers } from '../../ingest/context';
import { RecordType } from '../../records';
import { subjectOf } from '../../sampling/worker';
import { BioSlowRecord, deviceName, devName, diskOpName } from './index';

export function diskHandlers(ctx: IngestContext): RecordHandlers {
  const onBioSlow = (r: BioSlowRecord) => {
    const w = r.pid ? ctx.registry.workerByPid(r.pid) : undefined;
    if (!w) return;
    const device = deviceName(devName(r.dev));
    ctx.markers.raise(w, marker(ctx.clock.recMs(r.tsNs), 'slow-io', subjectOf(w), 'warning',
      `a ${r.bytes}-byte ${diskOpName(r.op)} on ${device} took ${(r.latencyNs / 1e6).toFixed(1)} ms`,
      { latencyMs: r.latencyNs / 1e6, bytes: r.bytes }, { device, op: diskOpName(r.op) }));
  };
  return [[RecordType.BioSlow, onBioSlow]];
}
