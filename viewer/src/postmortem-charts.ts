/**
 * The post-mortem page's frozen charts: the dead worker's own, its siblings and
 * master side by side, the service's sockets and workers, the host. Every chart
 * shares one window (range, interval, death line) and one cursor.
 */
import type { Bucket, Bundle, Identity, Marker, WorkerTimeline } from './codec';
import { alignRows, PROCESS_COLORS, TimeChart, type ChartSpec, type MultiRow, type Unit } from './charts';
import { h } from './dom';
import { BACKLOG_CHART, deviceChart, HOST_CHART, socketChart, WORKERS_CHART, WORKER_CHARTS } from './specs';
import { pidLabel } from '../../agent/container/label';

/** What every chart of one post-mortem shares. */
export interface PostmortemWindow {
  deathMs: number;
  interval: number;
  range: [number, number];
  /** The window's markers, oldest first. */
  markers: Marker[];
  syncKey: string;
}

export function postmortemWindow(bundle: Bundle): PostmortemWindow {
  const deathMs = bundle.verdict?.tMs || bundle.windowEndMs;
  const interval = bundle.intervalMs || 1000;
  const range: [number, number] = [bundle.windowStartMs || (bundle.timelines[0]?.buckets[0]?.tMs ?? deathMs - 60_000), Math.max(bundle.windowEndMs, deathMs + interval)];
  // Charts start where data starts: a young worker has less than the window.
  const firstT = Math.min(...bundle.timelines.flatMap((t) => t.buckets.slice(0, 1).map((b) => b.tMs)), deathMs - 30_000);
  range[0] = Math.max(range[0], firstT - interval);
  return { deathMs, interval, range, markers: [...bundle.markers].sort((a, b) => a.tMs - b.tMs), syncKey: `pm-${bundle.id}` };
}

function procLabel(id: Identity | undefined, dead: boolean): string {
  if (!id) return '?';
  return `${dead ? '✝ ' : ''}${pidLabel(id)} ${id.role === 'master' ? 'master' : `g${id.generation}`}`;
}

/** The bundle's processes: the dead worker's timeline first, then its siblings' and master's, labelled. */
export interface PostmortemProcesses {
  dead?: WorkerTimeline;
  timelines: WorkerTimeline[];
  labels: string[];
}

export function postmortemProcesses(bundle: Bundle): PostmortemProcesses {
  const w = bundle.worker;
  const dead = bundle.timelines.find((t) => w && t.identity?.pid === w.pid && t.identity?.startTicks === w.startTicks) ?? bundle.timelines[0];
  const others = bundle.timelines.filter((t) => t !== dead);
  const timelines = [dead, ...others].filter((t): t is WorkerTimeline => !!t);
  return { dead, timelines, labels: timelines.map((t) => procLabel(t.identity, t === dead)) };
}

/** Makes the page's charts and destroys them together. */
export class PostmortemCharts {
  private readonly charts: TimeChart<any>[] = [];
  constructor(private readonly win: PostmortemWindow) {}

  /** The window's markers that `pred` keeps, read when a chart draws. */
  markersOf(pred: (m: Marker) => boolean): () => Marker[] {
    return () => this.win.markers.filter(pred);
  }

  add<R extends { tMs: number; gap?: boolean }>(spec: ChartSpec<R>, rows: R[], mk: () => Marker[], height = 160): HTMLElement {
    const { deathMs, interval, range, syncKey } = this.win;
    const c = new TimeChart<R>(spec, { markers: mk, height, syncKey, deathMs, intervalMs: interval, attrs: { 'data-scope': 'postmortem' } });
    this.charts.push(c);
    queueMicrotask(() => c.setRows(rows, range, interval));
    return c.el;
  }

  destroy(): void {
    for (const c of this.charts) c.destroy();
  }
}

/** The dead worker's own charts, with its markers (and those of no process). */
export function deadWorkerGrid(c: PostmortemCharts, bundle: Bundle, procs: PostmortemProcesses): HTMLElement {
  const w = bundle.worker;
  const deadKey = w ? `${w.pid}:${w.startTicks}` : '';
  const isDeadMarker = (m: Marker) => (!m.pid) || `${m.pid}:${m.startTicks}` === deadKey;
  const deadRows: Bucket[] = procs.dead?.buckets ?? [];
  return h('div', { class: 'grid charts3' }, WORKER_CHARTS.map((spec) => c.add(spec, deadRows, c.markersOf(isDeadMarker))));
}

/** RSS, runqueue and CPU of every process of the bundle on one chart each; null with only the dead worker. */
export function siblingsGrid(c: PostmortemCharts, procs: PostmortemProcesses, interval: number): HTMLElement | null {
  const { timelines, labels } = procs;
  if (timelines.length <= 1) return null;
  const byProc = (id: string, title: string, unit: Unit, value: (b: Bucket, s: number) => number | null, log = false): HTMLElement => {
    const rows = alignRows(timelines.map((t) => t.buckets), value, interval);
    const spec: ChartSpec<MultiRow> = {
      id, title, unit, log, note: 'by process',
      series: timelines.map((_t, i) => ({ label: labels[i], color: PROCESS_COLORS[i % PROCESS_COLORS.length], value: (r: MultiRow) => r.values[i], width: i === 0 ? 2.2 : 1.2 })),
    };
    return c.add(spec, rows, c.markersOf(() => true), 170);
  };
  return h('div', { class: 'grid charts3' },
    byProc('proc-rss', 'RSS', 'bytes', (b) => b.rssBytes || null),
    byProc('proc-runq', 'Runqueue p99', 'us', (b) => (b.runqCount ? b.runqP99Us : null), true),
    byProc('proc-cpu', 'CPU', 'pct', (b) => (b.intervalMs ? (100 * b.cpuMs) / b.intervalMs : null)));
}

/** The service's sockets, backlog and workers; null when the bundle has no service series. */
export function serviceGrid(c: PostmortemCharts, bundle: Bundle): HTMLElement | null {
  const svcRows = bundle.serviceBuckets;
  if (!svcRows.length) return null;
  return h('div', { class: 'grid charts3' },
    c.add(socketChart(svcRows), svcRows, c.markersOf((m) => !m.pid)),
    c.add(BACKLOG_CHART, svcRows, c.markersOf((m) => !m.pid)),
    c.add(WORKERS_CHART, svcRows, c.markersOf((m) => !m.pid)));
}

/** Host pressure and block devices; null when the bundle has no host series. */
export function hostGrid(c: PostmortemCharts, bundle: Bundle): HTMLElement | null {
  if (!bundle.hostBuckets.length) return null;
  return h('div', { class: 'grid charts3' }, c.add(HOST_CHART, bundle.hostBuckets, () => []),
    c.add(deviceChart(bundle.hostBuckets), bundle.hostBuckets, c.markersOf((m) => m.kind === 'slow-io')));
}
