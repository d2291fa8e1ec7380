/**
 * The TypeScript decoder against the C headers: every struct the addon reports
 * (sizes and offsets from the compiler) must match the decoder's LAYOUT, and
 * batches are walked safely.
 */
import { loadAddon } from '../../agent/native';
import { LAYOUT, LAYOUT_VERSION, RecordType, decodeBatch, decodeHist, hasDecoder, HIST_SLOTS, COMM_LEN } from '../../agent/records';
import { FLOOD, PROBES, RUNQ_SLOW } from '../../agent/probes';

describe('record layout', () => {
  const native = loadAddon().layout();

  test('layout version and limits agree', () => {
    expect(native.version).toBe(LAYOUT_VERSION);
    expect(native.limits.histSlots).toBe(HIST_SLOTS);
    expect(native.limits.commLen).toBe(COMM_LEN);
  });

  test('every native struct is known to the decoder with the same size and offsets', () => {
    const names = Object.keys(native.structs).sort();
    expect(names.length).toBeGreaterThanOrEqual(6);
    for (const name of names) {
      const c = native.structs[name];
      const ts = LAYOUT[name];
      expect({ name, spec: ts && { size: ts.size, type: ts.type, offsets: ts.offsets } }).toEqual({
        name,
        spec: { size: c.size, type: c.type, offsets: c.offsets },
      });
    }
  });

  test('every decoder struct exists natively', () => {
    for (const name of Object.keys(LAYOUT)) expect([name, name in native.structs]).toEqual([name, true]);
  });

  test('record sizes are multiples of 8 (the ring buffer aligns records)', () => {
    for (const [name, s] of Object.entries(native.structs)) if (s.type) expect([name, s.size % 8]).toEqual([name, 0]);
  });
});

function record(size: number, type: number, fill?: (dv: DataView) => void): Uint8Array {
  const buf = new ArrayBuffer(size);
  const dv = new DataView(buf);
  dv.setUint16(0, type, true);
  dv.setUint16(2, size, true);
  dv.setUint32(4, 1, true);
  dv.setUint32(8, 123456789, true);
  dv.setUint32(12, 2, true);
  fill?.(dv);
  return new Uint8Array(buf);
}

function concat(parts: Uint8Array[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out.buffer;
}

describe('decodeBatch', () => {
  test('decodes a runq_slow record field by field', () => {
    const o = RUNQ_SLOW.offsets;
    const rec = record(RUNQ_SLOW.size, RecordType.RunqSlow, (dv) => {
      dv.setUint32(o.pid, 4242, true);
      dv.setUint32(o.tid, 4243, true);
      dv.setUint32(o.wait_ns, 15_000_000, true);
      dv.setUint32(o.culprit_pid, 777, true);
      dv.setUint32(o.culprit_tid, 778, true);
      dv.setUint32(o.preempted, 1, true);
      'gunicorn'.split('').forEach((c, i) => dv.setUint8(o.comm + i, c.charCodeAt(0)));
      'hog'.split('').forEach((c, i) => dv.setUint8(o.culprit_comm + i, c.charCodeAt(0)));
    });
    const out: unknown[] = [];
    expect(decodeBatch(concat([rec]), (r) => out.push(r))).toBe(1);
    expect(out[0]).toEqual({
      type: RecordType.RunqSlow, size: 80, cpu: 1, tsNs: 123456789 + 2 * 2 ** 32,
      pid: 4242, tid: 4243, waitNs: 15_000_000, culpritPid: 777, culpritTid: 778, preempted: true,
      comm: 'gunicorn', culpritComm: 'hog',
    });
  });

  test('walks many records and keeps unknown types as unknown', () => {
    const parts = [record(FLOOD.size, RecordType.Flood), record(32, 31), record(FLOOD.size, RecordType.Flood)];
    const types: Array<[number, boolean]> = [];
    decodeBatch(concat(parts), (r) => types.push([r.type, 'unknown' in r]));
    expect(types).toEqual([[RecordType.Flood, false], [31, true], [RecordType.Flood, false]]);
  });

  test('a record that claims more bytes than remain is an error, not a crash', () => {
    const bad = record(24, RecordType.Flood);
    new DataView(bad.buffer).setUint16(2, 4000, true);
    expect(() => decodeBatch(concat([bad]), () => undefined)).toThrow(/claims 4000 bytes/);
  });

  test('a truncated header is an error', () => {
    expect(() => decodeBatch(new ArrayBuffer(10), () => undefined)).toThrow(/truncated record header/);
  });

  test('a record shorter than its type needs decodes as unknown', () => {
    const short = record(16, RecordType.RunqSlow);
    const got: unknown[] = [];
    decodeBatch(concat([short]), (r) => got.push(r));
    expect(got[0]).toMatchObject({ type: RecordType.RunqSlow, unknown: true });
  });

  test('decodeHist reads slots, count, sum and max', () => {
    const buf = new ArrayBuffer(LAYOUT.hist.size);
    const dv = new DataView(buf);
    dv.setUint32(3 * 8, 5, true);
    dv.setUint32(LAYOUT.hist.offsets.count, 5, true);
    dv.setUint32(LAYOUT.hist.offsets.sum_ns, 25_000, true);
    dv.setUint32(LAYOUT.hist.offsets.max_ns, 7_000, true);
    const h = decodeHist(buf);
    expect(h.slots[3]).toBe(5);
    expect(h.slots.length).toBe(HIST_SLOTS);
    expect([h.count, h.sumNs, h.maxNs]).toEqual([5, 25_000, 7_000]);
  });
});

describe('the probe list', () => {
  test('every record type is declared by one probe and has a decoder', () => {
    const declared = PROBES.flatMap((p) => p.records);
    for (const type of Object.values(RecordType)) {
      expect(declared.filter((t) => t === type)).toHaveLength(1);
      expect(hasDecoder(type)).toBe(true);
    }
  });

  test('every probe in the list is a kernel object the addon builds', () => {
    const built = loadAddon().probeNames();
    for (const p of PROBES) expect(built).toContain(p.name);
    expect([...built].sort()).toEqual(PROBES.map((p) => p.name).sort());
  });
});
