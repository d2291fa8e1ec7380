/**
 * Where a stack reader finds things in a CPython process, one table per
 * minor version. 3.13 publishes them itself (_Py_DebugOffsets, read from the
 * interpreter's own file: see debug-offsets.ts); for 3.9–3.12 they come from
 * each version's headers (Include/internal/pycore_runtime.h, pycore_interp.h,
 * pycore_frame.h, Include/cpython/pystate.h, code.h, frameobject.h,
 * unicodeobject.h), for x86-64 release builds (no Py_DEBUG / Py_TRACE_REFS,
 * which change PyObject), and were checked against the DWARF of the pyenv
 * builds 3.9.18, 3.10.13, 3.11.7 and 3.12.1 (`gdb -batch -ex 'ptype/o struct _ts'`).
 * Private structs may change between patch releases; the sampler validates
 * what it reads (code objects by their type) and reports an error rather than
 * inventing frames.
 *
 * The chain the reader follows:
 *   _PyRuntime.interpreters.head → PyInterpreterState → threads (tstate_head / threads.head)
 *   → PyThreadState → its innermost frame:
 *        3.9–3.10  tstate->frame (PyFrameObject; f_back; f_lasti)
 *        3.11–3.12 tstate->cframe->current_frame (_PyInterpreterFrame; previous; prev_instr)
 *        3.13      tstate->current_frame (_PyInterpreterFrame; previous; instr_ptr)
 *   → the frame's code object → co_filename, co_name, co_firstlineno and its line table.
 */
import type { DebugOffsets } from './debug-offsets';

export type LinetableFormat =
  /** 3.9: co_lnotab, (bytecode delta, line delta) pairs, byte offsets. */
  | 'lnotab'
  /** 3.10: co_linetable (PEP 626), (byte delta, line delta or -128) pairs. */
  | 'pep626'
  /** 3.11+: co_linetable location entries, in code units (Objects/locations.md). */
  | 'locations';

export interface StackLayout {
  /** "3.11" */
  version: string;
  /** Where the numbers come from. */
  source: string;
  runtime: {
    interpretersHead: number;
    /** _PyRuntime.gilstate.tstate_current (3.9–3.11): the thread state holding the GIL. */
    gilTstateCurrent: number | null;
  };
  interp: {
    next: number;
    threadsHead: number;
    /** 3.12: interp->ceval.gil, a pointer to the GIL struct holding last_holder / locked. */
    gilPointer: number | null;
    /** Offsets of last_holder and locked: in the struct gilPointer points to, or (3.13) in the interpreter itself. */
    gilHolder: number | null;
    gilLocked: number | null;
  };
  tstate: {
    /** Bytes read per thread state (covers every field below). */
    readSize: number;
    next: number;
    /** pthread_t (the address of glibc's struct pthread). */
    threadId: number;
    /** The kernel tid (3.11+); null before. */
    nativeThreadId: number | null;
    /** The innermost frame: a field of the thread state, or of its _PyCFrame (cframe !== null). */
    frame: number;
    cframe: number | null;
    /**
     * 3.11+: datastack_chunk, the chunk of contiguous memory the thread's
     * frames are pushed on; datastack_top (the end of its used part) follows it.
     * Reading the used part once serves every frame in it.
     */
    datastackChunk: number | null;
  };
  frame: {
    readSize: number;
    previous: number;
    code: number;
    /** Where execution is: f_lasti (an int) or a pointer into the code's bytecode. */
    instr: number;
    instrKind: 'lasti-bytes' | 'lasti-units' | 'pointer';
    /** `owner` char (3.11+), and the value of a C-stack shim frame to skip (3.12+). */
    owner: number | null;
    ownerCstack: number | null;
  };
  code: {
    readSize: number;
    obType: number;
    filename: number;
    name: number;
    qualname: number | null;
    firstlineno: number;
    linetable: number;
    linetableFormat: LinetableFormat;
    /** Offset of the bytecode in the code object (3.11+: co_code_adaptive). */
    codeAdaptive: number | null;
  };
  unicode: { length: number; state: number; asciiSize: number; compactSize: number };
  bytes: { size: number; data: number };
}

const BYTES = { size: 16, data: 32 }; // PyVarObject ob_size; PyBytesObject ob_sval (after ob_shash)
const UNICODE_WITH_WSTR = { length: 16, state: 32, asciiSize: 48, compactSize: 72 }; // 3.9–3.11
const UNICODE_NO_WSTR = { length: 16, state: 32, asciiSize: 40, compactSize: 56 }; // 3.12+

const LAYOUTS: Record<string, StackLayout> = {
  '3.9': {
    version: '3.9', source: 'CPython 3.9 headers; DWARF of 3.9.18',
    runtime: { interpretersHead: 32, gilTstateCurrent: 568 },
    interp: { next: 0, threadsHead: 8, gilPointer: null, gilHolder: null, gilLocked: null },
    tstate: { readSize: 184, next: 8, threadId: 176, nativeThreadId: null, frame: 24, cframe: null, datastackChunk: null },
    frame: { readSize: 112, previous: 24, code: 32, instr: 104, instrKind: 'lasti-bytes', owner: null, ownerCstack: null },
    code: { readSize: 128, obType: 8, filename: 104, name: 112, qualname: null, firstlineno: 40, linetable: 120, linetableFormat: 'lnotab', codeAdaptive: null },
    unicode: UNICODE_WITH_WSTR, bytes: BYTES,
  },
  '3.10': {
    version: '3.10', source: 'CPython 3.10 headers; DWARF of 3.10.13',
    runtime: { interpretersHead: 32, gilTstateCurrent: 568 },
    interp: { next: 0, threadsHead: 8, gilPointer: null, gilHolder: null, gilLocked: null },
    tstate: { readSize: 184, next: 8, threadId: 176, nativeThreadId: null, frame: 24, cframe: null, datastackChunk: null },
    frame: { readSize: 104, previous: 24, code: 32, instr: 96, instrKind: 'lasti-units', owner: null, ownerCstack: null },
    code: { readSize: 128, obType: 8, filename: 104, name: 112, qualname: null, firstlineno: 40, linetable: 120, linetableFormat: 'pep626', codeAdaptive: null },
    unicode: UNICODE_WITH_WSTR, bytes: BYTES,
  },
  '3.11': {
    version: '3.11', source: 'CPython 3.11 headers; DWARF of 3.11.7',
    runtime: { interpretersHead: 40, gilTstateCurrent: 576 },
    interp: { next: 0, threadsHead: 16, gilPointer: null, gilHolder: null, gilLocked: null },
    tstate: { readSize: 312, next: 8, threadId: 152, nativeThreadId: 160, frame: 8, cframe: 56, datastackChunk: 296 },
    frame: { readSize: 72, previous: 48, code: 32, instr: 56, instrKind: 'pointer', owner: 69, ownerCstack: null },
    code: { readSize: 144, obType: 8, filename: 112, name: 120, qualname: 128, firstlineno: 72, linetable: 136, linetableFormat: 'locations', codeAdaptive: 184 },
    unicode: UNICODE_WITH_WSTR, bytes: BYTES,
  },
  '3.12': {
    version: '3.12', source: 'CPython 3.12 headers; DWARF of 3.12.1',
    runtime: { interpretersHead: 40, gilTstateCurrent: null },
    interp: { next: 0, threadsHead: 72, gilPointer: 384, gilHolder: 8, gilLocked: 16 },
    tstate: { readSize: 248, next: 8, threadId: 136, nativeThreadId: 144, frame: 0, cframe: 56, datastackChunk: 232 },
    frame: { readSize: 72, previous: 8, code: 0, instr: 56, instrKind: 'pointer', owner: 70, ownerCstack: 3 },
    code: { readSize: 144, obType: 8, filename: 112, name: 120, qualname: 128, firstlineno: 68, linetable: 136, linetableFormat: 'locations', codeAdaptive: 192 },
    unicode: UNICODE_NO_WSTR, bytes: BYTES,
  },
};

/** 3.13+: the layout the interpreter published (FRAME_OWNED_BY_CSTACK is 3 in 3.13). */
export function layoutFromDebugOffsets(d: DebugOffsets): StackLayout {
  const t = d.tstate;
  const f = d.frame;
  const c = d.code;
  const major = d.versionHex >>> 24;
  const minor = (d.versionHex >>> 16) & 0xff;
  return {
    version: `${major}.${minor}`, source: '_Py_DebugOffsets published by the interpreter',
    runtime: { interpretersHead: d.runtime.interpretersHead, gilTstateCurrent: null },
    interp: { next: d.interp.next, threadsHead: d.interp.threadsHead, gilPointer: null, gilHolder: d.interp.gilHolder, gilLocked: d.interp.gilLocked },
    tstate: {
      readSize: Math.max(t.next, t.threadId, t.nativeThreadId, t.currentFrame, t.datastackChunk + 8) + 8,
      next: t.next, threadId: t.threadId, nativeThreadId: t.nativeThreadId, frame: t.currentFrame, cframe: null,
      datastackChunk: t.datastackChunk,
    },
    frame: {
      readSize: Math.max(f.previous + 8, f.executable + 8, f.instrPtr + 8, f.owner + 1),
      previous: f.previous, code: f.executable, instr: f.instrPtr, instrKind: 'pointer', owner: f.owner, ownerCstack: 3,
    },
    code: {
      readSize: Math.max(c.filename, c.name, c.qualname, c.linetable, c.firstlineno) + 8, obType: d.pyobject.obType,
      filename: c.filename, name: c.name, qualname: c.qualname, firstlineno: c.firstlineno, linetable: c.linetable,
      linetableFormat: 'locations', codeAdaptive: c.codeAdaptive,
    },
    unicode: { length: d.unicode.length, state: d.unicode.state, asciiSize: d.unicode.asciiSize, compactSize: d.unicode.asciiSize + 16 },
    bytes: { size: d.bytes.obSize, data: d.bytes.obSval },
  };
}

/**
 * The layout for a CPython version, or null when premortem has none (with the
 * debug offsets of 3.13+ when present). Free-threaded builds (3.13t) are not
 * read: untested here, and their objects differ beyond what the offsets say.
 */
export function stackLayout(major: number, minor: number, debug: DebugOffsets | null): StackLayout | null {
  if (debug?.freeThreaded) return null;
  if (debug && major === 3 && minor >= 13) return layoutFromDebugOffsets(debug);
  return LAYOUTS[`${major}.${minor}`] ?? null;
}

export const STACK_VERSIONS = '3.9–3.13';
