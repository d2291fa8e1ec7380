/**
 * Which function of an interpreter without USDT probes marks one garbage
 * collection, per CPython version, and where its generation is. Pure: it
 * works on the symbols an ElfFile returned.
 *
 * The function is the one CPython's own gc__start/gc__done probes sit in:
 * every collection (automatic, gc.collect(), the no-fail one at shutdown) goes
 * through it once, its return value is what gc__done reports (collected +
 * uncollectable) and the generation is one of its arguments. Read from each
 * version's sources and checked against the DWARF of the pyenv builds:
 *
 * | version   | file               | function                                              | generation |
 * |-----------|--------------------|-------------------------------------------------------|------------|
 * | 3.8       | Modules/gcmodule.c | collect(int generation, ..., struct _gc_runtime_state*) | arg 0    |
 * | 3.9       | Modules/gcmodule.c | collect(PyThreadState*, int generation, ...)          | arg 1      |
 * | 3.10–3.12 | Modules/gcmodule.c | gc_collect_main(PyThreadState*, int generation, ...)  | arg 1      |
 * | 3.13      | Python/gc.c        | gc_collect_main(PyThreadState*, int generation, _PyGC_Reason) | arg 1 or auto |
 *
 * 3.13's automatic collections pass GENERATION_AUTO (-1) and the collector
 * chooses (gc_select_generation, inlined); any call may also return at once
 * when another thread collects. So for 3.13 the generation is the one whose
 * interp->gc.generation_stats[g].collections the call increments (read by the
 * BPF program at entry and return, at offsets from the file's _Py_DebugOffsets),
 * and a call that increments none collected nothing and is not counted.
 *
 * These are static functions: they are found in .symtab only (a build
 * stripped to .dynsym has none, and no uprobe method). The callers
 * (collect_with_callback, gc_collect_generations, _Py_RunGC...) are often
 * inlined, so they are not used. A compiler may also clone the function
 * (`collect.constprop.1` in pyenv's 3.8.18): the clones are attached too, since
 * callers call them instead, but a clone's arguments may have been dropped or
 * moved, so its generation is recorded as unknown. `.part.N` (partial
 * inlining) and `.cold` (a cold block, not an entry point) are never used.
 */
import { DebugOffsets, GC_GENERATION_STATS_SIZE, generationStatsOffset } from './debug-offsets';
import type { ElfSymbol } from './elf';
import type { GcGenerationSource } from '../probes/pygc';

export interface GcEntryRule {
  /** The collector's name in the symbol table. */
  name: string;
  /** Source file the local symbol comes from (STT_FILE), to tell it from other static functions of that name. */
  file: string;
  /** 0-based index of `int generation` among its arguments. */
  generationArg: number;
  /** The collector may be asked to choose the generation itself (3.13's GENERATION_AUTO). */
  autoGeneration?: boolean;
}

const RULES: Record<number, GcEntryRule> = {
  8: { name: 'collect', file: 'gcmodule.c', generationArg: 0 },
  9: { name: 'collect', file: 'gcmodule.c', generationArg: 1 },
  10: { name: 'gc_collect_main', file: 'gcmodule.c', generationArg: 1 },
  11: { name: 'gc_collect_main', file: 'gcmodule.c', generationArg: 1 },
  12: { name: 'gc_collect_main', file: 'gcmodule.c', generationArg: 1 },
  13: { name: 'gc_collect_main', file: 'gc.c', generationArg: 1, autoGeneration: true },
};

export const GC_ENTRY_MIN_MINOR = 8;
export const GC_ENTRY_MAX_MINOR = 13;

/** The rule for Python 3.`minor`, or null when premortem knows none. */
export function gcEntryRule(major: number, minor: number): GcEntryRule | null {
  return major === 3 ? RULES[minor] ?? null : null;
}

/** Every collector name of every version (what the symbol scan keeps), clones included. */
export function isGcEntryCandidate(name: string): boolean {
  return /^(collect|gc_collect_main)(\.(constprop|isra|lto_priv)\.\d+)*$/.test(name);
}

export interface GcEntryChoice {
  /** The symbols to attach to, with where each finds the generation. Empty when none. */
  entries: Array<{ symbol: ElfSymbol; generation: GcGenerationSource }>;
  /** What was chosen, or why nothing was: for features and doctor. */
  reason: string;
}

/**
 * Chooses the collector entry points among `symbols` (those that passed
 * isGcEntryCandidate) for CPython major.minor; `hasSymtab` says whether the
 * file has a .symtab at all (a stripped build has only .dynsym); `debug` are
 * the file's _Py_DebugOffsets (3.13+), for the generation of auto collections.
 */
export function chooseGcEntries(major: number, minor: number, symbols: ElfSymbol[], hasSymtab: boolean,
  debug: DebugOffsets | null = null): GcEntryChoice {
  const rule = gcEntryRule(major, minor);
  if (debug?.freeThreaded)
    return { entries: [], reason: 'a free-threaded build (3.13t): its collector (gc_free_threading.c) is not probed' };
  if (!rule)
    return { entries: [], reason: `no known GC entry point for Python ${major}.${minor} (uprobes cover 3.${GC_ENTRY_MIN_MINOR}–3.${GC_ENTRY_MAX_MINOR})` };
  const funcs = symbols.filter((s) => s.kind === 'func' && s.size > 0 && s.table === 'symtab');
  const ofName = (n: string) => n === rule.name || n.startsWith(rule.name + '.');
  let found = funcs.filter((s) => ofName(s.name));
  // Other static functions may share the name: keep those of the collector's source file when it is known.
  const fromFile = found.filter((s) => s.file === rule.file);
  if (fromFile.length) found = fromFile;
  // One symbol per address (a name can be listed twice).
  const byAddr = new Map<number, ElfSymbol>();
  for (const s of found) if (!byAddr.has(s.value)) byAddr.set(s.value, s);
  found = [...byAddr.values()].sort((a, b) => a.name.localeCompare(b.name));
  if (!found.length) {
    return {
      entries: [],
      reason: !hasSymtab
        ? `${rule.name} is a static function and this build has no .symtab (stripped): no uprobe target`
        : `${rule.name} is not in the symbol table (inlined into its callers?)`,
    };
  }
  if (found.filter((s) => s.name === rule.name).length > 1)
    return { entries: [], reason: `${found.length} functions named ${rule.name}: cannot tell the collector` };
  const viaStats = rule.autoGeneration && debug !== null;
  const exactSource: GcGenerationSource = viaStats
    ? { from: 'arg-or-stats', index: rule.generationArg, tstateInterp: debug.tstate.interp,
      statsStride: GC_GENERATION_STATS_SIZE, statsOffset: generationStatsOffset(debug) }
    : { from: 'arg', index: rule.generationArg };
  const entries = found.map((symbol) => ({
    symbol,
    generation: symbol.name === rule.name ? exactSource : { from: 'unknown' } as const,
  }));
  const clones = entries.filter((e) => e.generation.from === 'unknown').map((e) => e.symbol.name);
  const exact = entries.some((e) => e.generation.from !== 'unknown');
  let how = `generation from argument ${rule.generationArg + 1}`;
  if (viaStats) how = 'generation from the interp->gc.generation_stats counter it moves';
  else if (rule.autoGeneration) how += ' (automatic ones: unknown, no _Py_DebugOffsets)';
  const reason = [
    exact ? `${rule.name}() of ${rule.file}, ${how}` : '',
    clones.length ? `compiler clone${clones.length > 1 ? 's' : ''} ${clones.join(', ')} (generation unknown: a clone's arguments may have moved)` : '',
  ].filter(Boolean).join('; ');
  return { entries, reason };
}
