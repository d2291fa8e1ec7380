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
 * paced to `perSec` records/s (`batch` records per call; 0 = as fast as it can) for `seconds`.
 */
export function floodProducerCode(perSec: number, seconds: number, batch = FLOOD_BATCH): string {
  return `
import os, sys, time
sys.stdin.readline()
batch, rate, secs = ${batch}, ${perSec}, ${seconds}
end = time.monotonic() + secs
g = os.getppid
if rate == 0:
    while time.monotonic() < end:
        for _ in range(1000): g()
else:
    calls_per_ms = rate / batch / 1000.0
    credit = 0.0
    t = time.monotonic()
    while t < end:
        credit += calls_per_ms
        while credit >= 1:
            g(); credit -= 1
        t += 0.001
        d = t - time.monotonic()
        if d > 0: time.sleep(d)
`;
}
