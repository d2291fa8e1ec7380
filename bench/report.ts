/**
 * The benchmark's results: one JSON document, a Markdown summary (the same
 * tables the terminal shows) and the targets, each met, missed or
 * inconclusive, with the figure that decided it.
 */
import type { IngestResult } from './ingest';
import type { LatencyResult } from './latency';
import type { MemoryResult } from './memory';
import { lifecycleExact, type WorkloadResult } from './overhead';
import { featureSection, memorySection, profileSection, scalingSection } from './report-footprint';
import { notes } from './report-notes';
import { REFERENCE_NS_PER_EVENT } from './targets';

export { evaluateTargets } from './targets';
import type { ProgCostResult } from './progcost';
import type { ScenarioProfile } from './profile';
import type { ScalingResult } from './scaling';
import { whyCostMarkdown, type WhyCostResult } from './cost-why';

export const SCHEMA = 'premortem-bench/1';

export interface Target {
  id: string;
  what: string;
  target: string;
  measured: string;
  status: 'met' | 'missed' | 'inconclusive' | 'not run';
  note?: string;
}

export interface BenchResults {
  schema: typeof SCHEMA;
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; kernel: string; node: string; loadAvgAtStart: number[] };
  options: Record<string, unknown>;
  overhead: WorkloadResult[] | null;
  memory: MemoryResult[] | null;
  ingest: IngestResult | null;
  latency: LatencyResult | null;
  programCost: ProgCostResult | null;
  /** Issue 15: time accounting and requests in flight, before vs after (absent in older results). */
  whyCost?: WhyCostResult | null;
  /** Absent in results older than issue 16. */
  scaling?: ScalingResult | null;
  profile?: ScenarioProfile[] | null;
  targets: Target[];
  errors: Array<{ step: string; error: string }>;
}

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const pct = (x: number | null | undefined) => (x === null || x === undefined ? '–' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`);
const M = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : `${Math.round(x)}`);

export function markdown(r: BenchResults): string {
  const L: string[] = [];
  L.push('# premortem benchmarks', '');
  L.push(`Run ${r.startedAt} → ${r.finishedAt} on ${r.machine.cpus} CPUs, kernel ${r.machine.kernel}, Node ${r.machine.node}; load average at start ${r.machine.loadAvgAtStart.map((x) => x.toFixed(2)).join(' ')}.`);
  const { merged, ...opts } = r.options as Record<string, unknown> & { merged?: Array<{ startedAt: string; finishedAt: string; replaced: string[]; options: Record<string, unknown> }> };
  L.push(`Options: \`${JSON.stringify(opts)}\`. Produced by \`npm run bench\` (bench/run.ts); JSON and Markdown in bench/results/.`, '');
  for (const m of merged ?? [])
    L.push(`Re-run and merged in: ${m.replaced.join(', ')} — ${m.startedAt} → ${m.finishedAt}, same machine and session (\`${JSON.stringify(m.options)}\`).`, '');
  L.push('## Targets', '', '| target | measured | goal | status |', '|---|---|---|---|');
  for (const t of r.targets) L.push(`| ${t.what} | ${t.measured} | ${t.target} | **${t.status}**${t.note ? ` (${t.note})` : ''} |`);
  L.push('');
  if (r.overhead) {
    L.push('## 1. Overhead on real Python services', '');
    L.push('Paired runs: each tracer run is bracketed by no-tracer runs, its baseline is their mean; figures are medians over rounds. '
      + 'Tracer CPU is user+system of the tracer\'s processes from /proc/PID/stat (% of one core); context switches from /proc/stat `ctxt`, per request (and per second), paired the same way.', '');
    for (const w of r.overhead) {
      L.push(`### ${w.name} — ${w.description}`, '');
      L.push(`Baseline (none): median ${f(w.baseline.rpsMedian, 0)} req/s (min ${f(w.baseline.rpsMin, 0)}, max ${f(w.baseline.rpsMax, 0)}, CV ${f((w.baseline.rpsCv ?? 0) * 100, 1)} %, ${w.baseline.runs} runs), p99 ${f(w.baseline.p99MsMedian, 2)} ms.`
        + (w.inconclusive ? ` **Inconclusive**: ${w.inconclusiveReason}.` : ''), '');
      L.push('| condition | pairs | req/s ratio | p99 ratio | tracer CPU % | ctxt/request | ctxt/s | host TCP sockets |' + (w.name === 'W3' ? ' lifecycle exact |' : ''),
        '|---|---|---|---|---|---|---|---|' + (w.name === 'W3' ? '---|' : ''));
      for (const c of w.conditions)
        L.push(`| ${c.condition} | ${c.pairs} | ${f(c.rpsRatio, 3)} | ${f(c.p99Ratio, 3)} | ${f(c.tracerCpuPct, 2)} | ${pct(c.ctxtInflationPerRequest)} | ${pct(c.ctxtInflationPerSec)} | ${c.tcpSockets ?? '–'} |`
          + (w.name === 'W3' ? ` ${w3Exact(w, c.condition)} |` : ''));
      L.push('');
    }
    L.push(...featureSection(r.overhead));
  }
  if (r.memory) L.push(...memorySection(r.memory));
  if (r.scaling) L.push(...scalingSection(r.scaling));
  if (r.profile) L.push(...profileSection(r.profile));
  if (r.ingest) {
    L.push('## 5. Ingest: kernel → native → decoded JS', '');
    L.push('Synthetic records from bpf/flood.bpf.c (a paced python3.11 producer), decoded in JS; the last run overloads a 256 KiB ring (its reader held for half the run, Tracer.pause()) to check produced = delivered + dropped.', '');
    L.push('| run | produced | delivered/s | dropped | consumer CPU % | produced = delivered + dropped |', '|---|---|---|---|---|---|');
    for (const x of r.ingest.runs) L.push(`| ${x.name} | ${M(x.produced)} | ${M(x.deliveredPerSec)} | ${M(x.dropped)} | ${x.agentCpuPct.toFixed(0)} | ${x.exact ? 'exact' : 'MISMATCH'} |`);
    L.push('', `Best zero-loss rate: **${M(r.ingest.bestZeroLossPerSec)} records/s**.`, '');
  }
  if (r.latency) {
    const l = r.latency;
    L.push('## 6. Latency', '');
    L.push('| path | n | p50 ms | p99 ms | max ms |', '|---|---|---|---|---|');
    L.push(`| signal to a tracked worker → Delta frame at a WebSocket client (${l.intervalMs} ms buckets) | ${l.signals.seen}/${l.signals.sent} | ${f(l.signals.p50Ms, 0)} | ${f(l.signals.p99Ms, 0)} | ${f(l.signals.maxMs, 0)} |`);
    L.push(`| SIGKILL of a tracked worker → bundle file on disk | ${l.deaths.bundles}/${l.deaths.killed} | ${f(l.deaths.fileP50Ms, 0)} | ${f(l.deaths.fileP99Ms, 0)} | ${f(l.deaths.fileMaxMs, 0)} |`);
    L.push(`| SIGKILL of a tracked worker → BundleReady frame at the client | ${l.deaths.bundles}/${l.deaths.killed} | ${f(l.deaths.frameP50Ms, 0)} | ${f(l.deaths.frameP99Ms, 0)} | – |`, '');
  }
  if (r.programCost) {
    const p = r.programCost;
    L.push('## 7. Per-program cost (kernel.bpf_stats_enabled)', '');
    L.push(`premortem and libbpf-tools attached together to the same ${p.seconds} s of load (wrk on tracked gunicorn with recycling, dd oflag=direct, a tracked python touching memory and churning the GC). ns/event = Δrun_time_ns / Δrun_cnt.`, '');
    L.push('| scheduler hook | premortem ns/event (all its programs) | libbpf-tools runqlat ns/event |', '|---|---|---|');
    for (const h of p.schedulerHooks) L.push(`| ${h.hook} | ${h.premortemNsPerEvent ?? '–'} (${h.premortemPrograms.join(', ') || '–'}) | ${h.libbpfToolsNsPerEvent ?? '–'} |`);
    L.push('', 'Reference: the premortem programs\' ns/event on each hook in the run of 2026-11-26 (before issue 16).', '');
    L.push('| owner | program | hook | events | ns/event | hook reference (all premortem programs on it) |', '|---|---|---|---|---|---|');
    for (const x of p.programs) L.push(`| ${x.owner} | ${x.program} | ${x.hook} | ${x.events} | ${x.nsPerEvent ?? '–'} | ${x.owner.startsWith('premortem') ? REFERENCE_NS_PER_EVENT[x.hook] ?? '–' : ''} |`);
    L.push('');
  }
  if (r.whyCost) L.push('## 8. Why it died: time accounting and requests in flight, before and after', '', ...whyCostMarkdown(r.whyCost));
  L.push(...notes(r));
  if (r.errors.length) {
    L.push('## Steps that failed', '');
    for (const e of r.errors) L.push(`- ${e.step}: ${e.error}`);
    L.push('');
  }
  return L.join('\n');
}

function w3Exact(w: WorkloadResult, condition: string): string {
  const runs = w.runs.filter((x) => x.condition === condition && x.lifecycle && condition.startsWith('premortem'));
  return runs.length ? `${runs.filter((x) => lifecycleExact(x.lifecycle!)).length}/${runs.length}` : '–';
}
