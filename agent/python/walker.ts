/**
 * Walks a CPython process's own structures from outside (offsets.ts says
 * where): interpreters → thread states → frames, each read with
 * process_vm_readv while the process runs. Nothing is stopped, so a walk may
 * meet memory that changed under it: every pointer is bounded and checked,
 * and such a walk ends marked `truncated` instead of inventing frames.
 */
import { ptr } from './code-cache';
import type { StackLayout } from './offsets';
import type { RemoteReader } from './remote';

export const WALK_LIMITS = {
  maxInterpreters: 8,
  maxThreads: 64,
  maxFrames: 128,
  /** Bytes of glibc's struct pthread searched for the kernel tid (3.9/3.10 give only pthread_t). */
  pthreadScanBytes: 1024,
  /** Bytes of a thread's frame stack chunk read at once (3.11+; CPython's chunks are 16 KiB). */
  maxStackRegionBytes: 64 << 10,
};

export interface RawThread {
  tstate: number;
  /** The kernel tid (3.11+), else 0 until mapped from pthread_t. */
  tid: number;
  pthread: number;
  /** Address of the innermost frame, 0 when the thread runs no Python. */
  frame: number;
  holdsGil: boolean;
  /** 3.11+: the used part of the thread's frame stack chunk [start, bytes], null when unknown or too big. */
  stackRegion: [number, number] | null;
}

export interface RawFrame {
  code: number;
  /** f_lasti, or the instruction pointer. */
  instr: number;
}

const USER_MAX = 2 ** 47; // x86-64 user addresses
const valid = (p: number) => p >= 4096 && p < USER_MAX;

/** Every thread state of every interpreter; null when _PyRuntime cannot be read at all. */
export function readThreads(r: RemoteReader, L: StackLayout, runtime: number, lim = WALK_LIMITS): { threads: RawThread[]; truncated: boolean } | null {
  const head = r.readMany([
    [runtime + L.runtime.interpretersHead, 8],
    ...(L.runtime.gilTstateCurrent !== null ? [[runtime + L.runtime.gilTstateCurrent, 8] as [number, number]] : []),
  ]);
  if (!head[0]) return null;
  const gilCurrent = head[1] ? ptr(head[1], 0) : 0;
  const threads: RawThread[] = [];
  let truncated = false;
  let interp = ptr(head[0], 0);
  for (let n = 0; valid(interp) && n < lim.maxInterpreters; n++) {
    const I = L.interp;
    const ib = r.readMany([[interp + I.threadsHead, 8], [interp + I.next, 8],
      ...(I.gilPointer !== null ? [[interp + I.gilPointer, 8] as [number, number]] : []),
      ...(I.gilPointer === null && I.gilHolder !== null ? [[interp + I.gilHolder, 8], [interp + I.gilLocked!, 4]] as Array<[number, number]> : [])]);
    if (!ib[0] || !ib[1]) return threads.length ? { threads, truncated: true } : null;
    // Numbers now: the reader's buffers are reused by the next read.
    const threadsHead = ptr(ib[0], 0);
    const next = ptr(ib[1], 0);
    const holder = gilHolderOf(r, L, ib, gilCurrent);
    const first = threads.length;
    truncated = readThreadList(r, L, threadsHead, holder, threads, lim) || truncated;
    if (L.tstate.cframe !== null) resolveCframes(r, L, threads.slice(first));
    interp = next;
  }
  return { threads, truncated };
}

/** The thread state holding the GIL (0: none known). Reads `ib` before reading anything else. */
function gilHolderOf(r: RemoteReader, L: StackLayout, ib: Array<Buffer | null>, gilCurrent: number): number {
  if (L.runtime.gilTstateCurrent !== null) return gilCurrent;
  if (L.interp.gilPointer !== null) {
    const gil = ib[2] ? ptr(ib[2], 0) : 0;
    if (!valid(gil)) return 0;
    const g = r.readMany([[gil + L.interp.gilHolder!, 8], [gil + L.interp.gilLocked!, 4]]);
    return g[0] && g[1] && g[1].readInt32LE(0) ? ptr(g[0], 0) : 0;
  }
  if (L.interp.gilHolder !== null) return ib[2] && ib[3] && ib[3].readInt32LE(0) ? ptr(ib[2], 0) : 0;
  return 0;
}

/** Follows tstate->next from `tstate`; true when it stopped early. */
function readThreadList(r: RemoteReader, L: StackLayout, tstate: number, gilHolder: number, out: RawThread[], lim: typeof WALK_LIMITS): boolean {
  const T = L.tstate;
  const seen = new Set<number>();
  while (valid(tstate)) {
    if (out.length >= lim.maxThreads || seen.has(tstate)) return true;
    seen.add(tstate);
    const b = r.read(tstate, T.readSize);
    if (!b) return true;
    let stackRegion: [number, number] | null = null;
    if (T.datastackChunk !== null) {
      const chunk = ptr(b, T.datastackChunk);
      const top = ptr(b, T.datastackChunk + 8); // datastack_top follows datastack_chunk
      if (valid(chunk) && top > chunk && top - chunk <= lim.maxStackRegionBytes) stackRegion = [chunk, top - chunk];
    }
    out.push({
      tstate,
      tid: T.nativeThreadId !== null ? ptr(b, T.nativeThreadId) : 0,
      pthread: ptr(b, T.threadId),
      frame: ptr(b, T.cframe ?? T.frame), // the _PyCFrame pointer until resolveCframes
      holdsGil: gilHolder !== 0 && gilHolder === tstate,
      stackRegion,
    });
    tstate = ptr(b, T.next);
  }
  return false;
}

/** 3.11–3.12: the innermost frame is tstate->cframe->current_frame (one batched read). */
function resolveCframes(r: RemoteReader, L: StackLayout, threads: RawThread[]): void {
  const bufs = r.readMany(threads.map((t) => [valid(t.frame) ? t.frame + L.tstate.frame : 0, valid(t.frame) ? 8 : 0] as [number, number]));
  threads.forEach((t, i) => {
    t.frame = bufs[i] && bufs[i]!.length === 8 ? ptr(bufs[i]!, 0) : 0;
  });
}

/** The frames of one thread, innermost first, C-stack shims left out. */
export function walkFrames(r: RemoteReader, L: StackLayout, frame: number, maxFrames: number,
  region: [number, number] | null = null): { frames: RawFrame[]; truncated: boolean } {
  if (r.walkChain) return walkNative(r, L, frame, maxFrames, region);
  const F = L.frame;
  const frames: RawFrame[] = [];
  const seen = new Set<number>();
  while (valid(frame)) {
    if (frames.length >= maxFrames || seen.has(frame)) return { frames, truncated: true };
    seen.add(frame);
    const b = r.read(frame, F.readSize);
    if (!b) return { frames, truncated: true };
    const owner = F.owner !== null ? b[F.owner] : -1;
    if (owner !== F.ownerCstack) {
      const instr = F.instrKind === 'pointer' ? ptr(b, F.instr) : b.readInt32LE(F.instr);
      frames.push({ code: ptr(b, F.code), instr });
    }
    frame = ptr(b, F.previous);
  }
  return { frames, truncated: false };
}

const nativeLayouts = new WeakMap<StackLayout, Float64Array>();
let chainOut = new Float64Array(2 * 128);

/** The same walk in the addon: one N-API call instead of one per frame. */
function walkNative(r: RemoteReader, L: StackLayout, frame: number, maxFrames: number,
  region: [number, number] | null): { frames: RawFrame[]; truncated: boolean } {
  let layout = nativeLayouts.get(L);
  if (!layout) {
    const F = L.frame;
    layout = Float64Array.from([F.readSize, F.previous, F.code, F.instr, F.instrKind === 'pointer' ? 1 : 0, F.owner ?? -1, F.ownerCstack ?? -1]);
    nativeLayouts.set(L, layout);
  }
  if (chainOut.length !== 2 * maxFrames) chainOut = new Float64Array(2 * maxFrames);
  const { count, truncated } = r.walkChain!(frame, layout, chainOut, region);
  const frames: RawFrame[] = new Array(count);
  for (let i = 0; i < count; i++) frames[i] = { code: chainOut[2 * i], instr: chainOut[2 * i + 1] };
  return { frames, truncated };
}

/**
 * 3.9/3.10 name threads by pthread_t only: the kernel tid is a field of
 * glibc's struct pthread at an offset that depends on the glibc build. It is
 * the one offset where every thread holds one of the process's tids and the
 * main thread holds the pid. Null when no offset fits.
 */
export function findPthreadTidOffset(r: RemoteReader, pid: number, threads: RawThread[], tids: Set<number>, scanBytes: number): number | null {
  const bufs = r.readMany(threads.map((t) => [valid(t.pthread) ? t.pthread : 0, valid(t.pthread) ? scanBytes : 0] as [number, number]));
  if (bufs.some((b) => !b || b.length < scanBytes)) return null;
  for (let o = 0; o + 4 <= scanBytes; o += 4) {
    const vals = bufs.map((b) => b!.readInt32LE(o));
    if (vals.every((v) => tids.has(v)) && vals.includes(pid) && new Set(vals).size === vals.length) return o;
  }
  return null;
}
