/**
 * CPython 3.13's `_Py_DebugOffsets`: the interpreter publishes, at the very
 * start of `_PyRuntime`, the offsets of the fields an out-of-process reader
 * needs (Include/internal/pycore_runtime.h, "xdebugpy" cookie). It is
 * statically initialised, so it can be read from the file (the .data of the
 * ELF) or from the live process. This module knows only the 3.13 layout of
 * that struct (checked against the DWARF of pyenv's 3.13.0); 3.14 changed it.
 */

export const DEBUG_COOKIE = 'xdebugpy';
/** Bytes of _Py_DebugOffsets in 3.13. */
export const DEBUG_OFFSETS_SIZE_3_13 = 584;

/** The fields premortem uses (all byte offsets, from the struct named in the key). */
export interface DebugOffsets {
  /** PY_VERSION_HEX of the runtime that wrote them. */
  versionHex: number;
  freeThreaded: boolean;
  runtime: { interpretersHead: number };
  interp: { next: number; threadsHead: number; gc: number; gilHolder: number; gilLocked: number };
  tstate: { next: number; interp: number; currentFrame: number; threadId: number; nativeThreadId: number; datastackChunk: number };
  frame: { size: number; previous: number; executable: number; instrPtr: number; owner: number };
  code: { size: number; filename: number; name: number; qualname: number; linetable: number; firstlineno: number; codeAdaptive: number };
  pyobject: { obType: number };
  unicode: { state: number; length: number; asciiSize: number };
  bytes: { obSize: number; obSval: number };
  gc: { collecting: number };
}

/** Parses 3.13 debug offsets; null when the cookie or the version is not 3.13's. */
export function parseDebugOffsets(buf: Buffer): DebugOffsets | null {
  if (buf.length < DEBUG_OFFSETS_SIZE_3_13 || buf.toString('latin1', 0, 8) !== DEBUG_COOKIE) return null;
  const u = (o: number) => Number(buf.readBigUInt64LE(o));
  const versionHex = u(8);
  if (versionHex >>> 16 !== 0x030d) return null; // 3.13 only: the layout below is 3.13's
  return {
    versionHex,
    freeThreaded: u(16) !== 0,
    runtime: { interpretersHead: u(40) },
    interp: { next: u(64), threadsHead: u(72), gc: u(80), gilHolder: u(144), gilLocked: u(136) },
    tstate: { next: u(168), interp: u(176), currentFrame: u(184), threadId: u(192), nativeThreadId: u(200), datastackChunk: u(208) },
    frame: { size: u(224), previous: u(232), executable: u(240), instrPtr: u(248), owner: u(264) },
    code: { size: u(272), filename: u(280), name: u(288), qualname: u(296), linetable: u(304), firstlineno: u(312), codeAdaptive: u(344) },
    pyobject: { obType: u(360) },
    unicode: { state: u(544), length: u(552), asciiSize: u(560) },
    bytes: { obSize: u(520), obSval: u(528) },
    gc: { collecting: u(576) },
  };
}

/** Size of struct gc_generation_stats in 3.13 (collections, collected, uncollectable). */
export const GC_GENERATION_STATS_SIZE = 24;

/**
 * Offset of gc.generation_stats[0] in PyInterpreterState: in 3.13's
 * struct _gc_runtime_state the three generation_stats come right before
 * `collecting` (Include/internal/pycore_gc.h), whose offset is published.
 */
export function generationStatsOffset(d: DebugOffsets): number {
  return d.interp.gc + d.gc.collecting - 3 * GC_GENERATION_STATS_SIZE;
}
