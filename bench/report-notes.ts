/**
 * "Notes on targets missed or inconclusive": for each such target, the
 * figures of this run that explain it — the paired baseline's spread, the
 * profile's top functions in the matching situation, the memory's parts —
 * never a claim this run did not measure. What would close a miss is the
 * reader's call (docs/BENCHMARKS.md carries it beside the run).
 */
import { lifecycleExact } from './overhead';
import type { ProcessProfile, ProfileScenario } from './profile';
import type { BenchResults } from './report';

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));

/** The top self-time functions of one profiled situation, or why there are none. */
function profileLine(r: BenchResults, scenario: ProfileScenario, top = 4): string {
  const s = r.profile?.find((x) => x.scenario === scenario);
  if (!s) return `no profile of ${scenario} in this run (\`npm run bench -- --only profile\`).`;
  const part = (p: ProcessProfile) => `${p.role} busy ${f(p.cpu.busyPct, 2)} % (${f(p.procCpuPct, 2)} % by /proc): `
    + p.cpu.topSelf.slice(0, top).map((x) => `\`${x.fn}\` ${f(x.msPerS, 2)} ms/s`).join(', ');
  return `profile of ${scenario} (${s.seconds} s): ${s.processes.map(part).join('; ')}.`;
}

function overheadNotes(r: BenchResults, judged: Set<string>): string[] {
  const out: string[] = [];
  const inconclusive = r.overhead?.filter((w) => w.inconclusive) ?? [];
  if (inconclusive.length)
    out.push(`- **Inconclusive workloads: ${inconclusive.map((w) => `${w.name} (baseline CV ${((w.baseline.rpsCv ?? 0) * 100).toFixed(0)} %, ${w.baseline.rpsMin}–${w.baseline.rpsMax} req/s)`).join(', ')}.** `
      + 'The no-tracer runs swung more than 10 % (other work on the machine), so the paired ratios and the per-feature costs are printed but not judged. '
      + 'The agent\'s own CPU and memory and the kernel-side figures do not depend on that baseline.');
  if (judged.has('W1-cpu')) {
    const c = r.overhead?.find((w) => w.name === 'W1')?.conditions.find((x) => x.condition === 'premortem');
    out.push(`- **Agent CPU under W1: ${f(c?.tracerCpuPct, 2)} % of a core** (tracer + server process, one viewer; ${c?.tcpSockets ?? '–'} TCP sockets on the host at the start of a run). ${profileLine(r, 'w1-viewer')}`);
  }
  const w3 = r.overhead?.find((w) => w.name === 'W3');
  const runs = w3?.runs.filter((x) => x.lifecycle && x.condition.startsWith('premortem')) ?? [];
  const bad = runs.filter((x) => !lifecycleExact(x.lifecycle!));
  if (bad.length)
    out.push(`- **W3: ${bad.length} of ${runs.length} premortem runs not exact.** ` + bad.map((x) => `round ${x.round + 1} ${x.condition}: `
      + `${x.lifecycle!.independentExits} deaths / ${x.lifecycle!.independentOomKills} OOM kill(s) counted independently; agent ${x.lifecycle!.agentExits} deaths, `
      + `verdicts ${JSON.stringify(x.lifecycle!.agentVerdicts)}${x.lifecycle!.missing.length ? `, missing pids ${x.lifecycle!.missing.join(' ')}` : ''}`
      + `${x.lifecycle!.extra.length ? `, extra pids ${x.lifecycle!.extra.join(' ')}` : ''}`).join('. ') + '.');
  return out;
}

function footprintNotes(r: BenchResults, judged: Set<string>): string[] {
  const out: string[] = [];
  for (const [id, n] of [['cpu-idle-0', 0], ['cpu-idle-256', 256]] as const) {
    if (!judged.has(id)) continue;
    const p = r.scaling?.points.find((x) => x.workers === n);
    const t = r.targets.find((x) => x.id === id)!;
    out.push(`- **Agent CPU with ${n} idle workers: ${f(p?.cpuPct, 3)} % (${t.status})**, windows ${p?.windowsPct?.map((x) => f(x, 3)).join(' ') ?? '–'}, `
      + `host busy ${f(p?.hostBusyPct, 0)} % meanwhile. ${profileLine(r, n ? 'idle-256' : 'idle-0')}`);
  }
  for (const [id, n] of [['memory-idle', 0], ['memory-256', 256]] as const) {
    if (!judged.has(id)) continue;
    const m = r.memory?.find((x) => x.workers === n);
    if (!m) continue;
    const heap = r.profile?.find((x) => x.scenario === (n ? 'idle-256' : 'idle-0'))?.heap;
    out.push(`- **Agent memory with ${n} idle workers: ${f(m.togetherMiB, 1)} MiB together.** Tracer RSS ${f(m.rssMiB, 1)} MiB `
      + `(PSS ${f(m.pssMiB, 1)}, private anonymous ${f(m.anonMiB, 1)}, of which V8 heap in use ${f(m.heapUsedMiB, 1)} and timelines ${f(m.timelineMiB, 2)}; `
      + `BPF mappings ${f(m.bpfMappedRssMiB, 1)} MiB, not counted in "together"), server process RSS ${f(m.serverRssMiB, 1)} MiB. `
      + (heap ? `Heap snapshot: ${heap.kinds.slice(0, 5).map((k) => `${k.kind} ${f(k.mib, 2)} MiB`).join(', ')}.` : 'No heap snapshot in this run.'));
  }
  return out;
}

/** Why a target was missed or is inconclusive, from what this run measured. */
export function notes(r: BenchResults): string[] {
  const judged = new Set(r.targets.filter((t) => t.status === 'missed' || t.status === 'inconclusive').map((t) => t.id));
  const out = [...overheadNotes(r, judged), ...footprintNotes(r, judged)];
  if (judged.has('ingest') && r.ingest)
    out.push('- **Ingest.** The paced producer is one python3.11 process; when it cannot reach the target rate the figure is the producer\'s, see the flat-out row.');
  return out.length ? ['## Notes on targets missed or inconclusive', '', ...out, ''] : [];
}
