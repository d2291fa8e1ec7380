/**
 * `npm run bench`: premortem measured side by side with libbpf-tools on this
 * machine, in one run. Prints the tables, writes bench/results/bench-<time>.json
 * and .md, and (for a full run) docs/BENCHMARKS.md.
 *
 *   node dist/bench/run.js [--quick | --smoke] [--rounds N] [--seconds S] [--warmup S]
 *        [--only overhead,memory,ingest,latency,progcost] [--workloads W1,W2,W3]
 *        [--conditions premortem,runqlat,...] [--seed N] [--out DIR] [--docs | --no-docs]
 *   env: BENCH_ROUNDS, BENCH_SECONDS (flags win)
 *
 * Defaults: 6 rounds of 10 s per workload after a 5 s warm-up (about 45 minutes in all).
 * --quick: 2 rounds of 3 s, shorter memory fill (100 buckets), fewer latency samples.
 * --smoke: 1 round of 1 s of W1 with none and premortem, and a brief ingest run.
 * Everything started is stopped by pid; cgroups removed; sysctls and mounts restored.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runIngest } from './ingest';
import { runLatency } from './latency';
import { cleanupAll, installSignalCleanup, log } from './lib';
import { runMemory } from './memory';
import { runOverhead, WorkloadName } from './overhead';
import { runProgCost } from './progcost';
import { PROFILE_SCENARIOS, runProfile } from './profile';
import { BenchResults, evaluateTargets, markdown, SCHEMA } from './report';
import { appDir } from './services';
import { Condition, TRACERS } from './conditions';

const STEPS = ['overhead', 'memory', 'ingest', 'latency', 'progcost', 'profile'] as const;
type Step = (typeof STEPS)[number];

function parse(argv: string[]) {
  const has = (f: string) => argv.includes(f);
  const val = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const num = (f: string, env: string | undefined, def: number) => {
    const v = val(f) ?? (env ? process.env[env] : undefined);
    if (v === undefined) return def;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new TypeError(`${f} must be a non-negative number, got ${v}`);
    return n;
  };
  const smoke = has('--smoke');
  const quick = has('--quick');
  const list = (f: string) => val(f)?.split(',').map((s) => s.trim()).filter(Boolean);
  const steps = (list('--only') ?? (smoke ? ['overhead', 'ingest'] : [...STEPS])) as Step[];
  for (const s of steps) if (!STEPS.includes(s)) throw new TypeError(`unknown step ${s}: one of ${STEPS.join(', ')}`);
  const workloads = (list('--workloads') ?? (smoke ? ['W1'] : ['W1', 'W2', 'W3'])) as WorkloadName[];
  const tracers = (list('--conditions') ?? (smoke ? ['premortem'] : [...TRACERS])) as Condition[];
  for (const c of tracers) if (!TRACERS.includes(c)) throw new TypeError(`unknown condition ${c}: one of ${TRACERS.join(', ')}`);
  return {
    mode: smoke ? 'smoke' : quick ? 'quick' : 'full',
    steps, workloads, tracers,
    rounds: num('--rounds', 'BENCH_ROUNDS', smoke ? 1 : quick ? 2 : 6),
    seconds: num('--seconds', 'BENCH_SECONDS', smoke ? 1 : quick ? 3 : 10),
    warmupSeconds: num('--warmup', undefined, smoke ? 0 : quick ? 2 : 5),
    seed: num('--seed', undefined, Date.now() % 100000),
    memory: quick ? { counts: [0, 16, 256], intervalMs: 100, windowS: 10 } : { counts: [0, 16, 256], intervalMs: 100, windowS: 60 },
    ingestSeconds: smoke ? 1 : quick ? 2 : 4,
    // Smoke: 1 s at 400 k/s fits in the 16 MiB ring (524 k records), so it is lossless on any machine.
    ingestRates: smoke ? [400_000] : undefined,
    latency: smoke || quick ? { signals: 15, deaths: 3 } : { signals: 50, deaths: 10 },
    progSeconds: quick || smoke ? 3 : 8,
    profileSeconds: quick || smoke ? 10 : 30,
    out: val('--out') ?? path.resolve(__dirname, '..', '..', 'bench', 'results'),
    docs: has('--docs') || (!smoke && !quick && !has('--no-docs') && !list('--only')),
  };
}

/** --render FILE.json: re-renders the Markdown (and docs/BENCHMARKS.md with --docs) of an earlier run. */
function render(argv: string[]): number {
  const file = argv[argv.indexOf('--render') + 1];
  const r = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults;
  if (r.schema !== SCHEMA) throw new Error(`${file}: schema ${r.schema}, expected ${SCHEMA}`);
  r.targets = evaluateTargets(r);
  const md = markdown(r);
  fs.writeFileSync(file.replace(/\.json$/, '.md'), md + '\n');
  if (argv.includes('--docs')) fs.writeFileSync(path.resolve(__dirname, '..', '..', 'docs', 'BENCHMARKS.md'), md + '\n');
  process.stdout.write(md + '\n');
  return 0;
}

/**
 * --merge-into FULL.json: this run's steps (and overhead workloads) replace those of an earlier
 * run, e.g. one workload re-run after a fix; the merged document says which parts came from where.
 */
function merge(base: BenchResults, part: BenchResults): BenchResults {
  const out: BenchResults = { ...base, errors: [...base.errors] };
  const steps = (part.options.steps as string[]) ?? [];
  const replaced: string[] = [];
  if (steps.includes('overhead') && part.overhead) {
    const names = new Set(part.overhead.map((w) => w.name));
    out.overhead = [...(base.overhead ?? []).filter((w) => !names.has(w.name)), ...part.overhead].sort((a, b) => a.name.localeCompare(b.name));
    replaced.push(...[...names].map((n) => `overhead ${n}`));
  }
  for (const k of ['memory', 'ingest', 'latency', 'programCost'] as const) {
    const step = k === 'programCost' ? 'progcost' : k;
    if (steps.includes(step) && part[k]) {
      (out as unknown as Record<string, unknown>)[k] = part[k];
      replaced.push(step);
    }
  }
  out.errors.push(...part.errors);
  const merged = ((base.options.merged as unknown[]) ?? []).concat([{ startedAt: part.startedAt, finishedAt: part.finishedAt, replaced, options: part.options }]);
  out.options = { ...base.options, merged };
  out.finishedAt = part.finishedAt;
  return out;
}

async function main(): Promise<number> {
  if (process.argv.includes('--render')) return render(process.argv);
  const o = parse(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the benchmark loads BPF programs and creates cgroups: run it as root');
  installSignalCleanup();
  const startedAt = new Date().toISOString();
  const loadAvgAtStart = os.loadavg();
  log(`mode ${o.mode}: steps ${o.steps.join(', ')}; ${o.rounds} rounds x ${o.seconds} s; seed ${o.seed}`);
  const app = appDir();
  const res: Omit<BenchResults, 'targets' | 'finishedAt'> = {
    schema: SCHEMA, startedAt,
    machine: { cpus: os.cpus().length, kernel: os.release(), node: process.version, loadAvgAtStart },
    options: { mode: o.mode, rounds: o.rounds, seconds: o.seconds, warmupSeconds: o.warmupSeconds, seed: o.seed, workloads: o.workloads, conditions: ['none', ...o.tracers], steps: o.steps },
    overhead: null, memory: null, ingest: null, latency: null, programCost: null, profile: null, errors: [],
  };
  const step = async <T>(name: Step, fn: () => Promise<T>): Promise<T | null> => {
    if (!o.steps.includes(name)) return null;
    const t0 = Date.now();
    try {
      const r = await fn();
      log(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      return r;
    } catch (e) {
      log(`${name} FAILED: ${(e as Error).stack}`);
      res.errors.push({ step: name, error: (e as Error).message });
      return null;
    }
  };
  try {
    // The most robust figures first, while nothing of ours is running.
    res.programCost = await step('progcost', () => runProgCost(app, { seconds: o.progSeconds }));
    res.ingest = await step('ingest', () => runIngest({ seconds: o.ingestSeconds, rates: o.ingestRates }));
    res.latency = await step('latency', () => runLatency(app, { ...o.latency, seed: o.seed }));
    res.memory = await step('memory', () => runMemory(app, o.memory));
    res.profile = await step('profile', () => runProfile(app, { seconds: o.profileSeconds, scenarios: [...PROFILE_SCENARIOS] }));
    res.overhead = await step('overhead', () => runOverhead(app, {
      rounds: o.rounds, seconds: o.seconds, warmupSeconds: o.warmupSeconds, seed: o.seed, workloads: o.workloads, tracers: o.tracers, maxBaselineCv: 0.1,
    }));
  } finally {
    await cleanupAll();
  }
  let full: BenchResults = { ...res, finishedAt: new Date().toISOString(), targets: [] };
  const into = process.argv.includes('--merge-into') ? process.argv[process.argv.indexOf('--merge-into') + 1] : undefined;
  if (into) full = merge(JSON.parse(fs.readFileSync(into, 'utf8')) as BenchResults, full);
  full.targets = evaluateTargets(full);
  const md = markdown(full);
  fs.mkdirSync(o.out, { recursive: true });
  const stamp = startedAt.replace(/[:.]/g, '-');
  const jsonPath = path.join(o.out, `bench-${o.mode}-${stamp}.json`);
  const mdPath = path.join(o.out, `bench-${o.mode}-${stamp}.md`);
  fs.writeFileSync(jsonPath, JSON.stringify(full, null, 2) + '\n');
  fs.writeFileSync(mdPath, md + '\n');
  fs.writeFileSync(path.join(o.out, `latest-${o.mode}.json`), JSON.stringify(full, null, 2) + '\n');
  if (o.docs || (into && process.argv.includes('--docs'))) fs.writeFileSync(path.resolve(__dirname, '..', '..', 'docs', 'BENCHMARKS.md'), md + '\n');
  process.stdout.write('\n' + md + '\n');
  process.stdout.write(`\nresults: ${jsonPath}\n          ${mdPath}${o.docs ? '\n          docs/BENCHMARKS.md' : ''}\n`);
  return res.errors.length ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, async (e) => {
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  await cleanupAll();
  process.exitCode = 1;
});
