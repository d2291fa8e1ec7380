/** flood: the synthetic record source used by benchmarks and loss tests (bpf/flood.h). */
import { RecordHeader, RecordType, registerDecoder, registerLayout, u64 } from '../../records';

export const FLOOD = registerLayout('flood', { size: 24, type: RecordType.Flood, offsets: { seq: 16 } });
export const FLOOD_CFG = registerLayout('flood_cfg', { size: 8, offsets: { tgid: 0, batch: 4 } });

export interface FloodRecord extends RecordHeader {
  type: typeof RecordType.Flood;
  seq: number;
}

registerDecoder(RecordType.Flood, FLOOD.size, (dv, o, h) => {
  const r = h as FloodRecord;
  r.seq = u64(dv, o + FLOOD.offsets.seq);
  return r;
});

/** The flood_cfg map value: records per getppid() of process `tgid`. */
export function encodeFloodCfg(tgid: number, batch: number): ArrayBuffer {
  const buf = new ArrayBuffer(FLOOD_CFG.size);
  const dv = new DataView(buf);
  dv.setUint32(FLOOD_CFG.offsets.tgid, tgid, true);
  dv.setUint32(FLOOD_CFG.offsets.batch, batch, true);
  return buf;
}

/** Records per getppid() call that benchmarks and flood tests configure. */
export const FLOOD_BATCH = 512;

/**
 * Python source of a flood producer: after it reads a line on stdin it calls getppid()
 * paced to `perSec` records/s (`batch` records per call; 0 = as fast as it can) for
 * `seconds` of wall time. A machine slower than the pace produces less, never longer:
 * compare flood_produced with the time, not with perSec x seconds.
 */
export function floodProducerCode(perSec: number, seconds: number, batch = FLOOD_BATCH): string {
  return `
import os, sys, time
sys.stdin.readline()
batch, rate, secs = ${batch}, ${perSec}, ${seconds}
t0 = time.monotonic()
end = t0 + secs
g = os.getppid
if rate == 0:
    while time.monotonic() < end:
        for _ in range(1000): g()
else:
    calls_per_s = rate / batch
    done = 0
    while True:
        now = time.monotonic()
        if now >= end: break
        due = int((now - t0) * calls_per_s) + 1
        if done >= due:
            time.sleep(min(0.001, due / calls_per_s - (now - t0)))
            continue
        for _ in range(min(due - done, 64)): g()
        done += min(due - done, 64)
`;
}
