/**
 * The footprint sections of the benchmark's Markdown: memory of all the
 * agent's processes with its BPF maps map by map, CPU while watching idle
 * workers (and per worker), each feature's cost, and the profile's top items.
 */
import type { MemoryResult } from './memory';
import type { WorkloadResult } from './overhead';
import type { ScenarioProfile } from './profile';
import type { ScalingResult } from './scaling';

const f = (x: number | null | undefined, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const KiB = (b: number) => `${(b / 1024).toFixed(b < 10 * 1024 ? 1 : 0)}`;

export function memorySection(mem: MemoryResult[]): string[] {
  const L: string[] = [];
  const m0 = mem[0];
  L.push('## 2. Agent memory: all its processes', '');
  L.push('`premortem run` tracking N idle python3.11 workers (one master, N forked children), after the timeline rings filled: '
    + `--interval-ms ${m0?.intervalMs} --window-s ${m0?.windowS} = ${m0?.bucketsPerTimeline} buckets per timeline (the default 10 min at 1 s holds 600; `
    + 'the same bucket count at a shorter interval fills the same memory faster). **Together** = the resident pages of the tracer and its server process, each page once '
    + '(the node binary\'s text is mapped by both; the ring buffer\'s data pages, mapped twice into the tracer, are kernel memory and counted in the BPF column instead). '
    + 'RSS sum = what `ps` shows for the two added up. BPF maps: memlock of every map the tracer holds (bpftool), each map once.', '');
  L.push('| workers | tracked | buckets filled | together MiB | tracer RSS MiB | server RSS MiB | RSS sum MiB | tracer PSS MiB | V8 heap MiB | timelines MiB (per process) | BPF maps MiB (maps) | agent CPU % (10 ticks/s) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const m of mem)
    L.push(`| ${m.workers} | ${m.trackedAlive} | ${m.bucketsFilled ?? '–'}/${m.bucketsPerTimeline} | **${f(m.togetherMiB, 1)}** | ${f(m.rssMiB, 1)} | ${f(m.serverRssMiB, 1)} | ${f(m.rssSumMiB, 1)} | ${f(m.pssMiB, 1)} | ${f(m.heapUsedMiB, 1)} `
      + `| ${f(m.timelineMiB, 2)} (${m.timelineBytesPerProcess !== null && m.timelineBytesPerProcess !== undefined ? `${KiB(m.timelineBytesPerProcess)} KiB` : '–'}) | ${f(m.bpfMapMiB, 1)} (${m.bpfMaps}) | ${f(m.agentCpuPct, 2)} |`);
  L.push('');
  const withMaps = [...mem].reverse().find((m) => m.maps?.length);
  if (withMaps) {
    L.push(`### BPF maps, map by map (${withMaps.workers} workers tracked)`, '');
    L.push('| map | type | key + value B | max entries | memlock KiB | why this size |', '|---|---|---|---|---|---|');
    for (const x of withMaps.maps) L.push(`| ${x.name} | ${x.type} | ${x.keyBytes} + ${x.valueBytes} | ${x.maxEntries} | ${KiB(x.memlockBytes)} | ${x.why} |`);
    L.push('');
  }
  return L;
}

export function scalingSection(s: ScalingResult): string[] {
  const L = ['## 3. Agent CPU while watching idle workers', '',
    `\`premortem run\` at its default ${s.intervalMs} ms tick, N idle python3.11 workers tracked, no viewer; CPU of the tracer and its server process `
    + 'from their threads\' schedstat (ns), over the time shown. Per worker = (CPU − CPU at 0 workers) / N: everything that grows with workers '
    + '(the tick\'s kernel-map and /proc reads, discovery\'s /proc scan, timelines) together. 1 % of a core = 10,000 µs per 1 s tick. '
    + 'Windows: the same time cut in six, each measured alone; host busy: the whole machine\'s CPU use over the time (other work on a shared machine).', '',
    '| workers | tracked | seconds | CPU % of one core | windows (min–max) | host busy % | tracer % | server % | µs per worker per tick | together MiB (windows not full) |', '|---|---|---|---|---|---|---|---|---|---|'];
  for (const p of s.points) {
    const w = p.windowsPct ?? [];
    L.push(`| ${p.workers} | ${p.trackedAlive} | ${p.seconds} | **${f(p.cpuPct, 3)}** | ${w.length ? `${f(Math.min(...w), 3)}–${f(Math.max(...w), 3)}` : '–'} | ${f(p.hostBusyPct, 0)} `
      + `| ${f(p.tracerPct, 3)} | ${f(p.serverPct, 3)} | ${f(p.usPerWorkerTick, 1)} | ${f(p.togetherMiB, 1)} |`);
  }
  if (s.marginal.length) L.push('', `Marginal cost: ${s.marginal.map((m) => `${m.from} → ${m.to} workers: ${f(m.usPerWorkerTick, 1)} µs per added worker per tick`).join('; ')}.`);
  L.push('');
  return L;
}

export function featureSection(overhead: WorkloadResult[]): string[] {
  const rows = overhead.filter((w) => w.featureCosts?.length);
  if (!rows.length) return [];
  const L = ['### What each feature costs on its own', '',
    'Each feature off in turn (`premortem-no-<feature>`, every other feature on, one viewer), paired with no-tracer runs like the rest: '
    + 'a feature\'s cost is the req/s ratio without it minus the ratio with everything, the p99 ratio with everything minus without it, '
    + 'and the agent CPU with everything minus without it. Differences below the baseline\'s variation are noise.', '',
    '| workload | feature | switched off with | req/s cost | p99 cost | agent CPU cost, % of a core |', '|---|---|---|---|---|---|'];
  for (const w of rows)
    for (const c of w.featureCosts)
      L.push(`| ${w.name}${w.inconclusive ? ' (inconclusive)' : ''} | ${c.feature} | \`${c.how}\` | ${f(c.rpsCost, 3)} | ${f(c.p99Cost, 3)} | ${f(c.cpuCostPct, 2)} |`);
  L.push('');
  return L;
}

export function profileSection(profiles: ScenarioProfile[], top = 8): string[] {
  const L = ['## 4. Where the agent\'s CPU and memory go (profile)', '',
    'The agent under `node --cpu-prof` (its server process too), then a heap snapshot. Busy % is the profile\'s non-idle samples; the /proc figure is the '
    + 'same process\'s CPU measured by the kernel over the same window (it also counts the profiler itself, the ring-buffer reader thread and V8\'s helper threads). '
    + 'ms/s = ms of CPU per second of wall time; share = of the process\'s busy samples.', ''];
  const titles: Record<string, string> = {
    'w1-viewer': 'W1 (connection churn), one viewer', 'idle-256': '256 idle workers tracked, no viewer', 'idle-0': 'nothing to track',
  };
  for (const s of profiles) {
    L.push(`### ${titles[s.scenario] ?? s.scenario} (${s.seconds} s)`, '');
    for (const p of s.processes) {
      L.push(`${p.role}: busy ${f(p.cpu.busyPct, 2)} % of one core in the profile, ${f(p.procCpuPct, 2)} % by /proc.`, '');
      L.push('| self | ms/s | share | inclusive | ms/s | share |', '|---|---|---|---|---|---|');
      for (let i = 0; i < top; i++) {
        const a = p.cpu.topSelf[i], b = p.cpu.topInclusive[i];
        L.push(`| ${a ? `\`${a.fn}\`` : ''} | ${a ? f(a.msPerS, 2) : ''} | ${a ? `${f(a.share * 100, 1)} %` : ''} | ${b ? `\`${b.fn}\`` : ''} | ${b ? f(b.msPerS, 2) : ''} | ${b ? `${f(b.share * 100, 1)} %` : ''} |`);
      }
      L.push('');
    }
    if (s.heap) {
      L.push(`Tracer heap snapshot: ${f(s.heap.totalMiB, 1)} MiB in all; largest kinds: `
        + s.heap.kinds.slice(0, top).map((k) => `${k.kind} ${f(k.mib, 2)} MiB (${k.count})`).join(', ') + '.', '');
    }
  }
  return L;
}
