/**
 * `npm run bench`: premortem measured side by side with libbpf-tools on this
 * machine, in one run. Prints the tables, writes bench/results/bench-<time>.json
 * and .md, and (for a full run) docs/BENCHMARKS.md. Options: bench/options.ts
 * (`--help`). Everything started is stopped by pid; cgroups removed; sysctls
 * and mounts restored.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runIngest } from './ingest';
import { runLatency } from './latency';
import { cleanupAll, installSignalCleanup, log } from './lib';
import { runMemory } from './memory';
import { helpText, parseOptions, scan, Step } from './options';
import { runOverhead } from './overhead';
import { runProgCost } from './progcost';
import { runWhyCost } from './cost-why';
import { runProfile } from './profile';
import { BenchResults, evaluateTargets, markdown, SCHEMA } from './report';
import { runScaling } from './scaling';
import { appDir } from './services';
import { discoverFeatures, parseFeatureArg } from './features';

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
  for (const k of ['memory', 'scaling', 'ingest', 'latency', 'programCost', 'whyCost', 'profile'] as const) {
    const step = k === 'programCost' ? 'progcost' : k === 'whyCost' ? 'why' : k;
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
  const argv = process.argv.slice(2);
  const given = scan(argv); // an unknown option stops here, before anything starts
  if (given.has('help')) {
    process.stdout.write(helpText());
    return 0;
  }
  if (given.has('list-features')) {
    for (const f of discoverFeatures((given.get('feature') ?? []).map(parseFeatureArg))) process.stdout.write(`${f.name.padEnd(12)} off with: ${f.offArgs.join(' ')}\n`);
    return 0;
  }
  if (given.has('render')) return render(process.argv);
  const o = parseOptions(argv);
  if (process.getuid?.() !== 0) throw new Error('the benchmark loads BPF programs and creates cgroups: run it as root');
  installSignalCleanup();
  const startedAt = new Date().toISOString();
  const loadAvgAtStart = os.loadavg();
  log(`mode ${o.mode}: steps ${o.steps.join(', ')}; ${o.rounds} rounds x ${o.seconds} s; seed ${o.seed}`);
  const app = appDir();
  const res: Omit<BenchResults, 'targets' | 'finishedAt'> = {
    schema: SCHEMA, startedAt,
    machine: { cpus: os.cpus().length, kernel: os.release(), node: process.version, loadAvgAtStart },
    options: {
      mode: o.mode, rounds: o.rounds, seconds: o.seconds, warmupSeconds: o.warmupSeconds, seed: o.seed, workloads: o.workloads, conditions: ['none', ...o.tracers],
      features: o.features.map((f) => f.name), ablateOn: o.ablateOn, steps: o.steps,
    },
    overhead: null, memory: null, scaling: null, ingest: null, latency: null, programCost: null, whyCost: null, profile: null, errors: [],
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
    res.whyCost = await step('why', () => runWhyCost({ seconds: o.progSeconds, rounds: o.mode === 'full' ? 4 : 2 }));
    res.ingest = await step('ingest', () => runIngest({ seconds: o.ingestSeconds, rates: o.ingestRates }));
    res.latency = await step('latency', () => runLatency(app, { ...o.latency, seed: o.seed }));
    res.memory = await step('memory', () => runMemory(app, o.memory));
    res.scaling = await step('scaling', () => runScaling(app, o.scaling));
    res.profile = await step('profile', () => runProfile(app, o.profile));
    res.overhead = await step('overhead', () => runOverhead(app, {
      rounds: o.rounds, seconds: o.seconds, warmupSeconds: o.warmupSeconds, seed: o.seed, workloads: o.workloads, tracers: o.tracers,
      features: o.features, ablateOn: o.ablateOn, maxBaselineCv: 0.1,
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
  if (e instanceof TypeError) {
    process.stderr.write(`bench: ${e.message}\n`); // a usage error: nothing was started
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
  await cleanupAll();
  process.exitCode = 1;
});
