/**
 * Reading what `node --cpu-prof` and `--heapsnapshot-signal` wrote: the
 * functions that took the most CPU (self and inclusive time) and the heap's
 * largest kinds of objects. Pure functions over the files' JSON, so the
 * summaries are unit-tested on small hand-made profiles.
 */
import * as path from 'path';

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionCost {
  fn: string;
  /** ms of CPU per second of wall time (1000 = one core). */
  msPerS: number;
  /** Share of the busy (non-idle) samples, 0..1. */
  share: number;
}

export interface CpuSummary {
  wallS: number;
  /** Busy time (everything but "(idle)") in % of one core. */
  busyPct: number;
  topSelf: FunctionCost[];
  topInclusive: FunctionCost[];
}

const IDLE = '(idle)';
const ROOTS = new Set(['(root)', '(program)', IDLE, '(garbage collector)']);

/** "name file:line" of a call frame; built-ins keep their own name. */
export function frameKey(cf: CpuProfile['nodes'][number]['callFrame']): string {
  if (!cf.url) return cf.functionName || '(anonymous)';
  const file = cf.url.startsWith('node:') ? cf.url : path.basename(cf.url.replace(/^file:\/\//, ''));
  return `${cf.functionName || '(anonymous)'} ${file}:${cf.lineNumber + 1}`;
}

/**
 * Self time per function (time of the samples whose top frame it is) and inclusive time (samples
 * with the function anywhere on the stack, counted once per sample), the `top` largest of each.
 */
export function summarizeCpuProfile(p: CpuProfile, top = 12, window?: { fromUs: number; toUs: number }): CpuSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<string, number>(), incl = new Map<string, number>();
  let busyUs = 0;
  const from = Math.max(p.startTime, window?.fromUs ?? -Infinity), to = Math.min(p.endTime, window?.toUs ?? Infinity);
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    // A sample's weight is the time until the next one (the last: the mean delta).
    const us = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : (p.endTime - p.startTime) / Math.max(1, p.samples.length);
    const leaf = byId.get(p.samples[i]);
    if (!leaf) continue;
    const key = frameKey(leaf.callFrame);
    if (key === IDLE) continue;
    busyUs += us;
    self.set(key, (self.get(key) ?? 0) + us);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const k = frameKey(byId.get(id)!.callFrame);
      if (ROOTS.has(k) || seen.has(k)) continue;
      seen.add(k);
      incl.set(k, (incl.get(k) ?? 0) + us);
    }
  }
  const wallS = Math.max(0, to - from) / 1e6;
  const rank = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([fn, us]) => ({ fn, msPerS: us / 1000 / Math.max(wallS, 1e-9), share: busyUs ? us / busyUs : 0 }));
  return { wallS, busyPct: wallS ? (busyUs / 1e6 / wallS) * 100 : 0, topSelf: rank(self), topInclusive: rank(incl) };
}

export interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

export interface HeapKind {
  kind: string;
  count: number;
  bytes: number;
}

/**
 * Self sizes summed by kind: objects by constructor name, the rest by node type ("(string)",
 * "(code)", "(array)", "(native) name" for memory outside the JS heap that V8 knows of, such as
 * ArrayBuffer backing stores).
 */
export function summarizeHeapSnapshot(h: HeapSnapshot, top = 12): { totalBytes: number; kinds: HeapKind[] } {
  const fields = h.snapshot.meta.node_fields;
  const types = h.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf('type'), iName = fields.indexOf('name'), iSize = fields.indexOf('self_size');
  const agg = new Map<string, HeapKind>();
  let total = 0;
  for (let i = 0; i < h.nodes.length; i += width) {
    const type = types[h.nodes[i + iType]];
    const size = h.nodes[i + iSize];
    const name = h.strings[h.nodes[i + iName]];
    const kind = type === 'object' || type === 'closure' ? name
      : type === 'native' ? `(native) ${name.slice(0, 60)}` : `(${type})`;
    const k = agg.get(kind) ?? { kind, count: 0, bytes: 0 };
    k.count++;
    k.bytes += size;
    total += size;
    agg.set(kind, k);
  }
  return { totalBytes: total, kinds: [...agg.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top) };
}
