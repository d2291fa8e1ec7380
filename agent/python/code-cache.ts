/**
 * What a code object says (file, function, first line, line table), read
 * from another process once and kept by address. A code object's header is
 * read on every sample anyway (to check its type and find its line): the
 * cached strings are trusted only while the header still points at the same
 * name, file and line table, so a freed and reused address is read afresh.
 */
import type { StackLayout } from './offsets';
import type { RemoteReader } from './remote';

export const CODE_CACHE_LIMITS = {
  /** Code objects remembered, over every process (an app has a few thousand functions). */
  maxCodeObjects: 16384,
  /** Characters kept of a file or function name. */
  maxStringChars: 256,
  /** Bytes read of one line table (a 10,000-line function's is ~40 KiB). */
  maxLinetableBytes: 64 << 10,
};

export interface CodeInfo {
  file: string;
  function: string;
  firstLine: number;
  linetable: Buffer;
}

/** The fields of a code object's header that identify its contents. */
export interface CodeHeader {
  obType: number;
  filename: number;
  name: number;
  linetable: number;
  firstLine: number;
}

/** The header of the code object at `at` in `buf`. */
export function parseCodeHeader(buf: Buffer, L: StackLayout, at = 0): CodeHeader {
  return {
    obType: ptr(buf, at + L.code.obType),
    filename: ptr(buf, at + L.code.filename),
    name: ptr(buf, at + L.code.name),
    linetable: ptr(buf, at + L.code.linetable),
    firstLine: buf.readInt32LE(at + L.code.firstlineno),
  };
}

/** A 64-bit pointer as a number (exact below 2^53; user addresses are below 2^47), without a BigInt. */
export const ptr = (b: Buffer, o: number) => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 4294967296;

interface Entry extends CodeInfo {
  header: CodeHeader;
}

export interface CodeCache {
  /** Infos for `codes` (address + header) of process `pid`; reads what is not cached in two batched calls. */
  resolve(pid: number, reader: RemoteReader, L: StackLayout, codes: Array<{ addr: number; header: CodeHeader }>): Array<CodeInfo | null>;
  forget(pid: number): void;
  readonly size: number;
  readonly hits: number;
  readonly misses: number;
}

export function createCodeCache(limits: Partial<typeof CODE_CACHE_LIMITS> = {}): CodeCache {
  const lim = { ...CODE_CACHE_LIMITS, ...limits };
  const byPid = new Map<number, Map<number, Entry>>(); // pid -> code address -> entry
  let size = 0;
  let hits = 0;
  let misses = 0;

  const same = (a: CodeHeader, b: CodeHeader) =>
    a.filename === b.filename && a.name === b.name && a.linetable === b.linetable && a.firstLine === b.firstLine;

  function store(pid: number, addr: number, e: Entry): void {
    if (size >= lim.maxCodeObjects) {
      // The oldest entry of the process seen first: bounded, and cheap.
      const [oldPid, oldest] = byPid.entries().next().value as [number, Map<number, Entry>];
      oldest.delete(oldest.keys().next().value as number);
      size--;
      if (!oldest.size) byPid.delete(oldPid);
    }
    let m = byPid.get(pid);
    if (!m) byPid.set(pid, (m = new Map()));
    if (!m.has(addr)) size++;
    m.set(addr, e);
  }

  function readNew(pid: number, reader: RemoteReader, L: StackLayout, todo: Array<{ addr: number; header: CodeHeader }>): void {
    // Pass 1: the string and bytes headers.
    const heads = reader.readMany(todo.flatMap(({ header: h }) => [
      [h.filename, L.unicode.compactSize], [h.name, L.unicode.compactSize], [h.linetable, L.bytes.data],
    ] as Array<[number, number]>));
    // Pass 2: their contents, bounded.
    const plans = todo.map((_, i) => ({
      file: stringPlan(heads[3 * i], todo[i].header.filename, L, lim.maxStringChars),
      name: stringPlan(heads[3 * i + 1], todo[i].header.name, L, lim.maxStringChars),
      table: bytesPlan(heads[3 * i + 2], todo[i].header.linetable, L, lim.maxLinetableBytes),
    }));
    const datas = reader.readMany(plans.flatMap((p) => [p.file.range, p.name.range, p.table.range]));
    todo.forEach(({ addr, header }, i) => {
      const p = plans[i];
      const table = datas[3 * i + 2];
      store(pid, addr, {
        header,
        file: p.file.decode(datas[3 * i]),
        function: p.name.decode(datas[3 * i + 1]),
        firstLine: header.firstLine,
        linetable: table ? Buffer.from(table) : Buffer.alloc(0), // a copy: the reader's buffer is reused
      });
    });
  }

  return {
    get size() {
      return size;
    },
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
    resolve(pid, reader, L, codes) {
      const known = byPid.get(pid);
      const todo: Array<{ addr: number; header: CodeHeader }> = [];
      for (const { addr, header } of codes) {
        const e = known?.get(addr);
        if (e && same(e.header, header)) hits++;
        else if (!todo.some((t) => t.addr === addr)) {
          misses++;
          todo.push({ addr, header });
        }
      }
      if (todo.length) readNew(pid, reader, L, todo);
      const m = byPid.get(pid);
      return codes.map(({ addr }) => m?.get(addr) ?? null);
    },
    forget(pid) {
      size -= byPid.get(pid)?.size ?? 0;
      byPid.delete(pid);
    },
  };
}

interface Plan {
  range: [number, number];
  decode(b: Buffer | null): string;
}

/** Where a str's characters are (compact ASCII, or compact 1/2/4-byte kinds) and how to decode them. */
function stringPlan(head: Buffer | null, addr: number, L: StackLayout, maxChars: number): Plan {
  const none: Plan = { range: [addr, 0], decode: () => '<?>' };
  if (!head) return none;
  const length = Number(head.readBigInt64LE(L.unicode.length));
  const state = head.readUInt32LE(L.unicode.state);
  const kind = (state >> 2) & 7;
  const compact = (state >> 5) & 1;
  const ascii = (state >> 6) & 1;
  if (!compact || ![1, 2, 4].includes(kind) || length < 0 || length > 1 << 20) return none;
  const chars = Math.min(length, maxChars);
  const start = addr + (ascii ? L.unicode.asciiSize : L.unicode.compactSize);
  return {
    range: [start, chars * kind],
    decode: (b) => {
      if (!b) return '<?>';
      if (kind === 1) return b.toString('latin1');
      if (kind === 2) return b.toString('utf16le');
      let s = '';
      for (let i = 0; i + 4 <= b.length; i += 4) s += String.fromCodePoint(Math.min(b.readUInt32LE(i), 0x10ffff));
      return s;
    },
  };
}

function bytesPlan(head: Buffer | null, addr: number, L: StackLayout, maxBytes: number): { range: [number, number] } {
  const size = head ? Number(head.readBigInt64LE(L.bytes.size)) : 0;
  return { range: [addr + L.bytes.data, size > 0 ? Math.min(size, maxBytes) : 0] };
}
