/** The timeline's storage: narrow columns that widen, and the histogram pool (pure logic). */
import { Column, ColumnRing, HIST_ENTRY_MAX_BYTES, HistogramLog, rungOf } from '../../agent/timeline-store';

/** Deterministic PRNG (mulberry32): the same cases on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Column', () => {
  test('costs nothing until a non-zero value, then the narrowest type that holds every value', () => {
    const c = new Column(100);
    c.set(5, 0);
    expect(c.bytes()).toBe(0);
    expect(c.get(5)).toBe(0);
    c.set(5, 200);
    expect(c.kind).toBe('Uint8Array');
    c.set(6, 60_000);
    expect(c.kind).toBe('Uint16Array');
    c.set(7, 4_000_000_000);
    expect(c.kind).toBe('Uint32Array');
    expect([c.get(5), c.get(6), c.get(7)]).toEqual([200, 60_000, 4_000_000_000]); // kept across widenings
    c.set(8, -1);
    expect(c.kind).toBe('Float32Array');
    expect([c.get(5), c.get(6), c.get(8)]).toEqual([200, 60_000, -1]);
    expect(c.bytes()).toBeLessThanOrEqual(100 * 4);
  });

  test('integers in [0, 2^32) are exact; other values within 2^-24 (relative) once the column is Float32', () => {
    const r = rng(16);
    const c = new Column(1000);
    const ints: number[] = [];
    for (let i = 0; i < 500; i++) {
      ints.push(Math.floor(r() * 2 ** (1 + Math.floor(r() * 32))));
      c.set(i, ints[i]);
    }
    for (let i = 0; i < 500; i++) expect(c.get(i)).toBe(ints[i]);
    const floats: number[] = [];
    for (let i = 500; i < 1000; i++) {
      floats.push((r() - 0.5) * 10 ** (Math.floor(r() * 24) - 6));
      c.set(i, floats[i - 500]);
    }
    for (let i = 500; i < 1000; i++) {
      const want = floats[i - 500];
      expect(Math.abs(c.get(i) - want)).toBeLessThanOrEqual(Math.abs(want) * 2 ** -24);
    }
    for (let i = 0; i < 500; i++) expect(Math.abs(c.get(i) - ints[i])).toBeLessThanOrEqual(ints[i] * 2 ** -24);
    for (let i = 0; i < 500; i++) if (ints[i] <= 2 ** 24) expect(c.get(i)).toBe(ints[i]);
  });

  test('an exact column keeps any double', () => {
    const c = new Column(4, true);
    c.set(0, 0.13);
    c.set(1, 1.5e12 + 0.5);
    expect([c.get(0), c.get(1)]).toEqual([0.13, 1.5e12 + 0.5]);
  });

  test('rungOf picks the narrowest exact type', () => {
    expect([0, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, 0.5, -1].map(rungOf)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 3]);
  });
});

test('ColumnRing finds a time range by binary search over the ring order', () => {
  const ring = new ColumnRing(5, 1);
  for (let i = 0; i < 8; i++) ring.cols[0].set(ring.push(i * 1000, false), i);
  expect(ring.length).toBe(5);
  expect(ring.range(-Infinity, Infinity)).toEqual([0, 5]);
  expect(ring.range(4000, 6000)).toEqual([1, 3]);
  expect(ring.range(4500, 4600)).toEqual([2, 2]);
  expect(ring.range(9000, 10_000)).toEqual([5, 5]);
  expect(ring.value(0, 0)).toBe(3);
});

describe('HistogramLog', () => {
  test('round-trips histograms of every width over many wraps of the ring (against a dense reference)', () => {
    const r = rng(32);
    const C = 37, SLOTS = 32;
    const log = new HistogramLog(C, SLOTS);
    const dense: number[][] = new Array(C);
    const trimmed = (h: number[]) => {
      let last = h.length;
      while (last > 0 && h[last - 1] === 0) last--;
      return h.slice(0, last);
    };
    for (let i = 0; i < 20 * C; i++) {
      const slot = i % C;
      const h = new Array<number>(SLOTS).fill(0);
      const kind = r();
      if (kind > 0.2) {
        const lo = Math.floor(r() * SLOTS), hi = Math.min(SLOTS - 1, lo + Math.floor(r() * 8));
        const max = [0xff, 0xffff, 0xffffffff][Math.floor(r() * 3)];
        for (let s = lo; s <= hi; s++) h[s] = r() < 0.7 ? Math.floor(r() * max) + 1 : 0;
      }
      log.put(slot, h);
      dense[slot] = trimmed(h);
      for (let k = 0; k < Math.min(C, i + 1); k++) expect(log.get(k)).toEqual(dense[k]);
    }
    expect(log.bytes()).toBeLessThanOrEqual(C * (HIST_ENTRY_MAX_BYTES + 5));
  });

  test('empty histograms take no bytes', () => {
    const log = new HistogramLog(600, 32);
    for (let i = 0; i < 1200; i++) log.put(i % 600, new Array(32).fill(0));
    expect(log.bytes()).toBe(0);
    expect(log.get(3)).toEqual([]);
  });
});
