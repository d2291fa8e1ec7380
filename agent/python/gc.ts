/**
 * GC pauses per interpreter, attached once per distinct binary (device and
 * inode), for every process that maps it (pid -1; the BPF side filters on the
 * tracked pids). The method per binary:
 *   usdt   — python:gc__start / gc__done, when the build has them;
 *   uprobe — uprobe + uretprobe on the collector's entry point (gc-entry.ts);
 *   none   — with why (no probes and no symbol, unknown version, not CPython).
 * Both methods feed the same maps (gc_hist, gc_stats) and GC pause records.
 *
 *   const gc = createPythonGc({ tracer, log });
 *   gc.attachFor(pid);        // on each tracked process (cheap after the first of a binary)
 *   gc.features();            // `gc-usdt <path>`, `gc-uprobe <path>`, `gc-none <path>`
 *   gc.close();               // detaches everything
 */
import type { Tracer } from '../native';
import type { Logger } from '../log';
import type { Feature } from '../../proto/codec';
import { attachGcProbes, attachGcUprobes } from '../probes/pygc';
import { chooseGcEntries } from './gc-entry';
import { createInterpreterCache, InterpreterCache, PythonProcess, versionString } from './interpreter';

export const PYTHON_GC_LIMITS = {
  /** Interpreter binaries with a GC method decided (and probes attached): interpreters are few; never per pid. */
  maxTargets: 64,
};

export type GcMethod = 'usdt' | 'uprobe' | 'none';

export interface GcTarget {
  /** "dev:inode" of the binary. */
  key: string;
  path: string;
  /** e.g. "3.11.7", "3.9", "" when unknown. */
  version: string;
  method: GcMethod;
  /** What is attached, or why nothing is. */
  reason: string;
  /** Link ids held (detached by close()). */
  links: number[];
  /** The process it was first seen in. */
  firstPid: number;
}

export interface PythonGc {
  /** Decides and attaches the GC method of `pid`'s interpreter once per binary; null when the process is not Python or gone. */
  attachFor(pid: number): GcTarget | null;
  targets(): GcTarget[];
  /** One feature per interpreter binary: `gc-<method> <path>`. */
  features(): Feature[];
  /** Attach calls made to the tracer (usdt or uprobe), for tests of "once per binary". */
  readonly attachCalls: number;
  close(): void;
}

export interface PythonGcOptions {
  tracer: Tracer;
  log: Logger;
  limits?: Partial<typeof PYTHON_GC_LIMITS>;
  /** Shared with the stack sampler when both run. */
  interpreters?: InterpreterCache;
}

export function createPythonGc(opts: PythonGcOptions): PythonGc {
  const { tracer, log } = opts;
  const maxTargets = opts.limits?.maxTargets ?? PYTHON_GC_LIMITS.maxTargets;
  const interpreters = opts.interpreters ?? createInterpreterCache();
  const targets = new Map<string, GcTarget>();
  let attachCalls = 0;
  let overflowLogged = false;

  const pygcLoaded = () => tracer.probes().some((p) => p.name === 'pygc' && p.loaded);

  function tryUsdt(p: PythonProcess): { links: number[] } | { error: string } {
    attachCalls++;
    try {
      return { links: attachGcProbes(tracer, p.openPath, -1) };
    } catch (e) {
      return { error: (e as Error).message.split('\n')[0] };
    }
  }

  function tryUprobe(p: PythonProcess): { links: number[]; reason: string } | { error: string } {
    const b = p.binary;
    if (!b.version) return { error: 'its CPython version is unknown, so no collector function' };
    const choice = chooseGcEntries(b.version.major, b.version.minor, b.gcSymbols, b.hasSymtab, b.debugOffsets);
    if (!choice.entries.length) return { error: choice.reason };
    const entries = choice.entries.map((e) => ({
      fileOffset: b.gcSymbols.find((s) => s.value === e.symbol.value)!.fileOffset,
      generation: e.generation,
    }));
    attachCalls++;
    try {
      return { links: attachGcUprobes(tracer, p.openPath, entries, -1), reason: `uprobe on ${choice.reason}` };
    } catch (e) {
      return { error: `uprobe attach failed: ${(e as Error).message.split('\n')[0]}` };
    }
  }

  function decide(p: PythonProcess): Pick<GcTarget, 'method' | 'reason' | 'links'> {
    const b = p.binary;
    if (!pygcLoaded()) return { method: 'none', reason: 'the pygc probe is not loaded', links: [] };
    let why = `${b.path} has no python:gc__* USDT probes (built without --with-dtrace); `;
    if (b.gcUsdt) {
      const u = tryUsdt(p);
      if ('links' in u) return { method: 'usdt', reason: `python:gc__start/gc__done USDT probes in ${b.path}`, links: u.links };
      why = `USDT attach failed (${u.error}); `;
    }
    const r = tryUprobe(p);
    if ('links' in r) return { method: 'uprobe', reason: why + r.reason, links: r.links };
    return { method: 'none', reason: why + r.error, links: [] };
  }

  return {
    get attachCalls() {
      return attachCalls;
    },
    attachFor(pid: number): GcTarget | null {
      const r = interpreters.resolve(pid);
      if (!r.ok) {
        if (r.code !== 'PREMORTEM_ERR_PROCESS_GONE' && r.code !== 'PREMORTEM_ERR_NOT_PYTHON')
          log.debug('python interpreter not readable', { pid, code: r.code, reason: r.reason });
        return null;
      }
      const b = r.process.binary;
      const known = targets.get(b.key);
      if (known) return known;
      if (targets.size >= maxTargets) {
        if (!overflowLogged) log.warn(`GC probes: more than ${maxTargets} distinct interpreter binaries; later ones are not probed`);
        overflowLogged = true;
        return null;
      }
      const d = decide(r.process);
      const t: GcTarget = { key: b.key, path: b.path, version: versionString(b), firstPid: pid, ...d };
      targets.set(b.key, t);
      log.info(`python GC (${t.version || 'unknown version'}) ${t.path}: ${t.method}`, { reason: t.reason });
      return t;
    },
    targets: () => [...targets.values()],
    features: () => [...targets.values()].map((t) => ({
      name: `gc-${t.method} ${t.path}`,
      enabled: t.method !== 'none',
      reason: t.version ? `Python ${t.version}: ${t.reason}` : t.reason,
    })),
    close() {
      for (const t of targets.values()) {
        for (const l of t.links) tracer.detach(l);
        t.links = [];
      }
    },
  };
}
