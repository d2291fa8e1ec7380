/**
 * The live charts of one selection (worker, service, host) and how they follow
 * the data: each chart reads its rows, shows the chosen window, and charts whose
 * series follow the data (socket states, devices) are rebuilt when those change.
 */
import type { Bucket, HostBucket, ServiceBucket, Service } from '../codec';
import { TimeChart, type ChartOptions, type ChartSpec } from '../charts';
import { BACKLOG_CHART, deviceChart, HOST_CHART, socketChart, WORKERS_CHART, WORKER_CHARTS } from '../specs';
import type { LiveModel } from './model';

/** respec: charts whose series follow the data (socket states, devices) rebuild their spec from the rows shown. */
interface LiveChart { chart: TimeChart<any>; rows: () => Array<{ tMs: number }>; respec?: (rows: any[]) => ChartSpec<any>; opts?: ChartOptions }

/** Charts of one selection share a cursor. */
const SYNC_KEY = 'live';

export interface ChartSetParts {
  workerCharts: HTMLElement[];
  serviceCharts: HTMLElement[];
  hostCharts: HTMLElement[];
}

export class LiveChartSet {
  private charts: LiveChart[] = [];

  constructor(private readonly model: LiveModel) {}

  destroy(): void {
    for (const c of this.charts) c.chart.destroy();
    this.charts = [];
  }

  /** Builds the charts of a worker (key) and its service; returns their elements. */
  build(svc: Service, key: string | undefined): ChartSetParts {
    const m = this.model;
    const iv = m.interval();
    const wMarkers = () => m.markers.forWorker(key, svc.id);
    const sMarkers = () => m.markers.forService(svc.id);
    const workerCharts = WORKER_CHARTS.map((spec) => {
      const chart = new TimeChart<Bucket>(spec, { markers: wMarkers, height: 150, syncKey: SYNC_KEY, intervalMs: iv, attrs: { 'data-worker': key ?? '', 'data-scope': 'live' } });
      this.charts.push({ chart, rows: () => (key ? m.series.workers.get(key) ?? [] : []) });
      return chart.el;
    });
    const svcRows = () => m.series.services.get(svc.id) ?? [];
    const svcOpts = (): ChartOptions => ({ markers: sMarkers, height: 150, syncKey: SYNC_KEY, intervalMs: iv, attrs: { 'data-service': svc.id, 'data-scope': 'live' } });
    const socketOpts = svcOpts();
    const sockets = new TimeChart<ServiceBucket>(socketChart(svcRows()), socketOpts);
    const backlog = new TimeChart<ServiceBucket>(BACKLOG_CHART, svcOpts());
    const tcp = new TimeChart<ServiceBucket>(WORKERS_CHART, svcOpts());
    const host = new TimeChart<HostBucket>(HOST_CHART, { height: 110, syncKey: SYNC_KEY, intervalMs: iv, attrs: { 'data-scope': 'live' } });
    const diskOpts = { height: 110, syncKey: SYNC_KEY, intervalMs: iv, attrs: { 'data-scope': 'live' } };
    const disks = new TimeChart<HostBucket>(deviceChart(m.series.host), diskOpts);
    this.charts.push({ chart: sockets, rows: svcRows, respec: socketChart, opts: socketOpts }, { chart: backlog, rows: svcRows }, { chart: tcp, rows: svcRows },
      { chart: host, rows: () => m.series.host }, { chart: disks, rows: () => m.series.host, respec: deviceChart, opts: diskOpts });
    return { workerCharts, serviceCharts: [sockets.el, backlog.el, tcp.el], hostCharts: [host.el, disks.el] };
  }

  /** Feeds each chart the rows of the chosen window, ending now (or at the newest bucket). */
  update(): void {
    const m = this.model;
    const now = Math.max(m.lastDeltaMs ? Date.now() : 0, ...m.series.workerEndsMs(m.interval()));
    for (const entry of this.charts) {
      const { chart, rows } = entry;
      const all = rows();
      const from = now - m.windowMs;
      let i = 0;
      while (i < all.length && all[i].tMs < from) i++;
      const shown = i ? all.slice(i) : all;
      const start = shown.length ? Math.max(from, shown[0].tMs - m.interval()) : from;
      if (entry.respec) {
        // New socket states and devices appear over time: rebuild the series when they change.
        const spec = entry.respec(shown);
        if (spec.series.map((s) => s.label).join() !== chart.spec.series.map((s) => s.label).join()) {
          const fresh = new TimeChart(spec, entry.opts);
          chart.el.replaceWith(fresh.el);
          chart.destroy();
          entry.chart = fresh;
          fresh.setRows(shown, [start, now], m.interval());
          continue;
        }
      }
      chart.setRows(shown, [start, now], m.interval());
    }
  }
}
