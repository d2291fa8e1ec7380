/**
 * The targets the benchmark judges (issue 16's footprint targets and the
 * earlier ones it keeps), each met, missed, inconclusive or not run, with the
 * figure that decided it. Pure functions of the results document.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { BenchResults, Target } from './report';
import { lifecycleExact } from './overhead';

const MIN_EVENTS = 1000;
/** Run-to-run spread allowed when per-event kernel costs are compared with the reference run. */
export const KERNEL_COST_TOLERANCE = 0.1;

/**
 * ns per event of every premortem program on each hook, from the full run of 2026-11-26 (docs/BENCHMARKS.md
 * before issue 16): no hook may cost more than this (plus the tolerance). A new probe's hook has no reference.
 */
export const REFERENCE_NS_PER_EVENT: Record<string, number> = {
  sched_switch: 508, sched_wakeup: 300, sched_wakeup_new: 1366,
  block_io_start: 491, block_rq_issue: 138, block_rq_complete: 473,
  sched_process_exec: 314, sched_process_exit: 2602, sched_process_fork: 1931, signal_generate: 680,
  page_fault_user: 280, page_fault_kernel: 229, rss_stat: 194,
  'usdt python:gc__start': 1397, 'usdt python:gc__done': 1443,
  inet_sock_set_state: 261, tcp_receive_reset: 372, tcp_send_reset: 188,
};

/** The soak's curve and verdict (test/soak/footprint.test.ts writes it next to its picture). */
/** The soak's length the target names. */
const SOAK_MINUTES = 30;

export const SOAK_RESULT = path.resolve(__dirname, '..', '..', 'docs', 'soak-footprint.json');

export interface SoakSummary {
  finishedAt: string;
  minutes: number;
  rssAt5MiB: number;
  rssMaxAfterWarmupMiB: number;
  withinPct: number;
  fdsStart: number;
  fdsEnd: number;
  mapEntriesStart: number;
  mapEntriesEnd: number;
  ok: boolean;
}

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

function overheadTargets(r: Omit<BenchResults, 'targets'>, t: Target[]): void {
  const wl = (n: string) => r.overhead?.find((w) => w.name === n);
  const cond = (n: string, c = 'premortem') => wl(n)?.conditions.find((x) => x.condition === c);
  for (const n of ['W1', 'W2']) {
    const w = wl(n), c = cond(n);
    const st = (ok: boolean): Target['status'] => (!c || c.rpsRatio === null ? 'not run' : w!.inconclusive ? 'inconclusive' : ok ? 'met' : 'missed');
    t.push({ id: `${n}-rps`, what: `${n} requests/s ratio, premortem (every feature, one viewer) vs none`, target: '≥ 0.99', measured: f(c?.rpsRatio, 3),
      status: st((c?.rpsRatio ?? 0) >= 0.99), note: w?.inconclusiveReason });
    t.push({ id: `${n}-p99`, what: `${n} p99 latency ratio, premortem vs none`, target: '≤ 1.05', measured: f(c?.p99Ratio, 3),
      status: st((c?.p99Ratio ?? Infinity) <= 1.05), note: w?.inconclusiveReason });
    const costs = w?.featureCosts ?? [];
    t.push({ id: `${n}-features`, what: `${n} each feature's added cost (req/s ratio without it − with it; agent CPU with − without)`, target: 'reported',
      measured: costs.length ? costs.map((x) => `${x.feature} ${f(x.rpsCost, 3)} / ${f(x.cpuCostPct, 2)} %`).join(', ') : '–',
      status: !costs.length ? 'not run' : w!.inconclusive ? 'inconclusive' : 'met', note: costs.length ? w?.inconclusiveReason : undefined });
  }
  const c1 = cond('W1');
  t.push({ id: 'W1-cpu', what: 'agent CPU under W1, tracer + server process, one viewer', target: '≤ 1 % of one core', measured: c1 ? `${f(c1.tracerCpuPct, 2)} %` : '–',
    status: !c1 || c1.tracerCpuPct === null ? 'not run' : c1.tracerCpuPct <= 1 ? 'met' : 'missed' });
  const w3 = wl('W3');
  if (w3) {
    const runs = w3.runs.filter((x) => x.lifecycle && x.condition.startsWith('premortem'));
    const exact = runs.filter((x) => lifecycleExact(x.lifecycle!)).length;
    t.push({ id: 'W3-exact', what: 'W3 exits and OOM kills judged by the agent = independent count', target: 'exact in every premortem run',
      measured: `${exact}/${runs.length} runs exact`, status: !runs.length ? 'not run' : exact === runs.length ? 'met' : 'missed' });
  }
}

const windowRange = (w: number[] | undefined) => (w?.length ? `${f(Math.min(...w), 3)}–${f(Math.max(...w), 3)}` : '–');

/**
 * Met when the whole measurement and every window meet the goal, missed when every window misses it;
 * inconclusive when the windows disagree (other work on the machine moves the agent's CPU too).
 * Results older than the windows are judged on the whole figure.
 */
export function judgeWindows(p: { cpuPct: number; windowsPct?: number[] } | undefined, goal: number): Pick<Target, 'status' | 'note'> {
  if (!p) return { status: 'not run' };
  const w = p.windowsPct ?? [];
  if (!w.length) return { status: p.cpuPct <= goal ? 'met' : 'missed' };
  const over = w.filter((x) => x > goal).length;
  if (over === 0 && p.cpuPct <= goal) return { status: 'met' };
  if (over === w.length) return { status: 'missed' };
  return { status: 'inconclusive', note: `${over} of ${w.length} windows above ${goal} %: the figure moves with the machine's other load` };
}

function footprintTargets(r: Omit<BenchResults, 'targets'>, t: Target[]): void {
  const pt = (n: number) => r.scaling?.points.find((p) => p.workers === n);
  const idle = (id: string, n: number, goal: number) => {
    const p = pt(n);
    t.push({ id, what: `agent CPU, tracer + server process, ${n} idle workers tracked (1 s ticks, no viewer)`, target: `≤ ${goal} % of one core`,
      measured: p ? `${f(p.cpuPct, 3)} % (tracer ${f(p.tracerPct, 3)}, server ${f(p.serverPct, 3)}; windows ${windowRange(p.windowsPct)}; host busy ${f(p.hostBusyPct, 0)} %)` : '–',
      ...judgeWindows(p, goal) });
  };
  idle('cpu-idle-0', 0, 0.2);
  idle('cpu-idle-256', 256, 1);
  const per = r.scaling?.points.filter((p) => p.usPerWorkerTick !== null) ?? [];
  t.push({ id: 'cpu-per-worker', what: 'sampling cost per worker per tick (CPU above 0 workers / workers)', target: 'reported, 16 → 256 → 1,024',
    measured: per.length ? per.map((p) => `${p.workers}: ${f(p.usPerWorkerTick, 1)} µs`).join(', ') : '–', status: per.length ? 'met' : 'not run' });
  const mem = (id: string, n: number, goal: number) => {
    const m = r.memory?.find((x) => x.workers === n);
    t.push({ id, what: `agent memory, tracer + server process (pages once), ${n} idle workers${n ? ', windows full' : ''}`, target: `≤ ${goal} MiB`,
      measured: m ? `${f(m.togetherMiB, 1)} MiB (RSS ${f(m.rssMiB, 1)} + ${f(m.serverRssMiB, 1)}; BPF maps ${f(m.bpfMapMiB, 1)} MiB beside)` : '–',
      status: !m || m.togetherMiB === undefined ? 'not run' : m.togetherMiB <= goal ? 'met' : 'missed' });
  };
  mem('memory-256', 256, 100);
  mem('memory-idle', 0, 60);
}

function kernelTarget(r: Omit<BenchResults, 'targets'>, t: Target[]): void {
  const p = r.programCost;
  if (!p) {
    t.push({ id: 'kernel-cost', what: 'premortem ns per event, per hook, vs the reference run', target: 'no hook above it', measured: '–', status: 'not run' });
    return;
  }
  const hooks = new Map<string, { ns: number; events: number }>();
  for (const x of p.programs.filter((y) => y.owner.startsWith('premortem') && y.nsPerEvent !== null)) {
    const h = hooks.get(x.hook) ?? { ns: 0, events: 0 };
    h.ns += x.nsPerEvent!;
    h.events = Math.max(h.events, x.events);
    hooks.set(x.hook, h);
  }
  const judged = [...hooks].filter(([hook, h]) => h.events >= MIN_EVENTS && REFERENCE_NS_PER_EVENT[hook] !== undefined);
  const over = judged.filter(([hook, h]) => h.ns > REFERENCE_NS_PER_EVENT[hook] * (1 + KERNEL_COST_TOLERANCE));
  t.push({ id: 'kernel-cost', what: `premortem ns per event, per hook (all its programs), vs the reference run (judged where ≥ ${MIN_EVENTS} events)`,
    target: `no hook above the reference (+${KERNEL_COST_TOLERANCE * 100} % run-to-run)`,
    measured: judged.map(([hook, h]) => `${hook} ${h.ns} (ref ${REFERENCE_NS_PER_EVENT[hook]})`).join(', ') || '–',
    status: !judged.length ? 'not run' : over.length ? 'missed' : 'met', note: over.length ? `above: ${over.map(([h]) => h).join(', ')}` : undefined });
}

function soakTarget(t: Target[], soakFile: string): void {
  let s: SoakSummary | undefined;
  try {
    s = JSON.parse(fs.readFileSync(soakFile, 'utf8')) as SoakSummary;
  } catch { /* never run */ }
  t.push({ id: 'soak', what: 'flat over time: 30-min soak with worker churn, deaths, viewers (npm run soak; docs/soak-footprint.svg)',
    target: 'RSS after warm-up within 10 % of minute 5; fds and map entries back to baseline',
    measured: s ? `${s.minutes} min on ${s.finishedAt.slice(0, 10)}: RSS ${f(s.rssAt5MiB, 1)} MiB at minute 5, max ${f(s.rssMaxAfterWarmupMiB, 1)} (${f(s.withinPct, 1)} %); fds ${s.fdsStart} → ${s.fdsEnd}; map entries ${s.mapEntriesStart} → ${s.mapEntriesEnd}` : '–',
    // A shorter run checks the harness; only the 30 minutes the target names can meet it.
    status: !s ? 'not run' : !s.ok ? 'missed' : s.minutes >= SOAK_MINUTES ? 'met' : 'inconclusive',
    note: s ? `from the last soak, not this run${s.ok && s.minutes < SOAK_MINUTES ? `; ${s.minutes} min, not ${SOAK_MINUTES}` : ''}` : undefined });
}

export function evaluateTargets(r: Omit<BenchResults, 'targets'>, soakFile = SOAK_RESULT): Target[] {
  const t: Target[] = [];
  overheadTargets(r, t);
  footprintTargets(r, t);
  kernelTarget(r, t);
  soakTarget(t, soakFile);
  const M = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : `${Math.round(x)}`);
  t.push({ id: 'ingest', what: 'ingest at zero loss, kernel → native → decoded JS', target: '≥ 3 M records/s',
    measured: r.ingest ? `${M(r.ingest.bestZeroLossPerSec)}/s; accounting ${r.ingest.accountingExact ? 'exact' : 'MISMATCH'}` : '–',
    status: !r.ingest ? 'not run' : r.ingest.bestZeroLossPerSec >= 3e6 && r.ingest.accountingExact ? 'met' : 'missed' });
  t.push({ id: 'latency-event', what: 'kernel event → viewer frame p99 (1 s buckets)', target: '≤ 1500 ms',
    measured: r.latency ? `${f(r.latency.signals.p99Ms, 0)} ms (${r.latency.signals.seen}/${r.latency.signals.sent} seen)` : '–',
    status: !r.latency || r.latency.signals.p99Ms === null ? 'not run' : r.latency.signals.p99Ms <= 1500 && r.latency.signals.seen === r.latency.signals.sent ? 'met' : 'missed' });
  t.push({ id: 'latency-bundle', what: 'worker death → bundle on disk p99', target: '≤ 1000 ms',
    measured: r.latency ? `${f(r.latency.deaths.fileP99Ms, 0)} ms (${r.latency.deaths.bundles}/${r.latency.deaths.killed} bundles)` : '–',
    status: !r.latency || r.latency.deaths.fileP99Ms === null ? 'not run' : r.latency.deaths.fileP99Ms <= 1000 && r.latency.deaths.bundles === r.latency.deaths.killed ? 'met' : 'missed' });
  return t;
}
