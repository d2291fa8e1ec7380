/**
 * The post-mortem page of one bundle: verdict, summary, evidence, the frozen
 * charts of the dead worker, its siblings and master, the service's sockets,
 * host pressure, and every marker of the window. Pure rendering from a
 * decoded Bundle: the live viewer, a dropped file and a self-contained HTML
 * export all come here.
 */
import type { Bucket, Bundle, Identity, Marker, WorkerTimeline } from './codec';
import { alignRows, PROCESS_COLORS, TimeChart, markerColor, type ChartSpec, type MultiRow, type Unit } from './charts';
import { h } from './dom';
import { renderWhy } from './postmortem-why';
import { fmtBytes, fmtClock, fmtDateTime, fmtDuration, verdictLabel } from './format';
import { BACKLOG_CHART, deviceChart, HOST_CHART, socketChart, WORKERS_CHART, WORKER_CHARTS } from './specs';

export interface PostmortemOptions {
  /** Where the bundle came from, shown in the header. */
  source?: 'agent' | 'file' | 'embedded';
  fileName?: string;
  /** "← live view" link; absent in an export. */
  onBack?: () => void;
  /** Base URL of the bundle downloads (agent only): `${base}.pb`, `${base}.json`. */
  downloadBase?: string;
}

export interface PostmortemHandle {
  destroy(): void;
}

const roleName = (id?: Identity) => (id ? (id.role === 'master' ? 'master' : id.role === 'worker' ? `worker gen ${id.generation}` : id.role) : '');

function procLabel(id: Identity | undefined, dead: boolean): string {
  if (!id) return '?';
  return `${dead ? '✝ ' : ''}${id.pid} ${id.role === 'master' ? 'master' : `g${id.generation}`}`;
}

/** Renders `bundle` into `root` (its content is replaced). */
export function renderPostmortem(root: HTMLElement, bundle: Bundle, opts: PostmortemOptions = {}): PostmortemHandle {
  const charts: TimeChart<any>[] = [];
  const v = bundle.verdict;
  const kind = v?.kind ?? 'unknown';
  const w = bundle.worker;
  const deathMs = v?.tMs || bundle.windowEndMs;
  const interval = bundle.intervalMs || 1000;
  const range: [number, number] = [bundle.windowStartMs || (bundle.timelines[0]?.buckets[0]?.tMs ?? deathMs - 60_000), Math.max(bundle.windowEndMs, deathMs + interval)];
  // Charts start where data starts: a young worker has less than the window.
  const firstT = Math.min(...bundle.timelines.flatMap((t) => t.buckets.slice(0, 1).map((b) => b.tMs)), deathMs - 30_000);
  range[0] = Math.max(range[0], firstT - interval);
  const markers = [...bundle.markers].sort((a, b) => a.tMs - b.tMs);
  const syncKey = `pm-${bundle.id}`;

  const deadTimeline: WorkerTimeline | undefined = bundle.timelines.find((t) => w && t.identity?.pid === w.pid && t.identity?.startTicks === w.startTicks) ?? bundle.timelines[0];
  const others = bundle.timelines.filter((t) => t !== deadTimeline);
  const deadKey = w ? `${w.pid}:${w.startTicks}` : '';
  const markersOf = (pred: (m: Marker) => boolean) => () => markers.filter(pred);
  const isDeadMarker = (m: Marker) => (!m.pid) || `${m.pid}:${m.startTicks}` === deadKey;

  function add<R extends { tMs: number; gap?: boolean }>(spec: ChartSpec<R>, rows: R[], mk: () => Marker[], height = 160): HTMLElement {
    const c = new TimeChart<R>(spec, { markers: mk, height, syncKey, deathMs, intervalMs: interval, attrs: { 'data-scope': 'postmortem' } });
    charts.push(c);
    queueMicrotask(() => c.setRows(rows, range, interval));
    return c.el;
  }

  const header = h('header', { class: 'pm-head' },
    h('div', { class: 'pm-head-top' },
      opts.onBack ? h('button', { class: 'btn ghost', onclick: () => opts.onBack!() }, '← Live view') : h('span', { class: 'brand small' }, h('span', { class: 'brand-mark' }), 'premortem'),
      h('span', { class: 'pm-kicker' }, 'Post-mortem'),
      h('span', { class: 'muted' }, bundle.id),
      h('span', { class: 'grow' }),
      opts.source === 'file' ? h('span', { class: 'chip' }, `opened from ${opts.fileName ?? 'a file'}`) : null,
      opts.source === 'embedded' ? h('span', { class: 'chip' }, 'exported report') : null,
      opts.downloadBase ? h('a', { class: 'btn', href: `${opts.downloadBase}.pb`, download: `${bundle.id}.pb` }, 'Download .pb') : null,
      opts.downloadBase ? h('a', { class: 'btn', href: `${opts.downloadBase}.json`, download: `${bundle.id}.json` }, '.json') : null),
    h('div', { class: 'pm-verdict-row' },
      h('span', { class: `verdict-badge big v-${kind}`, 'data-testid': 'verdict' }, verdictLabel(kind)),
      h('div', { class: 'pm-who' },
        h('div', { class: 'pm-title' }, `${w?.comm || 'worker'} pid ${w?.pid ?? '?'}`, h('span', { class: 'muted' }, ` · ${roleName(w)}`),
          bundle.service ? h('span', { class: 'muted' }, ` · ${bundle.service.name}`) : null),
        h('div', { class: 'muted small' }, `died ${fmtDateTime(deathMs)} · lived ${w?.startedMs ? fmtDuration(deathMs - w.startedMs) : '?'} · host ${bundle.host || '?'} · kernel ${bundle.kernel || '?'} · agent ${bundle.agentVersion || '?'}`))),
    h('p', { class: 'pm-summary', 'data-testid': 'summary' }, v?.summary || 'No summary was recorded.'),
    bundle.lostRecords > 0 ? h('div', { class: 'banner warn' }, `${bundle.lostRecords} kernel records were lost while this window was recorded: shaded intervals have gaps, and the verdict may lack evidence.`) : null);

  // ---- evidence and facts
  const facts: Array<[string, string]> = [];
  if (v) {
    if (v.signal) facts.push(['signal', `${v.signalName || `signal ${v.signal}`}${v.coreDumped ? ' (core dumped)' : ''}`]);
    else facts.push(['exit code', String(v.exitCode)]);
    if (v.senderPid) facts.push(['sent by', `pid ${v.senderPid}${v.senderComm ? ` (${v.senderComm})` : ''}`]);
    if (v.oomScope !== 'none') facts.push(['OOM scope', v.oomScope]);
    if (v.cgroupPath) facts.push(['cgroup', v.cgroupPath]);
    if (v.limitBytes) facts.push(['limit', fmtBytes(v.limitBytes)]);
    if (v.usageBytes) facts.push(['usage at kill', fmtBytes(v.usageBytes)]);
    facts.push(['failure', v.failure ? 'yes' : 'no (planned exit)']);
  }
  const cg = bundle.cgroupLimits;
  if (cg) {
    facts.push(['memory cgroup', cg.path || '/']);
    if (cg.memoryMaxBytes) facts.push(['memory.max', fmtBytes(cg.memoryMaxBytes)]);
    if (cg.memoryPeakBytes) facts.push(['peak', fmtBytes(cg.memoryPeakBytes)]);
    const ev = Object.entries(cg.memoryEvents).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
    if (ev) facts.push(['memory events', ev]);
  }
  facts.push(['window', `${fmtClock(bundle.windowStartMs)} – ${fmtClock(bundle.windowEndMs)} (${fmtDuration(bundle.windowEndMs - bundle.windowStartMs)}, ${interval} ms buckets)`]);
  if (w?.cmdline) facts.push(['command', w.cmdline]);

  const evidence = v?.evidence ?? [];
  const evidenceBox = h('section', { class: 'card' },
    h('h3', null, 'Evidence'),
    evidence.length
      ? h('table', { class: 'kv evidence', 'data-testid': 'evidence' },
        h('tbody', null, evidence.map((e) => h('tr', null,
          h('th', null, e.what), h('td', null, e.value), h('td', { class: 'muted num' }, e.tMs ? fmtClock(e.tMs, true) : '')))))
      : h('p', { class: 'muted' }, 'The agent recorded no evidence items for this death.'));
  const factsBox = h('section', { class: 'card' },
    h('h3', null, 'Facts'),
    h('table', { class: 'kv' }, h('tbody', null, facts.map(([k, val]) => h('tr', null, h('th', null, k), h('td', { class: k === 'command' ? 'mono wrap' : '' }, val))))));

  // ---- charts
  const deadRows: Bucket[] = deadTimeline?.buckets ?? [];
  const deadGrid = h('div', { class: 'grid charts3' }, WORKER_CHARTS.map((spec) => add(spec, deadRows, markersOf(isDeadMarker))));

  const procSets = [deadTimeline, ...others].filter((t): t is WorkerTimeline => !!t);
  const procLabels = procSets.map((t) => procLabel(t.identity, t === deadTimeline));
  const byProc = (id: string, title: string, unit: Unit, value: (b: Bucket, s: number) => number | null, log = false): HTMLElement => {
    const rows = alignRows(procSets.map((t) => t.buckets), value, interval);
    const spec: ChartSpec<MultiRow> = {
      id, title, unit, log, note: 'by process',
      series: procSets.map((_t, i) => ({ label: procLabels[i], color: PROCESS_COLORS[i % PROCESS_COLORS.length], value: (r: MultiRow) => r.values[i], width: i === 0 ? 2.2 : 1.2 })),
    };
    return add(spec, rows, markersOf(() => true), 170);
  };
  const siblingGrid = procSets.length > 1 ? h('div', { class: 'grid charts3' },
    byProc('proc-rss', 'RSS', 'bytes', (b) => b.rssBytes || null),
    byProc('proc-runq', 'Runqueue p99', 'us', (b) => (b.runqCount ? b.runqP99Us : null), true),
    byProc('proc-cpu', 'CPU', 'pct', (b) => (b.intervalMs ? (100 * b.cpuMs) / b.intervalMs : null))) : null;

  const svcRows = bundle.serviceBuckets;
  const svcGrid = svcRows.length ? h('div', { class: 'grid charts3' },
    add(socketChart(svcRows), svcRows, markersOf((m) => !m.pid)),
    add(BACKLOG_CHART, svcRows, markersOf((m) => !m.pid)),
    add(WORKERS_CHART, svcRows, markersOf((m) => !m.pid))) : null;
  const hostGrid = bundle.hostBuckets.length ? h('div', { class: 'grid charts3' }, add(HOST_CHART, bundle.hostBuckets, () => []),
    add(deviceChart(bundle.hostBuckets), bundle.hostBuckets, markersOf((m) => m.kind === 'slow-io'))) : null;

  // ---- markers
  const procOf = new Map(procSets.map((t, i) => [`${t.identity?.pid}:${t.identity?.startTicks}`, procLabels[i]]));
  const markerList = h('section', { class: 'card' },
    h('h3', null, `Timeline events `, h('span', { class: 'muted' }, `(${markers.length})`)),
    markers.length ? h('table', { class: 'events' }, h('tbody', null, markers.slice(-300).reverse().map((m) => h('tr', { class: `sev-row-${m.severity}` },
      h('td', { class: 'num muted' }, fmtClock(m.tMs, true)),
      h('td', null, h('span', { class: 'kind', style: `--c:${markerColor(m)}` }, m.kind)),
      h('td', { class: 'muted' }, m.pid ? procOf.get(`${m.pid}:${m.startTicks}`) ?? `pid ${m.pid}` : m.serviceId ? 'service' : 'host'),
      h('td', null, m.message))))) : h('p', { class: 'muted' }, 'No markers in this window.'));

  const page = h('div', { class: 'postmortem', 'data-view': 'postmortem', 'data-verdict': kind, 'data-bundle': bundle.id },
    header,
    h('div', { class: 'grid two' }, evidenceBox, factsBox),
    renderWhy(bundle),
    h('h2', { class: 'section' }, `Worker pid ${w?.pid ?? '?'} — last ${fmtDuration(deathMs - range[0])} before death`),
    deadGrid,
    siblingGrid ? h('h2', { class: 'section' }, 'Siblings and master over the same window') : null,
    siblingGrid,
    svcGrid ? h('h2', { class: 'section' }, `Service ${bundle.service?.name ?? ''}`) : null,
    svcGrid,
    hostGrid ? h('h2', { class: 'section' }, 'Host') : null,
    hostGrid,
    markerList);
  root.replaceChildren(page);
  return {
    destroy() {
      for (const c of charts) c.destroy();
      page.remove();
    },
  };
}
