/**
 * Python stacks of live processes, read from outside as py-spy does: the
 * interpreter's own structures through process_vm_readv, with _PyRuntime from
 * the symbol table and per-version offsets (offsets.ts; 3.13 publishes its
 * own). Every thread: file, function, line, innermost first.
 *
 *   const sampler = createStackSampler();
 *   const s = sampler.sample(pid);   // never throws: s.error says what went wrong
 *
 * Cheap by construction: a thread whose CPU time (ns, schedstat) did not move
 * since the last sample cannot have changed its stack, so a process with no
 * thread that ran is answered from the last sample, and a thread that did not
 * run keeps its frames; code objects are resolved once (code-cache.ts). Every
 * list is bounded (STACK_LIMITS).
 */
import { createCodeCache, parseCodeHeader, CODE_CACHE_LIMITS, CodeCache, CodeHeader } from './code-cache';
import { createInterpreterCache, InterpreterCache, versionString } from './interpreter';
import { lineOf } from './linetable';
import { stackLayout, StackLayout, STACK_VERSIONS } from './offsets';
import { createRemoteReader, RemoteReader } from './remote';
import type { PyFrame, PyStackSample, PyThread } from './stack-types';
import { FdBudget, namespaceTids, ProcessWatch, startTicks, taskName, TaskInfo, watchProcess } from './tasks';
import { findPthreadTidOffset, RawFrame, RawThread, readThreads, walkFrames, WALK_LIMITS } from './walker';

export const STACK_LIMITS = {
  ...WALK_LIMITS,
  ...CODE_CACHE_LIMITS,
  /** Processes whose context (runtime address, layout, last sample) is kept. */
  maxProcesses: 1024,
  /** /proc files kept open to re-read threads' CPU time cheaply (one per process plus one per thread). */
  maxOpenFiles: 1024,
};

export interface StackSamplerStats {
  samples: number;
  /** Answered from the previous sample: no thread ran since. */
  unchanged: number;
  /** Threads whose frames were kept because they did not run. */
  threadsKept: number;
  threadsWalked: number;
  /** process_vm_readv calls. */
  memoryReads: number;
  codeHits: number;
  codeMisses: number;
  errors: number;
}

export interface StackSampler {
  sample(pid: number): PyStackSample;
  /** Forgets a process (when it exits). */
  forget(pid: number): void;
  stats(): StackSamplerStats;
  /** Closes the files it keeps open and forgets every process. */
  close(): void;
}

export interface StackSamplerOptions {
  limits?: Partial<typeof STACK_LIMITS>;
  /** Shared with the GC prober when both run. */
  interpreters?: InterpreterCache;
  now?: () => number;
}

interface ThreadMemo {
  name: string;
  cpuNs: number;
  frame: number;
  frames: PyFrame[];
  truncated: boolean;
}

interface Context {
  startTicks: number;
  layout: StackLayout;
  version: string;
  runtime: number;
  codeType: number | null;
  reader: RemoteReader;
  watch: ProcessWatch;
  /** 3.9/3.10: offset of the tid in struct pthread; undefined until found. */
  pthreadTid?: number | null;
  /** In its own PID namespace: the tids it sees -> the host's (null: the same). Re-read when threads change. */
  nsTids?: Map<number, number> | null;
  tasks?: Map<number, number>;
  last?: PyStackSample;
  threads: Map<number, ThreadMemo>;
}

type Failure = { code: string; message: string };

export function createStackSampler(opts: StackSamplerOptions = {}): StackSampler {
  const lim = { ...STACK_LIMITS, ...opts.limits };
  const now = opts.now ?? Date.now;
  const interpreters = opts.interpreters ?? createInterpreterCache();
  const codes: CodeCache = createCodeCache(lim);
  const contexts = new Map<number, Context>();
  const fdBudget: FdBudget = { max: lim.maxOpenFiles, open: 0 };
  const st = { samples: 0, unchanged: 0, threadsKept: 0, threadsWalked: 0, errors: 0, readsOfForgotten: 0 };

  /** A new context for `pid` (the caller has found none that is still valid). */
  function contextOf(pid: number): Context | Failure {
    const ticks = startTicks(pid);
    if (ticks === null) return { code: 'PREMORTEM_ERR_PROCESS_GONE', message: `process ${pid} is gone` };
    const r = interpreters.resolve(pid);
    if (!r.ok) return { code: r.code, message: r.reason };
    const b = r.process.binary;
    if (b.runtimeAddress === null) return { code: 'PREMORTEM_ERR_NOT_PYTHON', message: `${b.path} has no _PyRuntime symbol` };
    const layout = b.version ? stackLayout(b.version.major, b.version.minor, b.debugOffsets) : null;
    if (!layout)
      return { code: 'PREMORTEM_ERR_PYTHON_VERSION', message: `no stack layout for Python ${versionString(b) || '(unknown version)'} (${b.path}); premortem reads ${STACK_VERSIONS}` };
    const ctx: Context = {
      startTicks: ticks, layout, version: versionString(b),
      runtime: r.process.loadBias + b.runtimeAddress,
      codeType: b.codeTypeAddress !== null ? r.process.loadBias + b.codeTypeAddress : null,
      reader: createRemoteReader(pid), watch: watchProcess(pid, lim.maxThreads, fdBudget), threads: new Map(),
    };
    if (contexts.size >= lim.maxProcesses) forget(contexts.keys().next().value as number);
    contexts.set(pid, ctx);
    return ctx;
  }

  function forget(pid: number): void {
    const ctx = contexts.get(pid);
    st.readsOfForgotten += ctx?.reader.calls ?? 0;
    ctx?.watch.close();
    contexts.delete(pid);
    codes.forget(pid);
  }

  /** Python frames of raw frames: code objects checked by type, lines from their tables. */
  function resolveFrames(pid: number, ctx: Context, raw: RawFrame[]): { frames: PyFrame[]; bad: boolean } {
    const L = ctx.layout;
    const headers: Array<CodeHeader | null> = new Array(raw.length).fill(null);
    ctx.reader.readEach(raw.map((f) => [f.code, L.code.readSize] as [number, number]), (i, buf, at) => {
      headers[i] = parseCodeHeader(buf, L, at);
    });
    const good: Array<{ addr: number; header: CodeHeader; instr: number }> = [];
    let bad = false;
    raw.forEach((f, i) => {
      const h = headers[i];
      if (!h || (ctx.codeType !== null && h.obType !== ctx.codeType)) bad = true;
      else good.push({ addr: f.code, header: h, instr: f.instr });
    });
    const infos = codes.resolve(pid, ctx.reader, L, good);
    const frames: PyFrame[] = good.map((g, i) => {
      const info = infos[i];
      if (!info) return { file: '<?>', function: '<?>', line: 0 };
      const instr = L.frame.instrKind === 'pointer' ? (g.instr - (g.addr + L.code.codeAdaptive!)) / 2 : g.instr;
      const line = Number.isInteger(instr) ? lineOf(L.code.linetableFormat, info.linetable, info.firstLine, instr) : -1;
      return { file: info.file, function: info.function, line: line > 0 ? line : 0 };
    });
    return { frames, bad };
  }

  /**
   * Host tids of the threads: CPython 3.11+ stores the tid the thread sees,
   * 3.9/3.10 only pthread_t (the tid is then read from glibc's struct pthread,
   * its offset found once per process). Inside a PID namespace both are the
   * namespace's tids, mapped to the host's through NSpid.
   */
  function mapTids(pid: number, ctx: Context, threads: RawThread[], tasks: TaskInfo[]): void {
    const hostTids = tasks.map((t) => t.tid);
    if (ctx.nsTids === undefined || (ctx.nsTids && ctx.nsTids.size !== hostTids.length)) ctx.nsTids = namespaceTids(pid, hostTids);
    const seenTids = ctx.nsTids ? [...ctx.nsTids.keys()] : hostTids;
    const nsPid = ctx.nsTids ? [...ctx.nsTids.entries()].find(([, host]) => host === pid)?.[0] ?? pid : pid;
    if (ctx.layout.tstate.nativeThreadId === null) {
      if (ctx.pthreadTid === undefined || ctx.pthreadTid === null)
        ctx.pthreadTid = findPthreadTidOffset(ctx.reader, nsPid, threads, new Set(seenTids), lim.pthreadScanBytes);
      if (ctx.pthreadTid === null) return;
      const bufs = ctx.reader.readMany(threads.map((t) => [t.pthread + ctx.pthreadTid!, 4] as [number, number]));
      threads.forEach((t, i) => {
        t.tid = bufs[i] ? bufs[i]!.readInt32LE(0) : 0;
      });
    }
    if (ctx.nsTids) for (const t of threads) t.tid = ctx.nsTids.get(t.tid) ?? 0;
  }

  function walk(pid: number, ctx: Context, tasks: TaskInfo[]): PyStackSample | Failure {
    const found = readThreads(ctx.reader, ctx.layout, ctx.runtime, lim);
    if (!found) return { code: 'PREMORTEM_ERR_PYSTACK_UNREADABLE', message: `cannot read _PyRuntime of process ${pid} (not initialised yet, or not this layout)` };
    mapTids(pid, ctx, found.threads, tasks);
    const cpu = new Map(tasks.map((t) => [t.tid, t.cpuNs]));
    const memo = new Map<number, ThreadMemo>();
    const threads: PyThread[] = found.threads.map((t) => {
      const cpuNs = cpu.get(t.tid) ?? -1;
      const prev = ctx.threads.get(t.tid);
      let m: ThreadMemo;
      if (prev && cpuNs >= 0 && prev.cpuNs === cpuNs && prev.frame === t.frame) {
        st.threadsKept++;
        m = prev;
      } else {
        st.threadsWalked++;
        const w = walkFrames(ctx.reader, ctx.layout, t.frame, lim.maxFrames, t.stackRegion);
        const r = resolveFrames(pid, ctx, w.frames);
        // A thread's name is read once (names are set at start, if ever).
        const name = prev?.name ?? (t.tid ? taskName(pid, t.tid) : '');
        m = { name, cpuNs, frame: t.frame, frames: r.frames, truncated: w.truncated || r.bad };
      }
      if (t.tid) memo.set(t.tid, m);
      return { tid: t.tid, name: m.name, frames: m.frames, isMain: t.tid === pid, holdsGil: t.holdsGil, truncated: m.truncated || found.truncated };
    });
    ctx.threads = memo;
    return { tMs: now(), pid, threads, error: '', pythonVersion: ctx.version };
  }

  function failed(pid: number, f: Failure): PyStackSample {
    st.errors++;
    return { tMs: now(), pid, threads: [], error: `${f.code}: ${f.message}`, pythonVersion: '' };
  }

  return {
    sample(pid: number): PyStackSample {
      st.samples++;
      let ctx: Context | Failure | undefined = contexts.get(pid);
      let seen = ctx?.watch.read() ?? null;
      if (ctx && (!seen || seen.startTicks !== ctx.startTicks)) {
        forget(pid); // gone, or the pid was reused
        ctx = undefined;
      }
      if (!ctx) {
        ctx = contextOf(pid);
        if ('code' in ctx) return failed(pid, ctx);
        seen = ctx.watch.read();
      }
      if (!seen) return failed(pid, { code: 'PREMORTEM_ERR_PROCESS_GONE', message: `process ${pid} is gone` });
      const tasks = seen.tasks;
      if (ctx.last && ctx.tasks && sameCpu(ctx.tasks, tasks)) {
        st.unchanged++;
        return { ...ctx.last, tMs: now() };
      }
      let s: PyStackSample | Failure;
      try {
        s = walk(pid, ctx, tasks);
      } catch (e) {
        const err = e as Error & { code?: string };
        if (err.code === 'PREMORTEM_ERR_PROCESS_GONE') forget(pid);
        s = { code: err.code ?? 'PREMORTEM_ERR_PYSTACK', message: err.message };
      }
      if ('code' in s) return failed(pid, s);
      ctx.last = s;
      ctx.tasks = new Map(tasks.map((t) => [t.tid, t.cpuNs]));
      return s;
    },
    forget,
    close() {
      for (const pid of [...contexts.keys()]) forget(pid);
    },
    stats: () => ({
      samples: st.samples, unchanged: st.unchanged, threadsKept: st.threadsKept, threadsWalked: st.threadsWalked,
      memoryReads: [...contexts.values()].reduce((n, c) => n + c.reader.calls, st.readsOfForgotten),
      codeHits: codes.hits, codeMisses: codes.misses, errors: st.errors,
    }),
  };
}

/** No thread came or went, and none ran (every CPU time known and unchanged). */
function sameCpu(before: Map<number, number>, now: TaskInfo[]): boolean {
  if (before.size !== now.length) return false;
  return now.every((t) => t.cpuNs >= 0 && before.get(t.tid) === t.cpuNs);
}
