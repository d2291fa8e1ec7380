/**
 * A small reader of 64-bit little-endian ELF files (the interpreters premortem
 * probes): section and program headers, symbols of .symtab and .dynsym (local
 * and global), DT_NEEDED entries and stapsdt (USDT) notes. It reads only the
 * tables it is asked about, each bounded by ELF_LIMITS, through one fd.
 *
 * Errors are ElfError with code PREMORTEM_ERR_ELF (not an ELF file we read,
 * truncated, a table over its bound) or PREMORTEM_ERR_ELF_OPEN (the file).
 */
import * as fs from 'fs';
import { parseStapsdtNotes, UsdtNote } from './usdt';

export const ELF_LIMITS = {
  /** Section headers read (CPython's libpython has ~40). */
  maxSections: 4096,
  /** Program headers read. */
  maxSegments: 256,
  /** Bytes of one symbol or string table (libpython 3.12's .symtab + .strtab are ~1.5 MiB). */
  maxTableBytes: 64 << 20,
  /** Bytes of a note or dynamic section (CPython's stapsdt notes are ~3 KiB). */
  maxNoteBytes: 1 << 20,
};

export type ElfErrorCode = 'PREMORTEM_ERR_ELF' | 'PREMORTEM_ERR_ELF_OPEN';

export class ElfError extends Error {
  constructor(readonly code: ElfErrorCode, message: string) {
    super(message);
    this.name = 'ElfError';
  }
}

const SHT_SYMTAB = 2;
const SHT_NOTE = 7;
const SHT_DYNAMIC = 6;
const SHT_DYNSYM = 11;
const PT_LOAD = 1;
const DT_NEEDED = 1n;
const SYM_SIZE = 24;
const PAGE = 4096;
const STT_FILE = 4;

export interface ElfSection {
  name: string;
  type: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfSymbol {
  name: string;
  /** Virtual address as linked. */
  value: number;
  size: number;
  kind: 'func' | 'object' | 'other';
  bind: 'local' | 'global' | 'weak' | 'other';
  table: 'symtab' | 'dynsym';
  /** For a local symbol of .symtab: the source file it came from (the STT_FILE before it), '' when unknown. */
  file: string;
}

export interface ElfFile {
  readonly path: string;
  readonly sections: ElfSection[];
  readonly segments: ElfSegment[];
  /** Symbols of .symtab and .dynsym whose name passes `match` (both tables: a name may be in each). */
  symbols(match: (name: string) => boolean): ElfSymbol[];
  /** The file offset of a linked virtual address, via the PT_LOAD segments; null when none holds it. */
  fileOffset(vaddr: number): number | null;
  /** Bytes of the file at a linked virtual address (e.g. a constant's value). */
  readVaddr(vaddr: number, len: number): Buffer | null;
  /** The linked address that file offset `off` is loaded at (the start of a mapping gives the load bias); null when no PT_LOAD holds it. */
  vaddrOfFileOffset(off: number): number | null;
  needed(): string[];
  stapsdtNotes(): UsdtNote[];
  close(): void;
}

/** Opens an ELF file; the caller closes it (or use withElf). */
export function openElf(path: string): ElfFile {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    throw new ElfError('PREMORTEM_ERR_ELF_OPEN', `cannot open ${path}: ${(e as Error).message}`);
  }
  try {
    return new ElfReader(path, fd);
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

export function withElf<T>(path: string, fn: (elf: ElfFile) => T): T {
  const elf = openElf(path);
  try {
    return fn(elf);
  } finally {
    elf.close();
  }
}

class ElfReader implements ElfFile {
  readonly sections: ElfSection[];
  readonly segments: ElfSegment[];
  private fd: number;

  constructor(readonly path: string, fd: number) {
    this.fd = fd;
    const eh = this.read(0, 64);
    if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46) throw this.bad('not an ELF file');
    if (eh[4] !== 2 || eh[5] !== 1) throw this.bad('not a 64-bit little-endian ELF file');
    this.sections = this.readSections(eh);
    this.segments = this.readSegments(eh);
  }

  private bad(why: string): ElfError {
    return new ElfError('PREMORTEM_ERR_ELF', `${this.path}: ${why}`);
  }

  private read(pos: number, len: number): Buffer {
    const b = Buffer.alloc(len);
    const n = fs.readSync(this.fd, b, 0, len, pos);
    return n === len ? b : b.subarray(0, n);
  }

  private readExact(pos: number, len: number, what: string, limit: number): Buffer {
    if (len > limit) throw this.bad(`${what} is ${len} bytes, over the ${limit}-byte bound`);
    const b = this.read(pos, len);
    if (b.length !== len) throw this.bad(`${what} is truncated`);
    return b;
  }

  private readSections(eh: Buffer): ElfSection[] {
    const shoff = Number(eh.readBigUInt64LE(0x28));
    const shentsize = eh.readUInt16LE(0x3a);
    const shnum = eh.readUInt16LE(0x3c);
    const shstrndx = eh.readUInt16LE(0x3e);
    if (!shoff || shnum === 0) return []; // stripped of section headers: segments still work
    if (shentsize < 64 || shnum > ELF_LIMITS.maxSections) throw this.bad(`${shnum} section headers of ${shentsize} bytes`);
    const sh = this.readExact(shoff, shentsize * shnum, 'the section header table', ELF_LIMITS.maxTableBytes);
    const raw = [];
    for (let i = 0; i < shnum; i++) {
      const o = i * shentsize;
      raw.push({
        nameOff: sh.readUInt32LE(o),
        type: sh.readUInt32LE(o + 4),
        addr: Number(sh.readBigUInt64LE(o + 0x10)),
        offset: Number(sh.readBigUInt64LE(o + 0x18)),
        size: Number(sh.readBigUInt64LE(o + 0x20)),
        link: sh.readUInt32LE(o + 0x28),
      });
    }
    const strtab = raw[shstrndx];
    const names = strtab ? this.read(strtab.offset, Math.min(strtab.size, ELF_LIMITS.maxNoteBytes)) : Buffer.alloc(0);
    return raw.map((s) => ({ name: cstring(names, s.nameOff), type: s.type, addr: s.addr, offset: s.offset, size: s.size, link: s.link }));
  }

  private readSegments(eh: Buffer): ElfSegment[] {
    const phoff = Number(eh.readBigUInt64LE(0x20));
    const phentsize = eh.readUInt16LE(0x36);
    const phnum = eh.readUInt16LE(0x38);
    if (!phoff || phnum === 0) return [];
    if (phentsize < 56 || phnum > ELF_LIMITS.maxSegments) throw this.bad(`${phnum} program headers of ${phentsize} bytes`);
    const ph = this.readExact(phoff, phentsize * phnum, 'the program header table', ELF_LIMITS.maxTableBytes);
    const out: ElfSegment[] = [];
    for (let i = 0; i < phnum; i++) {
      const o = i * phentsize;
      out.push({
        type: ph.readUInt32LE(o),
        flags: ph.readUInt32LE(o + 4),
        offset: Number(ph.readBigUInt64LE(o + 8)),
        vaddr: Number(ph.readBigUInt64LE(o + 16)),
        filesz: Number(ph.readBigUInt64LE(o + 32)),
        memsz: Number(ph.readBigUInt64LE(o + 40)),
      });
    }
    return out;
  }

  symbols(match: (name: string) => boolean): ElfSymbol[] {
    const out: ElfSymbol[] = [];
    for (const sec of this.sections) {
      if (sec.type !== SHT_SYMTAB && sec.type !== SHT_DYNSYM) continue;
      const strsec = this.sections[sec.link];
      if (!strsec) throw this.bad(`${sec.name} links to no string table`);
      const syms = this.readExact(sec.offset, sec.size, sec.name, ELF_LIMITS.maxTableBytes);
      const strs = this.readExact(strsec.offset, strsec.size, strsec.name, ELF_LIMITS.maxTableBytes);
      const table = sec.type === SHT_SYMTAB ? 'symtab' : 'dynsym';
      let file = '';
      for (let o = SYM_SIZE; o + SYM_SIZE <= syms.length; o += SYM_SIZE) { // entry 0 is the null symbol
        const info = syms[o + 4];
        const type = info & 0xf;
        const bind = info >> 4;
        if (type === STT_FILE) file = cstring(strs, syms.readUInt32LE(o));
        if (type !== 1 && type !== 2) continue; // STT_OBJECT, STT_FUNC: all we look up
        const name = cstring(strs, syms.readUInt32LE(o));
        if (!name || !match(name)) continue;
        out.push({
          name,
          value: Number(syms.readBigUInt64LE(o + 8)),
          size: Number(syms.readBigUInt64LE(o + 16)),
          kind: type === 2 ? 'func' : 'object',
          bind: bind === 0 ? 'local' : bind === 1 ? 'global' : bind === 2 ? 'weak' : 'other',
          table,
          file: bind === 0 ? file : '',
        });
      }
    }
    return out;
  }

  fileOffset(vaddr: number): number | null {
    for (const s of this.segments)
      if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return vaddr - s.vaddr + s.offset;
    return null;
  }

  readVaddr(vaddr: number, len: number): Buffer | null {
    const off = this.fileOffset(vaddr);
    if (off === null) return null;
    const b = this.read(off, len);
    return b.length === len ? b : null;
  }

  vaddrOfFileOffset(off: number): number | null {
    for (const s of this.segments) {
      // A mapping starts at the page below its segment's offset: accept that page too.
      if (s.type === PT_LOAD && off >= s.offset - (s.offset % PAGE) && off < s.offset + Math.max(s.filesz, 1)) return off + s.vaddr - s.offset;
    }
    return null;
  }

  needed(): string[] {
    const dyn = this.sections.find((s) => s.type === SHT_DYNAMIC);
    const dynstr = dyn ? this.sections[dyn.link] : undefined;
    if (!dyn || !dynstr) return [];
    const d = this.readExact(dyn.offset, dyn.size, '.dynamic', ELF_LIMITS.maxNoteBytes);
    const strs = this.readExact(dynstr.offset, dynstr.size, '.dynstr', ELF_LIMITS.maxTableBytes);
    const out: string[] = [];
    for (let o = 0; o + 16 <= d.length; o += 16) {
      const tag = d.readBigInt64LE(o);
      if (tag === 0n) break;
      if (tag === DT_NEEDED) out.push(cstring(strs, Number(d.readBigUInt64LE(o + 8))));
    }
    return out;
  }

  stapsdtNotes(): UsdtNote[] {
    const out: UsdtNote[] = [];
    for (const s of this.sections)
      if (s.type === SHT_NOTE && s.name === '.note.stapsdt')
        out.push(...parseStapsdtNotes(this.readExact(s.offset, s.size, s.name, ELF_LIMITS.maxNoteBytes)));
    return out;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function cstring(buf: Buffer, off: number): string {
  if (off >= buf.length) return '';
  const end = buf.indexOf(0, off);
  return buf.toString('latin1', off, end < 0 ? buf.length : end);
}
