/**
 * What each feature of the agent costs on its own: the overhead step runs
 * premortem with everything on, and once per feature with that feature off
 * (condition `premortem-no-<feature>`); the feature's cost is the difference.
 *
 * The features are found, not listed by hand: every probe of this build
 * (bpf/<probe>.bpf.c) is one, switched off with `--disable <probe>/<program>`
 * for each of its programs, so a probe added by anyone is measured as soon as
 * it is merged. Features that are not a probe (e.g. Python stack sampling)
 * are one line in AGENT_OPTION_FEATURES with the `premortem run` arguments
 * that switch them off, or `--feature name='args'` on the bench's command line.
 */
import * as fs from 'fs';
import * as path from 'path';
import { projectRoot } from '../agent/native';

export interface Feature {
  name: string;
  /** `premortem run` arguments that switch it off. */
  offArgs: string[];
  how: string;
}

/** Probes that are not features (load generators of the benchmark itself). */
const NOT_FEATURES = new Set(['flood']);

/** Features switched by an agent option rather than by their BPF programs. */
export const AGENT_OPTION_FEATURES: Feature[] = [
  { name: 'stacks', offArgs: ['--stack-interval-ms', '0'], how: '--stack-interval-ms 0 (Python stack samples of each worker, agent/sampling/stacks.ts)' },
];

/** probe -> its programs, from the sources: SEC("...") int BPF_PROG(name, ...) / BPF_USDT / BPF_KPROBE... */
export function programsByProbe(bpfDir = path.join(projectRoot(), 'bpf')): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of fs.readdirSync(bpfDir).filter((x) => x.endsWith('.bpf.c')).sort()) {
    const probe = f.replace('.bpf.c', '');
    const src = fs.readFileSync(path.join(bpfDir, f), 'utf8');
    const progs = [...src.matchAll(/SEC\("[^"]+"\)\s*\n\s*int\s+(?:BPF_\w+\()?(\w+)/g)].map((m) => m[1]);
    if (progs.length) out.set(probe, progs);
  }
  return out;
}

/** Every feature this build has: one per probe, then the option-switched ones. */
export function discoverFeatures(extra: Feature[] = []): Feature[] {
  const out: Feature[] = [];
  for (const [probe, progs] of programsByProbe()) {
    if (NOT_FEATURES.has(probe)) continue;
    out.push({ name: probe, offArgs: progs.flatMap((p) => ['--disable', `${probe}/${p}`]), how: `--disable ${probe}/* (${progs.length} programs)` });
  }
  return [...out, ...AGENT_OPTION_FEATURES, ...extra];
}

/** `--feature name='args...'` from the bench command line. */
export function parseFeatureArg(spec: string): Feature {
  const m = /^([a-z0-9_-]+)=(.+)$/.exec(spec);
  if (!m) throw new TypeError(`--feature must be NAME='premortem run arguments that switch it off', got ${spec}`);
  return { name: m[1], offArgs: m[2].trim().split(/\s+/), how: m[2].trim() };
}

export const ABLATION_PREFIX = 'premortem-no-';
export const ablationOf = (f: Feature) => `${ABLATION_PREFIX}${f.name}`;
