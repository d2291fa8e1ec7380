/**
 * The live view: services and their workers, per-worker charts updating every
 * interval, per-service sockets and backlog, markers on the time axis,
 * incidents as they happen, and the connection's health (disconnected,
 * records lost, protocol mismatch).
 *
 * LiveApp wires the rooms of live/ together: the stream's frames go into the
 * model (live/model.ts), history requests fill it (live/history.ts), the views
 * read it (sidebar, main view, status); routing switches between the live view
 * and a post-mortem.
 */
import type { Death, IncidentSummary, ServerMessage } from './codec';
import { Connection, type ConnState } from './connection';
import { h, replace } from './dom';
import { fmtDuration, verdictLabel } from './format';
import { renderPostmortem, type PostmortemHandle } from './postmortem';
import { fetchIncidentBundle, incidentBase, readBundleFile } from './live/bundles';
import { HistoryRequests } from './live/history';
import { loadIncidents } from './live/incidents';
import { LiveMainView } from './live/main-view';
import { LiveModel } from './live/model';
import { renderSide } from './live/sidebar';
import { renderBanners, renderMeta, renderStatus } from './live/status';
import { Toasts } from './live/toasts';
import { buildTopbar, dropOverlay, markWindowButton } from './live/topbar';

export class LiveApp {
  private readonly model = new LiveModel();
  private readonly conn: Connection;
  private readonly history: HistoryRequests;
  private readonly toasts = new Toasts();
  private readonly main: LiveMainView;
  private readonly statusEl = h('div', { class: 'status' });
  private readonly metaEl = h('div', { class: 'meta' });
  private readonly bannerEl = h('div', { class: 'banners' });
  private readonly sideEl = h('aside', { class: 'side' });
  private readonly mainEl = h('main', { class: 'main' });
  private postmortem?: PostmortemHandle;
  private mode: 'live' | 'postmortem' = 'live';
  private rafPending = false;
  private sideDirty = true;

  constructor(root: HTMLElement, wsUrl: string) {
    this.main = new LiveMainView(this.model, this.mainEl, (key) => this.selectWorker(key));
    const topbar = buildTopbar({
      metaEl: this.metaEl, statusEl: this.statusEl, windowMs: this.model.windowMs,
      onWindow: (ms, btn) => this.setWindow(ms, btn), onFile: (f) => void this.openFile(f),
    });
    replace(root, h('div', { class: 'app' }, topbar, this.bannerEl, h('div', { class: 'body' }, this.sideEl, this.mainEl)), this.toasts.el, dropOverlay((f) => this.openFile(f)));
    this.conn = new Connection(wsUrl, {
      onMessage: (m) => this.onMessage(m),
      onState: (s) => this.onConnState(s),
      onDecodeError: (msg) => { this.model.decodeErrors++; this.toasts.show('warn', 'A frame from the agent could not be decoded', msg); },
    });
    this.history = new HistoryRequests(this.model, (req) => this.conn.send({ historyRequest: req }));
    window.addEventListener('hashchange', () => this.route());
    setInterval(() => this.renderStatus(), 1000);
  }

  start(): void {
    this.renderStatus();
    this.renderSide();
    this.route();
    this.conn.start();
    void this.loadIncidents();
  }

  // ------------------------------------------------------------ protocol

  private onConnState(s: ConnState): void {
    const wasOpen = this.model.connState.kind === 'open';
    this.model.connState = s;
    if (s.kind === 'open' && !wasOpen) {
      this.conn.send({ subscribe: { all: true } });
      void this.loadIncidents();
    }
    if (s.kind !== 'open') this.history.reset();
    this.renderStatus();
    renderBanners(this.bannerEl, this.model);
  }

  private onMessage(m: ServerMessage): void {
    const model = this.model;
    switch (m.body) {
      case 'hello':
        model.hello = m.hello!;
        renderMeta(this.metaEl, model.hello);
        return;
      case 'snapshot':
        model.applySnapshot(m.snapshot!);
        this.history.request();
        return this.changed(true);
      case 'delta':
        model.applyDelta(m.delta!);
        return this.changed(false);
      case 'death': return this.onDeath(m.death!);
      case 'bundleReady': return this.onBundleReady(m.bundleReady!.incident);
      case 'lost':
        model.addLost(m.lost!.dropped, m.lost!.tMs);
        this.renderStatus();
        renderBanners(this.bannerEl, model);
        return;
      case 'history':
        this.history.answered(m.history!.requestId);
        model.applyHistory(m.history!);
        this.history.pump();
        return this.changed(false);
      case 'error': {
        const e = m.error!;
        // The answer to a history request we gave up on is not worth a toast.
        if (e.code === 'PREMORTEM_ERR_BUSY') return;
        this.toasts.show('error', `Agent error ${e.code}`, e.message);
        return;
      }
      default:
        return;
    }
  }

  private onDeath(d: Death): void {
    this.model.applyDeath(d);
    const id = d.identity;
    const v = d.verdict;
    if (v?.failure !== false) {
      this.toasts.show('incident', `Worker ${id?.pid ?? '?'} ${verdictLabel(v?.kind).toLowerCase()}`, v?.summary ?? '',
        d.bundleId ? () => { location.hash = `#/incident/${encodeURIComponent(d.bundleId)}`; } : undefined, v?.kind, d.bundleId);
    }
    this.changed(true);
  }

  private onBundleReady(inc?: IncidentSummary): void {
    if (!inc) return;
    this.model.incidents.addReady(inc);
    this.changed(true);
  }

  private async loadIncidents(): Promise<void> {
    if (await loadIncidents(this.model.incidents)) this.changed(true);
  }

  // ------------------------------------------------------------ selection and routing

  private selectService(id: string): void {
    this.model.selectService(id);
    if (this.mode !== 'live') location.hash = '#/';
    this.main.invalidate();
    this.changed(true);
  }

  private selectWorker(key: string): void {
    this.model.selectWorker(key);
    if (this.mode !== 'live') location.hash = '#/';
    this.history.request();
    this.main.invalidate();
    this.changed(true);
  }

  private setWindow(ms: number, btn: HTMLElement): void {
    this.model.windowMs = ms;
    markWindowButton(btn);
    if (this.mode === 'live') this.main.charts.update();
  }

  private route(): void {
    const m = /^#\/incident\/(.+)$/.exec(location.hash);
    if (m) {
      void this.openIncident(decodeURIComponent(m[1]));
      return;
    }
    if (location.hash === '#/file' && this.postmortem) return;
    this.showLive();
  }

  private showLive(): void {
    this.postmortem?.destroy();
    this.postmortem = undefined;
    this.mode = 'live';
    this.main.invalidate();
    this.schedule();
  }

  private enterPostmortem(): void {
    this.main.teardown();
    this.postmortem?.destroy();
    this.mode = 'postmortem';
  }

  private async openIncident(id: string): Promise<void> {
    this.enterPostmortem();
    replace(this.mainEl, h('div', { class: 'loading' }, `Loading post-mortem ${id}…`));
    const inc = this.model.incidents.get(id);
    if (inc) inc.fresh = false;
    this.toasts.dismissIncident(id);
    this.changed(true);
    try {
      const bundle = await fetchIncidentBundle(id);
      if (this.mode !== 'postmortem' || location.hash !== `#/incident/${encodeURIComponent(id)}`) return;
      this.postmortem = renderPostmortem(this.mainEl, bundle, { source: 'agent', downloadBase: incidentBase(id), onBack: () => { location.hash = '#/'; } });
    } catch (err) {
      replace(this.mainEl, h('div', { class: 'empty' },
        h('h2', null, 'This post-mortem could not be opened'), h('p', { class: 'muted' }, (err as Error).message),
        h('button', { class: 'btn', onclick: () => { location.hash = '#/'; } }, '← Live view')));
    }
  }

  async openFile(file: File): Promise<void> {
    try {
      const bundle = await readBundleFile(file);
      this.enterPostmortem();
      history.pushState(null, '', '#/file');
      this.postmortem = renderPostmortem(this.mainEl, bundle, { source: 'file', fileName: file.name, onBack: () => { location.hash = '#/'; } });
      this.changed(true);
    } catch (err) {
      this.toasts.show('error', `${file.name} is not a premortem bundle`, (err as Error).message);
    }
  }

  // ------------------------------------------------------------ rendering

  /** Something changed: render at the next frame (sideToo: the sidebar as well). */
  private changed(sideToo: boolean): void {
    if (sideToo) this.sideDirty = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.rafPending) return;
    this.rafPending = true;
    const run = () => {
      this.rafPending = false;
      if (this.sideDirty) { this.sideDirty = false; this.renderSide(); }
      if (this.mode === 'live') this.main.render();
      renderMeta(this.metaEl, this.model.hello);
    };
    // Hidden tabs get no animation frames: fall back to a timer so state stays fresh.
    if (document.hidden) setTimeout(run, 250);
    else requestAnimationFrame(run);
  }

  private renderSide(): void {
    renderSide(this.sideEl, this.model, {
      live: this.mode === 'live', selectService: (id) => this.selectService(id), selectWorker: (key) => this.selectWorker(key),
    });
  }

  private renderStatus(): void {
    renderStatus(this.statusEl, this.model, () => this.conn.retryNow());
  }
}

export { dropOverlay, fmtDuration };
