/** flood: the synthetic record source used by benchmarks and loss tests (bpf/flood.h). */
import { RecordHeader, RecordType, registerDecoder, registerLayout, u64 } from '../records';

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
