/**
 * Issue 15's kernel cost, before and after, in one run: the base build (the
 * commit this branch started from, bench/base-build.ts) and this build load
 * their probes side by side, each in its own process tracking the same
 * gunicorn + Flask service, and see the same load (wrk, a connection per
 * request: W1; then keep-alive: W2). The kernel's own accounting
 * (kernel.bpf_stats_enabled: run_time_ns / run_cnt per program, `bpftool prog
 * show -j`) gives ns per event of every program, summed per hook:
 *   sched_switch / sched_wakeup / sched_wakeup_new: runqlat (now with the time
 *     accounting) + disk's D-state programs, before vs after;
 *   sock_recv_length / sock_send_length: the requests probe (new hooks).
 * Then the agent itself (`premortem run`) under W1 with every feature on and
 * with --no-requests: its CPU (% of one core) and RSS.
 *
 *   node dist/bench/cost-why.js [--seconds S] [--rounds N] [--base REF]
 * Writes bench/results/cost-why-<time>.json. Root; the sysctl is restored.
 * Also a step of `npm run bench` (--only why), reported in its Markdown.
 */
import * as fs from 'fs';
import * as path from 'path';
import { startAgent } from './agentproc';
import { buildBase, mergeBase } from './base-build';
import { bpfObjectsOf, cleanupAll, cpuMeter, installSignalCleanup, killGroup, log, median, output, processTree, round, rssBytes, setSysctl, sleep, start, wrk } from './lib';
import { progStats } from './bpfstats';
import { appDir, gunicornFlask } from './services';

const ROOT = path.resolve(__dirname, '..', '..');
const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
const CHILD = path.join(__dirname, 'tracer-child.js');
/** Program name (bpftool cuts names at 15 characters) -> hook. */
const HOOKS: Record<string, string> = {
  sched_switch: 'sched_switch', dstate_switch: 'sched_switch', sched_wakeup: 'sched_wakeup', dstate_wakeup: 'sched_wakeup',
  sched_wakeup_ne: 'sched_wakeup_new', sock_recv_lengt: 'sock_recv_length', sock_send_lengt: 'sock_send_length',
  block_io_start: 'block_io_start', block_rq_issue: 'block_rq_issue', block_rq_complet: 'block_rq_complete', block_rq_comple: 'block_rq_complete',
};

function parse(argv: string[]) {
  const val = (f: string) => { const i = argv.indexOf(f); return i >= 0 ? argv[i + 1] : undefined; };
  return { seconds: Number(val('--seconds') ?? 8), rounds: Number(val('--rounds') ?? 3), base: val('--base') };
}

async function tracerProcess(addon: string, probes: string[], pids: number[]) {
  const c = start(process.execPath, [CHILD, JSON.stringify({ addon, probes, pids })], { stdio: ['pipe', 'pipe', 'pipe'] });
  await output(c).wait(/ready/, 30_000);
  return { pid: c.pid!, progs: bpfObjectsOf(c.pid!).progs, stop: () => killGroup(c, 'SIGTERM', 3000) };
}

type Side = 'before' | 'after';
interface Sample { side: Side; program: string; hook: string; events: number; ns: number }

/** One round: both tracers on, W1 then W2; per-program events and run time. */
async function round1(sides: Record<Side, Set<number>>, port: number, seconds: number): Promise<Sample[]> {
  const s0 = progStats();
  await wrk(port, seconds, { close: true });
  await wrk(port, seconds);
  const s1 = progStats();
  const out: Sample[] = [];
  for (const side of ['before', 'after'] as Side[])
    for (const id of sides[side]) {
      const a = s0.get(id), b = s1.get(id);
      if (!a || !b) continue;
      out.push({ side, program: b.name, hook: HOOKS[b.name] ?? b.name, events: b.runCnt - a.runCnt, ns: b.runTimeNs - a.runTimeNs });
    }
  return out;
}

function summarize(rounds: Sample[][]) {
  const keys = new Set(rounds.flat().map((s) => `${s.side}|${s.program}`));
  const programs = [...keys].map((k) => {
    const [side, program] = k.split('|') as [Side, string];
    const per = rounds.map((r) => r.find((s) => s.side === side && s.program === program)).filter((s): s is Sample => !!s);
    return { side, program, hook: per[0].hook, events: median(per.map((s) => s.events)), nsPerEvent: round(median(per.map((s) => (s.events ? s.ns / s.events : NaN))), 0) };
  }).sort((a, b) => a.hook.localeCompare(b.hook) || a.side.localeCompare(b.side) || a.program.localeCompare(b.program));
  const hooks = [...new Set(programs.map((p) => p.hook))].map((hook) => {
    const sum = (side: Side) => {
      const ps = programs.filter((p) => p.hook === hook && p.side === side && p.nsPerEvent !== null);
      return ps.length ? ps.reduce((n, p) => n + p.nsPerEvent!, 0) : null;
    };
    return { hook, beforeNsPerEvent: sum('before'), afterNsPerEvent: sum('after') };
  });
  return { programs, hooks };
}

/** The agent under W1: CPU and RSS with every feature on, and with --no-requests. */
async function agentCost(seconds: number, rounds: number) {
  const app = appDir();
  const svc = await gunicornFlask(app, { workers: 2 });
  const results: Record<string, { cpuPct: number[]; rssMiB: number[] }> = { all: { cpuPct: [], rssMiB: [] }, 'no-requests': { cpuPct: [], rssMiB: [] } };
  try {
    for (let r = 0; r < rounds; r++) {
      for (const mode of r % 2 ? ['no-requests', 'all'] : ['all', 'no-requests']) {
        const agent = await startAgent({ match: app.match, extra: mode === 'all' ? [] : ['--no-requests'] });
        await sleep(3000); // discovery, tracking, first ticks
        const meter = cpuMeter([agent.pid]);
        await wrk(svc.port, seconds, { close: true });
        results[mode].cpuPct.push(meter.pct());
        results[mode].rssMiB.push(processTree(agent.pid).reduce((n, p) => n + rssBytes(p), 0) / (1 << 20));
        await agent.stop();
      }
    }
  } finally {
    await svc.stop();
  }
  return Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { cpuPct: round(median(v.cpuPct), 2), rssMiB: round(median(v.rssMiB), 1), runs: v.cpuPct.length }]));
}

export interface WhyCostResult {
  baseRef: string;
  seconds: number;
  rounds: number;
  kernel: ReturnType<typeof summarize>;
  agent: Record<string, { cpuPct: number | null; rssMiB: number | null; runs: number }>;
}

/** The whole measurement (builds the base, runs the load, measures the agent); cleans up after itself. */
export async function runWhyCost(o: { seconds: number; rounds: number; base?: string }): Promise<WhyCostResult> {
  const baseRef = o.base ?? mergeBase();
  const baseAddon = await buildBase(baseRef);
  const app = appDir();
  const svc = await gunicornFlask(app, { workers: 2 });
  const restore = setSysctl(SYSCTL, '1');
  const pids = [svc.masterPid, ...svc.workers()];
  const thisAddon = path.join(ROOT, 'build', 'Release', 'premortem.node');
  const rounds: Sample[][] = [];
  try {
    for (let r = 0; r < o.rounds; r++) {
      // Programs on one hook run in attach order, the later ones on warmer caches: alternate it.
      const order: Side[] = r % 2 ? ['after', 'before'] : ['before', 'after'];
      const procs: Partial<Record<Side, Awaited<ReturnType<typeof tracerProcess>>>> = {};
      for (const side of order)
        procs[side] = await tracerProcess(side === 'before' ? baseAddon : thisAddon, side === 'before' ? ['runqlat', 'disk'] : ['runqlat', 'disk', 'requests'], pids);
      log(`kernel cost round ${r + 1}/${o.rounds} (${order.join(' attached first, then ')}): wrk ${o.seconds} s W1 (a connection per request), then ${o.seconds} s W2 (keep-alive)`);
      try {
        rounds.push(await round1({ before: procs.before!.progs, after: procs.after!.progs }, svc.port, o.seconds));
      } finally {
        for (const side of order) await procs[side]!.stop();
      }
    }
  } finally {
    restore();
    await svc.stop();
  }
  const kernel = summarize(rounds);
  log('agent CPU and RSS under W1: every feature on, and --no-requests');
  const agent = await agentCost(o.seconds, Math.max(2, o.rounds - 1));
  return { baseRef, seconds: o.seconds, rounds: o.rounds, kernel, agent };
}

export function whyCostMarkdown(r: WhyCostResult): string[] {
  const a = r.agent.all, n = r.agent['no-requests'];
  return [
    `Base ${r.baseRef.slice(0, 12)} (before issue 15) and this build attached side by side to the same gunicorn + Flask service under the same load `
      + `(wrk ${r.seconds} s with a connection per request, then ${r.seconds} s keep-alive; ${r.rounds} rounds, attach order alternated, medians). `
      + 'ns/event = Δrun_time_ns / Δrun_cnt (kernel.bpf_stats_enabled). sched_* sum runqlat (now with the time accounting) and the disk probe\'s D-state programs; '
      + 'sock_* are the requests probe\'s new hooks (every socket read/write on the host runs them; untracked tasks stop at the pid filter).',
    '', '| hook | before ns/event | after ns/event |', '|---|---|---|',
    ...r.kernel.hooks.map((h) => `| ${h.hook} | ${h.beforeNsPerEvent ?? '–'} | ${h.afterNsPerEvent ?? '–'} |`),
    '', '| side | program | hook | events | ns/event |', '|---|---|---|---|---|',
    ...r.kernel.programs.map((p) => `| ${p.side} | ${p.program} | ${p.hook} | ${p.events} | ${p.nsPerEvent ?? '–'} |`),
    '', `Agent under W1 (${r.seconds} s, all its processes, median of ${a?.runs ?? 0}): every feature on ${a?.cpuPct ?? '–'} % of a core, ${a?.rssMiB ?? '–'} MiB RSS; `
      + `--no-requests ${n?.cpuPct ?? '–'} %, ${n?.rssMiB ?? '–'} MiB.`, '',
  ];
}

async function main(): Promise<void> {
  installSignalCleanup();
  const o = parse(process.argv.slice(2));
  const r = await runWhyCost(o);
  const outDir = path.join(ROOT, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `cost-why-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
  process.stdout.write([...whyCostMarkdown(r), `written to ${file}`].join('\n') + '\n');
}

/** Run directly (node dist/bench/cost-why.js), not when npm run bench imports it. */
if (require.main === module) {
  main().then(() => cleanupAll(), async (e) => {
    process.stderr.write(`cost-why failed: ${(e as Error).stack ?? e}\n`);
    await cleanupAll();
    process.exit(1);
  });
}
