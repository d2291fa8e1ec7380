/**
 * Line numbers from a code object's line table, in the three formats CPython
 * 3.9–3.13 use (as PyCode_Addr2Line computes them in each version). Pure.
 * Every function returns the line, or -1 when the instruction has none.
 */
import type { LinetableFormat } from './offsets';

/** 3.9 co_lnotab: (bytecode increment, signed line increment) pairs; `lasti` in bytes. */
export function lineFromLnotab(tab: Uint8Array, firstLine: number, lasti: number): number {
  let line = firstLine;
  let addr = 0;
  for (let i = 0; i + 1 < tab.length; i += 2) {
    addr += tab[i];
    if (addr > lasti) break;
    line += (tab[i + 1] << 24) >> 24; // signed byte
  }
  return line;
}

/** 3.10 co_linetable (PEP 626): (byte length, signed line delta or -128 for none) pairs; `lasti` in bytes. */
export function lineFromPep626(tab: Uint8Array, firstLine: number, lasti: number): number {
  if (lasti < 0) return firstLine; // not started yet
  let line = firstLine;
  let end = 0;
  for (let i = 0; i + 1 < tab.length; i += 2) {
    const start = end;
    end = start + tab[i];
    const delta = (tab[i + 1] << 24) >> 24;
    let current = -1;
    if (delta !== -128) {
      line += delta;
      current = line;
    }
    if (lasti >= start && lasti < end) return current;
  }
  return -1;
}

/** 3.11+ location table (Objects/locations.md); `lasti` in code units (2 bytes). */
export function lineFromLocations(tab: Uint8Array, firstLine: number, lasti: number): number {
  if (lasti < 0) return firstLine;
  let line = firstLine;
  let addr = 0;
  let i = 0;
  const varint = (): number => {
    let read = tab[i++];
    let val = read & 63;
    let shift = 0;
    while (read & 64 && i < tab.length) {
      read = tab[i++];
      shift += 6;
      val |= (read & 63) << shift;
    }
    return val;
  };
  const svarint = (): number => {
    const u = varint();
    return u & 1 ? -(u >>> 1) : u >>> 1;
  };
  while (i < tab.length) {
    const first = tab[i++];
    if (!(first & 0x80)) return -1; // every entry starts with its top bit set: not a table we understand
    const code = (first >> 3) & 15;
    const len = (first & 7) + 1;
    let none = false;
    if (code === 15) none = true;
    else if (code === 14) {
      line += svarint();
      varint(); // end line delta
      varint(); // column + 1
      varint(); // end column + 1
    } else if (code === 13) line += svarint();
    else if (code >= 10) {
      line += code - 10;
      i += 2; // column, end column
    } else i += 1; // short form: column info only
    if (lasti >= addr && lasti < addr + len) return none ? -1 : line;
    addr += len;
  }
  return -1;
}

/**
 * The line of the instruction at `instr`: for 'lnotab' and 'pep626' the
 * frame's f_lasti as stored (bytes in 3.9, code units in 3.10), for
 * 'locations' the index in code units.
 */
export function lineOf(format: LinetableFormat, tab: Uint8Array, firstLine: number, instr: number): number {
  if (format === 'lnotab') return lineFromLnotab(tab, firstLine, instr);
  if (format === 'pep626') return lineFromPep626(tab, firstLine, instr < 0 ? -1 : instr * 2);
  return lineFromLocations(tab, firstLine, instr);
}
