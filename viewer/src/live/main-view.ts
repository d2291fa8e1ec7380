/**
 * The main area of the live view for the selected service and worker: built
 * once per selection (charts, tables, events), then fed new rows each frame.
 */
import { h, replace } from '../dom';
import { verdictLabel } from '../format';
import { LiveChartSet } from './chart-set';
import { renderEvents } from './events';
import type { LiveModel } from './model';
import { renderServiceHead } from './service-head';
import { renderWorkerTable } from './worker-table';

export class LiveMainView {
  readonly charts: LiveChartSet;
  /** The selection the layout was built for ('' = build again). */
  private builtFor = '';
  private svcHeadEl?: HTMLElement;
  private workerTable?: HTMLElement;
  private eventsEl?: HTMLElement;

  constructor(private readonly model: LiveModel, private readonly mainEl: HTMLElement, private readonly selectWorker: (key: string) => void) {
    this.charts = new LiveChartSet(model);
  }

  /** The next render builds the layout again. */
  invalidate(): void {
    this.builtFor = '';
  }

  /** Leaves the live view: its charts go. */
  teardown(): void {
    this.charts.destroy();
    this.builtFor = '';
  }

  /** Builds the chart layout for the selection once, then feeds it new rows. */
  render(): void {
    const m = this.model;
    const sig = `${m.selectedService}|${m.selectedWorker}`;
    if (sig !== this.builtFor) this.build(sig);
    this.charts.update();
    renderServiceHead(this.svcHeadEl, m);
    renderWorkerTable(this.workerTable, m, this.selectWorker);
    renderEvents(this.eventsEl, m);
  }

  private build(sig: string): void {
    const m = this.model;
    this.charts.destroy();
    this.builtFor = sig;
    const svc = m.selectedService ? m.services.get(m.selectedService) : undefined;
    if (!svc) {
      replace(this.mainEl, h('div', { class: 'empty' },
        h('h2', null, m.connState.kind === 'open' ? 'No Python web workers on this host yet' : 'Connecting to the premortem agent…'),
        h('p', { class: 'muted' }, 'premortem finds gunicorn, uvicorn, uwsgi, hypercorn, daphne, celery and plain python servers by itself. Drop a post-mortem bundle (.pb) anywhere to read it offline.')));
      return;
    }
    const key = m.selectedWorker;
    const w = key ? m.workers.get(key) : undefined;
    const parts = this.charts.build(svc, key);
    this.svcHeadEl = h('div', { class: 'svc-banner' });
    this.workerTable = h('div', { class: 'card flush' });
    this.eventsEl = h('section', { class: 'card' });
    const id = w?.identity;
    replace(this.mainEl, h('div', { class: 'live', 'data-view': 'live' },
      this.svcHeadEl,
      h('div', { class: 'grid charts3' }, parts.serviceCharts),
      this.workerTable,
      h('h2', { class: 'section' }, id ? h('span', null, `Worker pid ${id.pid} `, h('span', { class: 'muted' }, `${id.role === 'worker' ? `generation ${id.generation}` : id.role} · ${id.comm}`),
        w?.state === 'dead' ? h('span', { class: `verdict-badge v-${w.lastVerdict?.kind ?? 'unknown'}` }, verdictLabel(w.lastVerdict?.kind)) : null) : 'No worker selected'),
      h('div', { class: 'grid charts3' }, parts.workerCharts),
      h('div', { class: 'grid two-1' }, this.eventsEl, h('div', null, parts.hostCharts))));
  }
}
