/** Text renderings of post-mortems for the terminal (`list`, `show`). */
import type { Bundle, IncidentSummary } from '../../proto/codec';
import { formatBytes } from '../../proto/format';
import { formatSender, formatStacks } from './format-stack';

function sparkline(values: number[]): string {
  const ticks = '▁▂▃▄▅▆▇█';
  const max = Math.max(...values, 1);
  return values.map((v) => ticks[Math.min(7, Math.floor((v / max) * 7.999))]).join('');
}

/** One `list` line: id, UTC time, verdict, pid, service. */
export function formatIncidentLine(i: IncidentSummary): string {
  return `${i.id}  ${new Date(i.tMs).toISOString().replace('T', ' ').slice(0, 23)}  ${i.verdictKind.padEnd(16)} pid ${String(i.pid).padEnd(7)} ${i.service}`;
}

export function formatBundle(b: Bundle): string {
  const v = b.verdict!;
  const dead = b.timelines[0]?.buckets ?? [];
  const last = dead.slice(-60);
  const out = [
    `post-mortem ${b.id}`,
    `worker    pid ${b.worker?.pid} (${b.worker?.comm}) generation ${b.worker?.generation}, ${b.service?.name ?? ''}`,
    `died      ${new Date(v.tMs).toISOString()}`,
    `verdict   ${v.kind}${v.failure ? '' : ' (planned)'}`,
    `summary   ${v.summary}`,
    'evidence',
    ...v.evidence.map((e) => `  - ${e.what}: ${e.value}${e.tMs ? ` at ${new Date(e.tMs).toISOString().slice(11, 23)}` : ''}`),
    `window    ${Math.round((b.windowEndMs - b.windowStartMs) / 1000)} s, ${b.timelines.length} timelines, ${b.markers.length} markers, ${b.lostRecords} records lost`,
    `last ${last.length} s:`,
    `  rss        ${sparkline(last.map((x) => x.rssBytes))}  ${formatBytes(last.at(-1)?.rssBytes ?? 0)}`,
    `  runq p99   ${sparkline(last.map((x) => x.runqP99Us))}  ${last.at(-1)?.runqP99Us ?? 0} µs`,
    `  faults     ${sparkline(last.map((x) => x.minorFaults + x.majorFaults))}`,
    `  cpu ms     ${sparkline(last.map((x) => x.cpuMs))}`,
  ];
  if (v.sender) out.push(...formatSender(v.sender));
  out.push(...formatStacks(b));
  if (b.cgroupLimits?.memoryMaxBytes) out.push(`cgroup    ${b.cgroupLimits.path} limit ${formatBytes(b.cgroupLimits.memoryMaxBytes)}`);
  const notable = b.markers.filter((m) => m.severity !== 'info').slice(-10);
  if (notable.length) {
    out.push('markers');
    for (const m of notable) out.push(`  ${new Date(m.tMs).toISOString().slice(11, 23)} ${m.kind}: ${m.message}`);
  }
  return out.join('\n');
}
