/**
 * Interpreter discovery: for a process, the file that holds its CPython
 * runtime (the libpython it mapped, else its executable), found in
 * /proc/PID/maps and opened through /proc/PID/root, so that a binary inside a
 * container's mount namespace is read even when that path means nothing (or
 * something else) on the host. Files are keyed by the device and inode the
 * kernel maps: every process of one interpreter, whatever path or namespace it
 * runs it from, shares one PythonBinary (read once, probed once).
 */
import * as fs from 'fs';
import * as path from 'path';
import { DebugOffsets, DEBUG_OFFSETS_SIZE_3_13, parseDebugOffsets } from './debug-offsets';
import { ElfError, ElfSymbol, withElf } from './elf';
import { isGcEntryCandidate } from './gc-entry';
import { fileKey, Mapping, openPathOf, readMaps } from './maps';
import { hasGcProbes, pythonProbeNames } from './usdt';

export const INTERPRETER_LIMITS = {
  /** Distinct interpreter files remembered (hosts run a handful; a bound, not a target). */
  maxBinaries: 64,
};

export interface PyVersion {
  major: number;
  minor: number;
  /** null when only the file name told major.minor. */
  micro: number | null;
  source: 'Py_Version' | 'file name';
}

/** A symbol of the runtime file with its file offset (what a uprobe attaches to). */
export interface LocatedSymbol extends ElfSymbol {
  fileOffset: number;
}

/** One interpreter file (executable or libpython), shared by every process that maps it. */
export interface PythonBinary {
  /** "dev:inode" as /proc/PID/maps shows it. */
  key: string;
  /** The path as the first process seen with it names it (inside its mount namespace). */
  path: string;
  kind: 'executable' | 'libpython';
  version: PyVersion | null;
  /** Linked address of _PyRuntime (null: not a CPython runtime). */
  runtimeAddress: number | null;
  /** Linked address of PyCode_Type (frames are checked against it), null when absent. */
  codeTypeAddress: number | null;
  /** 3.13+: the _Py_DebugOffsets the file's _PyRuntime starts with. */
  debugOffsets: DebugOffsets | null;
  hasSymtab: boolean;
  /** python:gc__start and gc__done USDT probes are present. */
  gcUsdt: boolean;
  /** Every python:* USDT probe name. */
  usdtProbes: string[];
  /** Collector candidates (see gc-entry.ts), with file offsets. */
  gcSymbols: LocatedSymbol[];
  /** Linked address of file offset 0 (for the load bias), null when no segment maps it. */
  vaddrAtOffset0: number | null;
}

/** A process running a PythonBinary. */
export interface PythonProcess {
  pid: number;
  binary: PythonBinary;
  /**
   * How this agent reaches the file: /proc/PID/root/<path>; when the file was
   * deleted (upgraded under a running process) the path would name the new
   * file, so /proc/PID/exe or /proc/PID/map_files/<range> (the old one) instead.
   */
  openPath: string;
  /** Runtime address = loadBias + linked address. */
  loadBias: number;
}

export type InterpreterErrorCode =
  | 'PREMORTEM_ERR_PROCESS_GONE'
  | 'PREMORTEM_ERR_NOT_PYTHON'
  | 'PREMORTEM_ERR_ELF'
  | 'PREMORTEM_ERR_ELF_OPEN';

export type InterpreterResult =
  | { ok: true; process: PythonProcess }
  | { ok: false; code: InterpreterErrorCode; reason: string; path?: string };

export interface InterpreterCache {
  /** The interpreter of process `pid` (cheap after the first process of a binary: one maps read). */
  resolve(pid: number): InterpreterResult;
  /** Every binary read so far (bounded by maxBinaries). */
  binaries(): PythonBinary[];
  /** How many times a file was read (once per distinct binary unless evicted). */
  readonly inspections: number;
}

const LIBPYTHON = /\/libpython3\.\d+[^/]*\.so(\.[\d.]+)?( \(deleted\))?$/;
const DELETED = ' (deleted)';

/** Reads what premortem needs from an interpreter file (throws ElfError). */
export function inspectBinary(openPath: string, mappedPath: string, key: string, kind: PythonBinary['kind']): PythonBinary {
  return withElf(openPath, (elf) => {
    const wanted = (n: string) => n === '_PyRuntime' || n === 'Py_Version' || n === 'PyCode_Type' || isGcEntryCandidate(n);
    const syms = elf.symbols(wanted);
    const runtime = syms.find((s) => s.name === '_PyRuntime' && s.kind === 'object');
    const codeType = syms.find((s) => s.name === 'PyCode_Type' && s.kind === 'object');
    const debugRaw = runtime ? elf.readVaddr(runtime.value, DEBUG_OFFSETS_SIZE_3_13) : null;
    const pyVersion = syms.find((s) => s.name === 'Py_Version' && s.kind === 'object');
    let version: PyVersion | null = null;
    const raw = pyVersion ? elf.readVaddr(pyVersion.value, 4) : null;
    if (raw) {
      const hex = raw.readUInt32LE(0); // PY_VERSION_HEX: 0xMMmmuu..
      version = { major: hex >>> 24, minor: (hex >>> 16) & 0xff, micro: (hex >>> 8) & 0xff, source: 'Py_Version' };
    } else {
      version = versionFromName(mappedPath);
    }
    const notes = elf.stapsdtNotes();
    const gcSymbols: LocatedSymbol[] = [];
    for (const s of syms) {
      if (!isGcEntryCandidate(s.name) || s.kind !== 'func') continue;
      const off = elf.fileOffset(s.value);
      if (off !== null) gcSymbols.push({ ...s, fileOffset: off });
    }
    return {
      key, path: mappedPath.replace(DELETED, ''), kind, version,
      runtimeAddress: runtime ? runtime.value : null,
      codeTypeAddress: codeType ? codeType.value : null,
      debugOffsets: debugRaw ? parseDebugOffsets(debugRaw) : null,
      hasSymtab: elf.sections.some((s) => s.type === 2),
      gcUsdt: hasGcProbes(notes),
      usdtProbes: pythonProbeNames(notes),
      gcSymbols,
      vaddrAtOffset0: elf.vaddrOfFileOffset(0),
    };
  });
}

/** "3.11.7", "3.9" (from the file name), "" when unknown. */
export function versionString(b: PythonBinary): string {
  const v = b.version;
  return v ? `${v.major}.${v.minor}${v.micro !== null ? `.${v.micro}` : ''}` : '';
}

/** major.minor from a file name such as libpython3.11.so.1.0 or python3.9. */
export function versionFromName(p: string): PyVersion | null {
  const m = /(?:libpython|python)(\d)\.(\d+)/.exec(path.basename(p));
  return m ? { major: Number(m[1]), minor: Number(m[2]), micro: null, source: 'file name' } : null;
}

/** Where this agent opens (and attaches to) a mapped file: see PythonProcess.openPath. */
function reachPath(pid: number, m: Mapping, kind: PythonBinary['kind']): string {
  if (!m.path.endsWith(DELETED)) return openPathOf(pid, m.path);
  if (kind === 'executable') return `/proc/${pid}/exe`;
  return `/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`; // needs CAP_SYS_ADMIN
}

/** The mapping of the runtime file: libpython when mapped, else the executable. */
function runtimeMapping(pid: number, maps: Mapping[]): { m: Mapping; kind: PythonBinary['kind'] } | { error: string } {
  const lib = maps.find((m) => LIBPYTHON.test(m.path) && m.offset === 0) ?? maps.find((m) => LIBPYTHON.test(m.path));
  if (lib) return { m: lib, kind: 'libpython' };
  let exe: string;
  try {
    exe = fs.readlinkSync(`/proc/${pid}/exe`);
  } catch (e) {
    return { error: `cannot read /proc/${pid}/exe: ${(e as Error).message}` };
  }
  const mine = maps.filter((m) => m.path === exe);
  const m = mine.find((x) => x.offset === 0) ?? mine[0];
  return m ? { m, kind: 'executable' } : { error: `${exe} is not mapped by process ${pid}` };
}

export function createInterpreterCache(limits: Partial<typeof INTERPRETER_LIMITS> = {}): InterpreterCache {
  const max = limits.maxBinaries ?? INTERPRETER_LIMITS.maxBinaries;
  const byKey = new Map<string, PythonBinary>();
  let inspections = 0;

  function binaryFor(pid: number, m: Mapping, kind: PythonBinary['kind']): PythonBinary {
    const key = fileKey(m);
    const known = byKey.get(key);
    if (known) return known;
    const openPath = reachPath(pid, m, kind);
    inspections++;
    const b = inspectBinary(openPath, m.path, key, kind);
    if (byKey.size >= max) byKey.delete(byKey.keys().next().value as string); // oldest first
    byKey.set(key, b);
    return b;
  }

  return {
    get inspections() {
      return inspections;
    },
    binaries: () => [...byKey.values()],
    resolve(pid: number): InterpreterResult {
      const maps = readMaps(pid);
      if (!maps) return { ok: false, code: 'PREMORTEM_ERR_PROCESS_GONE', reason: `process ${pid} is gone (no /proc/${pid}/maps)` };
      const found = runtimeMapping(pid, maps);
      if ('error' in found) return { ok: false, code: 'PREMORTEM_ERR_NOT_PYTHON', reason: found.error };
      let binary: PythonBinary;
      try {
        binary = binaryFor(pid, found.m, found.kind);
      } catch (e) {
        const err = e as ElfError;
        return { ok: false, code: err.code ?? 'PREMORTEM_ERR_ELF', reason: err.message, path: found.m.path };
      }
      if (binary.runtimeAddress === null && binary.kind === 'executable' && !/python/i.test(path.basename(binary.path)))
        return { ok: false, code: 'PREMORTEM_ERR_NOT_PYTHON', reason: `${binary.path} is not a Python interpreter and maps no libpython`, path: binary.path };
      const at0 = binary.vaddrAtOffset0 ?? 0;
      return {
        ok: true,
        process: {
          pid, binary,
          openPath: reachPath(pid, found.m, binary.kind),
          // The mapping of file offset `offset` starts at the linked address of that offset plus the bias.
          loadBias: found.m.start - (found.m.offset === 0 ? at0 : found.m.offset + at0),
        },
      };
    },
  };
}
