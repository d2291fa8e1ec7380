/**
 * The benchmark's command line: one table of options (with their help), a
 * strict parser (an unknown option is an error, not a full run), `--help`.
 */
import * as path from 'path';
import { TRACERS, type Condition } from './conditions';
import { discoverFeatures, Feature, parseFeatureArg } from './features';
import type { WorkloadName } from './overhead';
import { PROFILE_SCENARIOS, type ProfileScenario } from './profile';

export const STEPS = ['overhead', 'memory', 'scaling', 'ingest', 'latency', 'progcost', 'why', 'profile'] as const;
export type Step = (typeof STEPS)[number];
const WORKLOADS: WorkloadName[] = ['W1', 'W2', 'W3'];

interface OptSpec { name: string; arg?: string; help: string; repeat?: boolean }

export const OPTIONS: OptSpec[] = [
  { name: 'help', help: 'print this help and exit' },
  { name: 'quick', help: 'iterate: 2 rounds of 3 s, short memory fill, 10 s profiles, fewer latency samples' },
  { name: 'smoke', help: 'check the harness: 1 round of 1 s of W1 (none, premortem) and a brief ingest run' },
  { name: 'only', arg: 'STEPS', help: `comma-separated steps: ${STEPS.join(', ')} (default: all)` },
  { name: 'workloads', arg: 'LIST', help: 'overhead workloads: W1 (connection churn), W2 (keep-alive), W3 (lifecycle) (default: all)' },
  { name: 'conditions', arg: 'LIST', help: `tracer conditions besides none: ${TRACERS.join(', ')} (default: all)` },
  { name: 'features', arg: 'LIST', help: 'features measured on their own (premortem-no-<feature>): all (default of a full run), none (default of --quick), or names; see --list-features' },
  { name: 'feature', arg: 'NAME=ARGS', repeat: true, help: "one more feature: NAME='premortem run arguments that switch it off' (repeatable)" },
  { name: 'ablate-on', arg: 'LIST', help: 'workloads the per-feature runs use (default: W1,W2)' },
  { name: 'list-features', help: 'print the features this build has (and how each is switched off) and exit' },
  { name: 'rounds', arg: 'N', help: 'rounds per workload (default 6; env BENCH_ROUNDS)' },
  { name: 'seconds', arg: 'S', help: 'seconds per measured run (default 10; env BENCH_SECONDS)' },
  { name: 'warmup', arg: 'S', help: 'wrk warm-up per workload (default 5)' },
  { name: 'scaling-workers', arg: 'LIST', help: 'idle workers the scaling step watches, e.g. 0,16,256 (default 0,16,256,1024; 0 is added: the per-worker cost needs it)' },
  { name: 'scaling-seconds', arg: 'S', help: 'seconds the scaling step measures at each count (default 60; 15 with --quick)' },
  { name: 'memory-workers', arg: 'LIST', help: 'idle workers the memory step tracks, e.g. 256 (default 0,16,256)' },
  { name: 'seed', arg: 'N', help: 'seed of the run order (default: from the clock; printed)' },
  { name: 'out', arg: 'DIR', help: 'where the JSON and Markdown go (default bench/results)' },
  { name: 'docs', help: 'also write docs/BENCHMARKS.md (default for a full run of every step)' },
  { name: 'no-docs', help: 'never write docs/BENCHMARKS.md' },
  { name: 'render', arg: 'FILE.json', help: 'only re-render the Markdown of an earlier run (with --docs: docs/BENCHMARKS.md too)' },
  { name: 'merge-into', arg: 'FILE.json', help: 'this run\'s steps replace those of an earlier run (e.g. one workload re-run)' },
];

export function helpText(): string {
  const rows = OPTIONS.map((o) => [`--${o.name}${o.arg ? ` ${o.arg}` : ''}`, o.help + (o.repeat ? '' : '')]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return ['usage: npm run bench -- [options]   (node dist/bench/run.js [options], as root)', '',
    'premortem measured side by side with no tracer and with libbpf-tools, in one run: overhead on real',
    'Python services (paired with no-tracer runs), per-feature cost, agent CPU and memory, ingest, latency,',
    'kernel cost per event, and a CPU/heap profile of the agent. Prints the targets, writes bench/results/.', '',
    'options:', ...rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`), '',
    'A full run (no --quick, every step) takes about 1 h 45 min; the machine should be otherwise quiet:',
    'when the no-tracer runs vary by more than 10 % the paired figures are reported as inconclusive.', ''].join('\n');
}

export interface BenchOptions {
  mode: 'full' | 'quick' | 'smoke';
  steps: Step[];
  workloads: WorkloadName[];
  tracers: Condition[];
  features: Feature[];
  ablateOn: WorkloadName[];
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  seed: number;
  memory: { counts: number[]; intervalMs: number; windowS: number };
  scaling: { counts: number[]; seconds: number; settleSeconds: number };
  profile: { seconds: number; scenarios: ProfileScenario[] };
  ingestSeconds: number;
  ingestRates?: number[];
  latency: { signals: number; deaths: number };
  progSeconds: number;
  out: string;
  docs: boolean;
}

/** Raw values by option name (repeatable ones collect every value). */
export function scan(argv: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    const spec = m && OPTIONS.find((o) => o.name === m[1]);
    if (!spec) throw new TypeError(`unknown argument ${argv[i]}: see --help`);
    let value = m![2];
    if (spec.arg && value === undefined) {
      value = argv[++i];
      if (value === undefined) throw new TypeError(`--${spec.name} needs ${spec.arg}`);
    } else if (!spec.arg && value !== undefined) throw new TypeError(`--${spec.name} takes no value`);
    const list = out.get(spec.name) ?? [];
    if (list.length && !spec.repeat) throw new TypeError(`--${spec.name} given twice`);
    out.set(spec.name, [...list, value ?? '']);
  }
  return out;
}

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const a = scan(argv);
  const has = (n: string) => a.has(n);
  const val = (n: string) => a.get(n)?.[0];
  const list = (n: string) => val(n)?.split(',').map((s) => s.trim()).filter(Boolean);
  const num = (n: string, envName: string | undefined, def: number) => {
    const v = val(n) ?? (envName ? env[envName] : undefined);
    if (v === undefined) return def;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new TypeError(`--${n} must be a non-negative number, got ${v}`);
    return x;
  };
  const counts = (n: string, def: number[], withZero = false) => {
    const v = list(n)?.map((x) => {
      const k = Number(x);
      if (!Number.isInteger(k) || k < 0) throw new TypeError(`--${n}: ${x} is not a number of workers`);
      return k;
    });
    if (!v) return def;
    return [...new Set(withZero ? [0, ...v] : v)].sort((a, b) => a - b);
  };
  const oneOf = <T extends string>(n: string, xs: readonly T[], def: T[]) => {
    const v = (list(n) ?? def) as T[];
    for (const x of v) if (!xs.includes(x)) throw new TypeError(`--${n}: unknown ${x}; one of ${xs.join(', ')}`);
    return v;
  };
  if (has('smoke') && has('quick')) throw new TypeError('--smoke and --quick exclude each other');
  const smoke = has('smoke'), quick = has('quick');
  const extra = (a.get('feature') ?? []).map(parseFeatureArg);
  const all = discoverFeatures(extra);
  const wanted = list('features') ?? (smoke || quick ? ['none'] : ['all']);
  const features = wanted.includes('all') ? all : wanted.includes('none') ? [] : wanted.map((n) => {
    const f = all.find((x) => x.name === n);
    if (!f) throw new TypeError(`--features: unknown feature ${n}; this build has ${all.map((x) => x.name).join(', ')}`);
    return f;
  });
  return {
    mode: smoke ? 'smoke' : quick ? 'quick' : 'full',
    steps: oneOf('only', STEPS, smoke ? ['overhead', 'ingest'] : [...STEPS]),
    workloads: oneOf('workloads', WORKLOADS, smoke ? ['W1'] : WORKLOADS),
    tracers: oneOf('conditions', TRACERS, smoke ? ['premortem'] : [...TRACERS]),
    features,
    ablateOn: oneOf('ablate-on', WORKLOADS, ['W1', 'W2']),
    rounds: num('rounds', 'BENCH_ROUNDS', smoke ? 1 : quick ? 2 : 6),
    seconds: num('seconds', 'BENCH_SECONDS', smoke ? 1 : quick ? 3 : 10),
    warmupSeconds: num('warmup', undefined, smoke ? 0 : quick ? 2 : 5),
    seed: num('seed', undefined, Date.now() % 100000),
    memory: { counts: counts('memory-workers', [0, 16, 256]), intervalMs: 100, windowS: quick ? 10 : 60 },
    scaling: { counts: counts('scaling-workers', [0, 16, 256, 1024], true), seconds: num('scaling-seconds', undefined, quick ? 15 : 60), settleSeconds: quick ? 3 : 10 },
    profile: { seconds: quick || smoke ? 10 : 30, scenarios: [...PROFILE_SCENARIOS] },
    ingestSeconds: smoke ? 1 : quick ? 2 : 4,
    // Smoke: 1 s at 400 k/s fits in the 16 MiB ring (524 k records), so it is lossless on any machine.
    ingestRates: smoke ? [400_000] : undefined,
    latency: smoke || quick ? { signals: 15, deaths: 3 } : { signals: 50, deaths: 10 },
    progSeconds: quick || smoke ? 3 : 8,
    out: val('out') ?? path.resolve(__dirname, '..', '..', 'bench', 'results'),
    docs: has('docs') || (!smoke && !quick && !has('no-docs') && !has('only')),
  };
}
