/**
 * Which Python interpreters carry the USDT probes premortem uses
 * (python:gc__start / python:gc__done), read from the ELF `.note.stapsdt`
 * section of the interpreter binary or the libpython it loads. Used by the
 * agent to attach the pygc probe per process, and by `premortem doctor`.
 *
 * Only the gc probes are ever attached: CPython also has function__entry,
 * line and others, which fire per call or per line (and `line` is known to
 * crash 3.11); premortem never enables them.
 */
import * as fs from 'fs';
import * as path from 'path';

/** One USDT probe described by a stapsdt note. */
export interface UsdtNote {
  provider: string;
  name: string;
  /** Probe address (virtual, as linked). */
  pc: bigint;
  /** Address of the semaphore (0 when none): libbpf increments it while attached. */
  semaphore: bigint;
  args: string;
}

export const GC_PROBES = ['gc__start', 'gc__done'] as const;

/** Bound on a note section we are willing to read (CPython's is ~3 KiB). */
const MAX_NOTE_BYTES = 1 << 20;
const SHT_NOTE = 7;
const SHT_DYNAMIC = 6;
const DT_NEEDED = 1;

interface Section {
  name: string;
  type: number;
  offset: number;
  size: number;
  link: number;
}

function readAt(fd: number, pos: number, len: number): Buffer {
  const b = Buffer.alloc(len);
  const n = fs.readSync(fd, b, 0, len, pos);
  return n === len ? b : b.subarray(0, n);
}

/** Section headers of a 64-bit little-endian ELF file, or null when it is not one. */
function sections(fd: number): Section[] | null {
  const eh = readAt(fd, 0, 64);
  if (eh.length < 64 || eh.readUInt32BE(0) !== 0x7f454c46) return null; // \x7fELF
  if (eh[4] !== 2 || eh[5] !== 1) return null; // ELFCLASS64, little-endian
  const shoff = Number(eh.readBigUInt64LE(0x28));
  const shentsize = eh.readUInt16LE(0x3a);
  const shnum = eh.readUInt16LE(0x3c);
  const shstrndx = eh.readUInt16LE(0x3e);
  if (!shoff || shentsize < 64 || shnum === 0 || shnum > 4096) return null;
  const sh = readAt(fd, shoff, shentsize * shnum);
  if (sh.length < shentsize * shnum) return null;
  const raw = [];
  for (let i = 0; i < shnum; i++) {
    const o = i * shentsize;
    raw.push({
      nameOff: sh.readUInt32LE(o),
      type: sh.readUInt32LE(o + 4),
      offset: Number(sh.readBigUInt64LE(o + 0x18)),
      size: Number(sh.readBigUInt64LE(o + 0x20)),
      link: sh.readUInt32LE(o + 0x28),
    });
  }
  const strtab = raw[shstrndx];
  const names = strtab ? readAt(fd, strtab.offset, Math.min(strtab.size, MAX_NOTE_BYTES)) : Buffer.alloc(0);
  return raw.map((s) => {
    const end = names.indexOf(0, s.nameOff);
    return {
      name: s.nameOff < names.length ? names.toString('latin1', s.nameOff, end < 0 ? names.length : end) : '',
      type: s.type, offset: s.offset, size: s.size, link: s.link,
    };
  });
}

/** Parses the body of a .note.stapsdt section (ELF64). */
export function parseStapsdtNotes(buf: Buffer): UsdtNote[] {
  const out: UsdtNote[] = [];
  let o = 0;
  const align4 = (n: number) => (n + 3) & ~3;
  while (o + 12 <= buf.length) {
    const namesz = buf.readUInt32LE(o);
    const descsz = buf.readUInt32LE(o + 4);
    const type = buf.readUInt32LE(o + 8);
    const nameStart = o + 12;
    const descStart = nameStart + align4(namesz);
    const next = descStart + align4(descsz);
    if (next > buf.length) break;
    const name = buf.toString('latin1', nameStart, nameStart + Math.max(0, namesz - 1));
    if (type === 3 && name === 'stapsdt' && descsz >= 24) {
      const d = buf.subarray(descStart, descStart + descsz);
      const strs = d.toString('latin1', 24).split('\0');
      out.push({
        pc: d.readBigUInt64LE(0),
        semaphore: d.readBigUInt64LE(16),
        provider: strs[0] ?? '',
        name: strs[1] ?? '',
        args: strs[2] ?? '',
      });
    }
    o = next;
  }
  return out;
}

export interface ElfInfo {
  /** USDT notes, empty when there is no .note.stapsdt section. */
  notes: UsdtNote[];
  /** DT_NEEDED entries (shared libraries it loads). */
  needed: string[];
}

/** The USDT notes and needed libraries of an ELF file; null when it is not a 64-bit ELF we can read. */
export function readElfInfo(file: string): ElfInfo | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const secs = sections(fd);
    if (!secs) return null;
    const notes: UsdtNote[] = [];
    for (const s of secs)
      if (s.type === SHT_NOTE && s.name === '.note.stapsdt' && s.size <= MAX_NOTE_BYTES)
        notes.push(...parseStapsdtNotes(readAt(fd, s.offset, s.size)));
    const needed: string[] = [];
    const dyn = secs.find((s) => s.type === SHT_DYNAMIC);
    const dynstr = dyn ? secs[dyn.link] : undefined;
    if (dyn && dynstr && dyn.size <= MAX_NOTE_BYTES) {
      const d = readAt(fd, dyn.offset, dyn.size);
      const strs = readAt(fd, dynstr.offset, Math.min(dynstr.size, MAX_NOTE_BYTES));
      for (let o = 0; o + 16 <= d.length; o += 16) {
        const tag = d.readBigInt64LE(o);
        if (tag === 0n) break;
        if (tag === BigInt(DT_NEEDED)) {
          const off = Number(d.readBigUInt64LE(o + 8));
          const end = strs.indexOf(0, off);
          needed.push(strs.toString('latin1', off, end < 0 ? strs.length : end));
        }
      }
    }
    return { notes, needed };
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether an ELF file has both python:gc__start and python:gc__done. */
export function hasGcProbes(info: ElfInfo | null): boolean {
  if (!info) return false;
  return GC_PROBES.every((n) => info.notes.some((p) => p.provider === 'python' && p.name === n));
}

export interface GcProbeTarget {
  /** The file to attach to (interpreter binary or libpython), '' when none was found. */
  path: string;
  hasProbes: boolean;
  /** Why not, or which file carries the probes: a sentence for doctor and the agent's log. */
  reason: string;
}

const LIBPYTHON = /\/libpython3\.\d+[^/]*\.so(\.[\d.]+)?$/;

/** Files mapped executable by a process, from /proc/PID/maps. */
function mappedFiles(pid: number): string[] {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const f = line.split(/\s+/);
    if (f.length >= 6 && f[1].includes('x') && f[5].startsWith('/')) out.add(f.slice(5).join(' '));
  }
  return [...out];
}

/**
 * Where to attach the GC probes for process `pid`: the interpreter binary it
 * runs (/proc/PID/exe) when that carries the probes, else the libpython it
 * has mapped (/proc/PID/maps). Files are opened through /proc/PID/root so a
 * process in another mount namespace resolves to its own binary.
 */
export function findGcProbeTarget(pid: number): GcProbeTarget {
  let exe: string;
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch (e) {
    return { path: '', hasProbes: false, reason: `cannot read /proc/${pid}/exe: ${(e as Error).message}` };
  }
  const root = `/proc/${pid}/root`;
  const open = (p: string) => (p.endsWith(' (deleted)') ? `/proc/${pid}/exe` : path.join(root, p));
  const exeInfo = readElfInfo(open(exe));
  if (hasGcProbes(exeInfo)) return { path: exe, hasProbes: true, reason: `python:gc__* probes in ${exe}` };
  const lib = mappedFiles(pid).find((f) => LIBPYTHON.test(f));
  if (lib) {
    if (hasGcProbes(readElfInfo(open(lib)))) return { path: lib, hasProbes: true, reason: `python:gc__* probes in ${lib}` };
    return {
      path: lib, hasProbes: false,
      reason: `${lib} (loaded by ${exe}) has no python:gc__* USDT probes: CPython was built without --with-dtrace`,
    };
  }
  if (!/python/i.test(path.basename(exe)))
    return { path: '', hasProbes: false, reason: `${exe} is not a Python interpreter and maps no libpython` };
  return {
    path: exe, hasProbes: false,
    reason: `${exe} has no python:gc__* USDT probes: CPython was built without --with-dtrace`,
  };
}

export interface PythonInterpreter {
  /** Where it was found (e.g. /usr/bin/python3). */
  path: string;
  /** The file it resolves to. */
  realPath: string;
  /** The file carrying the probes (binary or libpython), or the one checked. */
  probeFile: string;
  hasGcProbes: boolean;
  /** Every python:* probe name found (doctor shows them; only gc__* are used). */
  probes: string[];
  reason: string;
}

const PYTHON_NAME = /^python[23](\.\d+)?$/;

function candidateDirs(): string[] {
  const dirs = new Set<string>((process.env.PATH ?? '').split(':').filter(Boolean));
  for (const d of ['/usr/bin', '/usr/local/bin', '/bin']) dirs.add(d);
  const pyenv = process.env.PYENV_ROOT ?? path.join(process.env.HOME ?? '/root', '.pyenv');
  try {
    for (const v of fs.readdirSync(path.join(pyenv, 'versions'))) dirs.add(path.join(pyenv, 'versions', v, 'bin'));
  } catch {
    /* no pyenv */
  }
  return [...dirs];
}

/** The libpython an interpreter needs, found next to it (<prefix>/lib) or in the usual library dirs. */
function findLibpython(realPath: string, needed: string[]): string | null {
  const lib = needed.find((n) => /^libpython3/.test(n));
  if (!lib) return null;
  const dirs = [path.join(path.dirname(path.dirname(realPath)), 'lib'), '/usr/lib/x86_64-linux-gnu', '/usr/local/lib', '/usr/lib', '/lib/x86_64-linux-gnu'];
  for (const d of dirs) if (fs.existsSync(path.join(d, lib))) return path.join(d, lib);
  return null;
}

/**
 * Python interpreters on this host (PATH, /usr/bin, /usr/local/bin, pyenv
 * versions) and whether each carries the gc probes. Scripts such as pyenv
 * shims are skipped: the binaries they run are listed themselves.
 */
export function scanPythonInterpreters(): PythonInterpreter[] {
  const seen = new Set<string>();
  const out: PythonInterpreter[] = [];
  for (const dir of candidateDirs()) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => PYTHON_NAME.test(n)).sort()) {
      const p = path.join(dir, name);
      let real: string;
      try {
        real = fs.realpathSync(p);
      } catch {
        continue;
      }
      if (seen.has(real)) continue;
      seen.add(real);
      const info = readElfInfo(real);
      if (!info) continue; // a script (pyenv shim) or not ours to read
      let probeFile = real;
      let notes = info.notes;
      const lib = hasGcProbes(info) ? null : findLibpython(real, info.needed);
      if (lib) {
        const li = readElfInfo(lib);
        probeFile = lib;
        notes = li?.notes ?? [];
      }
      const has = hasGcProbes({ notes, needed: [] });
      out.push({
        path: p,
        realPath: real,
        probeFile,
        hasGcProbes: has,
        probes: [...new Set(notes.filter((n) => n.provider === 'python').map((n) => n.name))].sort(),
        reason: has
          ? `python:gc__start/gc__done in ${probeFile}`
          : `${probeFile} has no python:gc__* USDT probes (built without --with-dtrace): GC pauses of processes running it are not measured`,
      });
    }
  }
  return out;
}
