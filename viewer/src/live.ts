/**
 * The live view: services and their workers, per-worker charts updating every
 * interval, per-service sockets and backlog, markers on the time axis,
 * incidents as they happen, and the connection's health (disconnected,
 * records lost, protocol mismatch).
 */
import {
  codec, workerKey, type Bucket, type Death, type Delta, type Hello, type History, type HostBucket,
  type Identity, type IncidentSummary, type Marker, type Service, type ServiceBucket, type ServerMessage, type Snapshot, type Worker,
} from './codec';
import { TimeChart, markerColor, type ChartOptions, type ChartSpec } from './charts';
import { Connection, type ConnState } from './connection';
import { h, replace } from './dom';
import { fmtAgo, fmtBytes, fmtClock, fmtDuration, fmtNum, fmtUs, verdictLabel } from './format';
import { renderPostmortem, type PostmortemHandle } from './postmortem';
import { decodeBundleBytes } from './codec';
import { BACKLOG_CHART, deviceChart, HOST_CHART, socketChart, WORKERS_CHART, WORKER_CHARTS } from './specs';
import { pidLabel, pidTitle, whereText } from '../../agent/container/label';

/** Points kept per series when Hello does not say (window / interval). */
const DEFAULT_MAX_POINTS = 600;
/** Hard cap on points per series, whatever the agent's window. */
const MAX_POINTS_CAP = 3600;
/** Markers kept in the page (oldest dropped). */
const MAX_MARKERS = 5000;
/** History requests in flight (the agent allows 2 per client). */
const HISTORY_IN_FLIGHT = 2;
/** History keys of services (not workers) start with this. */
const SERVICE_HISTORY = 'svc:';
/** Workers whose history is fetched after (re)connecting. */
const MAX_HISTORY_WORKERS = 64;
/** Dead workers listed per service in the sidebar. */
const DEAD_SHOWN_PER_SERVICE = 4;
/** Incidents listed in the sidebar. */
const MAX_INCIDENTS_SHOWN = 100;
const TOAST_MS = 12_000;

const WINDOWS: Array<[string, number]> = [['1m', 60_000], ['5m', 300_000], ['15m', 900_000]];

interface IncidentItem extends IncidentSummary { pending: boolean; fresh: boolean }

function insertSorted<T extends { tMs: number }>(arr: T[], item: T, cap: number): void {
  const n = arr.length;
  if (!n || arr[n - 1].tMs < item.tMs) arr.push(item);
  else {
    let i = n - 1;
    while (i >= 0 && arr[i].tMs > item.tMs) i--;
    if (i >= 0 && arr[i].tMs === item.tMs) arr[i] = item;
    else arr.splice(i + 1, 0, item);
  }
  if (arr.length > cap) arr.splice(0, arr.length - cap);
}

const markerId = (m: Marker) => `${m.tMs}|${m.kind}|${m.pid}|${m.startTicks}|${m.serviceId}|${m.message}`;

export class LiveApp {
  private hello?: Hello;
  private services = new Map<string, Service>();
  private workers = new Map<string, Worker>();
  private series = new Map<string, Bucket[]>();
  private svcSeries = new Map<string, ServiceBucket[]>();
  private hostSeries: HostBucket[] = [];
  private markers: Marker[] = [];
  private markerIds = new Set<string>();
  private incidents = new Map<string, IncidentItem>();
  private lostTotal = 0;
  private lostLastMs = 0;
  private gapIntervals = 0;
  private decodeErrors = 0;
  private lastDeltaMs = 0;
  private selectedService?: string;
  private selectedWorker?: string;
  private windowMs = 300_000;
  private conn: Connection;
  private connState: ConnState = { kind: 'connecting', attempt: 0 };
  private historyQueue: string[] = [];
  private historyInFlight = new Map<number, string>();
  private nextRequestId = 1;
  private historyDone = new Set<string>();
  private hostHistoryAsked = false;

  // DOM
  private readonly root: HTMLElement;
  private readonly statusEl = h('div', { class: 'status' });
  private readonly metaEl = h('div', { class: 'meta' });
  private readonly bannerEl = h('div', { class: 'banners' });
  private readonly sideEl = h('aside', { class: 'side' });
  private readonly mainEl = h('main', { class: 'main' });
  private readonly toastEl = h('div', { class: 'toasts' });
  /** respec: charts whose series follow the data (socket states, devices) rebuild their spec from the rows shown. */
  private liveCharts: Array<{ chart: TimeChart<any>; rows: () => Array<{ tMs: number }>; respec?: (rows: any[]) => ChartSpec<any>; opts?: ChartOptions }> = [];
  private liveMainBuilt = '';
  private workerTable?: HTMLElement;
  private eventsEl?: HTMLElement;
  private svcHeadEl?: HTMLElement;
  private postmortem?: PostmortemHandle;
  private mode: 'live' | 'postmortem' = 'live';
  private rafPending = false;
  private sideDirty = true;

  constructor(root: HTMLElement, wsUrl: string) {
    this.root = root;
    const fileInput = h('input', { type: 'file', accept: '.pb,.pmb,application/x-protobuf,application/octet-stream', hidden: true }) as HTMLInputElement;
    fileInput.addEventListener('change', () => {
      const f = fileInput.files?.[0];
      if (f) void this.openFile(f);
      fileInput.value = '';
    });
    const topbar = h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/' }, h('span', { class: 'brand-mark' }), 'premortem'),
      this.metaEl,
      h('span', { class: 'grow' }),
      h('div', { class: 'seg', role: 'group', 'aria-label': 'time window' }, WINDOWS.map(([label, ms]) =>
        h('button', { class: `seg-btn${ms === this.windowMs ? ' on' : ''}`, 'data-window': ms, onclick: (ev: Event) => this.setWindow(ms, ev.currentTarget as HTMLElement) }, label))),
      h('button', { class: 'btn', onclick: () => fileInput.click(), title: 'Open a post-mortem bundle (.pb) from disk; or drop it anywhere on the page' }, 'Open bundle…'),
      fileInput,
      this.statusEl);
    replace(root, h('div', { class: 'app' }, topbar, this.bannerEl, h('div', { class: 'body' }, this.sideEl, this.mainEl)), this.toastEl, dropOverlay((f) => this.openFile(f)));
    this.conn = new Connection(wsUrl, {
      onMessage: (m) => this.onMessage(m),
      onState: (s) => this.onConnState(s),
      onDecodeError: (msg) => { this.decodeErrors++; this.toast('warn', 'A frame from the agent could not be decoded', msg); },
    });
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
    const wasOpen = this.connState.kind === 'open';
    this.connState = s;
    if (s.kind === 'open' && !wasOpen) {
      this.conn.send({ subscribe: { all: true } });
      void this.loadIncidents();
    }
    if (s.kind !== 'open') {
      this.historyInFlight.clear();
      this.historyQueue = [];
      this.historyDone.clear(); // after a reconnect, refill what was missed
      this.hostHistoryAsked = false;
    }
    this.renderStatus();
    this.renderBanners();
  }

  private onMessage(m: ServerMessage): void {
    switch (m.body) {
      case 'hello': return this.onHello(m.hello!);
      case 'snapshot': return this.onSnapshot(m.snapshot!);
      case 'delta': return this.onDelta(m.delta!);
      case 'death': return this.onDeath(m.death!);
      case 'bundleReady': return this.onBundleReady(m.bundleReady!.incident);
      case 'lost':
        this.lostTotal += m.lost!.dropped;
        this.lostLastMs = m.lost!.tMs || Date.now();
        this.renderStatus();
        this.renderBanners();
        return;
      case 'history': return this.onHistory(m.history!);
      case 'error': {
        const e = m.error!;
        // The answer to a history request we gave up on is not worth a toast.
        if (e.code === 'PREMORTEM_ERR_BUSY') return;
        this.toast('error', `Agent error ${e.code}`, e.message);
        return;
      }
      default:
        return;
    }
  }

  private maxPoints(): number {
    const h0 = this.hello;
    if (!h0 || !h0.windowMs || !h0.intervalMs) return DEFAULT_MAX_POINTS;
    return Math.min(MAX_POINTS_CAP, Math.ceil(h0.windowMs / h0.intervalMs));
  }

  private interval(): number {
    return this.hello?.intervalMs || 1000;
  }

  private onHello(hello: Hello): void {
    this.hello = hello;
    this.renderMeta();
  }

  private onSnapshot(s: Snapshot): void {
    this.services = new Map(s.services.map((x) => [x.id, x]));
    const next = new Map<string, Worker>();
    for (const w of s.workers) if (w.identity) next.set(workerKey(w.identity.pid, w.identity.startTicks), w);
    this.workers = next;
    for (const k of [...this.series.keys()]) if (!next.has(k)) this.series.delete(k);
    for (const k of [...this.svcSeries.keys()]) if (!this.services.has(k)) this.svcSeries.delete(k);
    if (!this.selectedService || !this.services.has(this.selectedService)) this.selectedService = this.defaultService();
    if (!this.selectedWorker || !this.workers.has(this.selectedWorker)) this.selectedWorker = this.defaultWorker(this.selectedService);
    this.queueHistory();
    this.sideDirty = true;
    this.schedule();
  }

  private onDelta(d: Delta): void {
    const cap = this.maxPoints();
    this.lastDeltaMs = Date.now();
    for (const wb of d.workers) {
      if (!wb.bucket) continue;
      const key = workerKey(wb.pid, wb.startTicks);
      let arr = this.series.get(key);
      if (!arr) this.series.set(key, (arr = []));
      insertSorted(arr, wb.bucket, cap);
      if (wb.bucket.gap) this.gapIntervals++;
    }
    for (const sb of d.services) {
      let arr = this.svcSeries.get(sb.serviceId);
      if (!arr) this.svcSeries.set(sb.serviceId, (arr = []));
      insertSorted(arr, sb, cap);
    }
    if (d.host) insertSorted(this.hostSeries, d.host, cap);
    this.addMarkers(d.markers);
    this.schedule();
  }

  private addMarkers(ms: Marker[]): void {
    for (const m of ms) {
      const id = markerId(m);
      if (this.markerIds.has(id)) continue;
      this.markerIds.add(id);
      insertSorted(this.markers, m, Number.MAX_SAFE_INTEGER);
    }
    if (this.markers.length > MAX_MARKERS) {
      for (const m of this.markers.splice(0, this.markers.length - MAX_MARKERS)) this.markerIds.delete(markerId(m));
    }
  }

  private onDeath(d: Death): void {
    const id = d.identity;
    if (id) {
      const key = workerKey(id.pid, id.startTicks);
      const w = this.workers.get(key);
      this.workers.set(key, { identity: id, state: 'dead', lastVerdict: d.verdict, diedMs: d.tMs });
      if (!w && !this.services.has(id.serviceId)) { /* topology follows in the next snapshot */ }
    }
    const v = d.verdict;
    if (d.bundleId && !this.incidents.has(d.bundleId)) {
      this.incidents.set(d.bundleId, {
        id: d.bundleId, tMs: d.tMs, service: this.services.get(id?.serviceId ?? '')?.name ?? '', serviceId: id?.serviceId ?? '',
        pid: id?.pid ?? 0, startTicks: id?.startTicks ?? 0, verdictKind: v?.kind ?? 'unknown', summary: v?.summary ?? '',
        failure: v?.failure ?? true, bytes: 0, pending: true, fresh: true,
      });
    }
    if (v?.failure !== false) {
      this.toast('incident', `Worker ${id?.pid ?? '?'} ${verdictLabel(v?.kind).toLowerCase()}`, v?.summary ?? '',
        d.bundleId ? () => { location.hash = `#/incident/${encodeURIComponent(d.bundleId)}`; } : undefined, v?.kind, d.bundleId);
    }
    this.sideDirty = true;
    this.schedule();
  }

  private onBundleReady(inc?: IncidentSummary): void {
    if (!inc) return;
    const prev = this.incidents.get(inc.id);
    this.incidents.set(inc.id, { ...inc, pending: false, fresh: prev?.fresh ?? true });
    this.sideDirty = true;
    this.schedule();
  }

  private async loadIncidents(): Promise<void> {
    try {
      const res = await fetch('api/incidents', { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!res.ok) return;
      const body = (await res.json()) as { incidents?: unknown[] };
      for (const raw of body.incidents ?? []) {
        const inc = codec().normalize<IncidentSummary>('IncidentSummary', raw);
        const prev = this.incidents.get(inc.id);
        this.incidents.set(inc.id, { ...inc, pending: false, fresh: prev?.fresh ?? false });
      }
      this.sideDirty = true;
      this.schedule();
    } catch {
      // The stream's state already tells the user when the agent is unreachable.
    }
  }

  // ---- history: fill the charts with what the agent kept before we connected

  private queueHistory(): void {
    const alive = [...this.workers.entries()].filter(([, w]) => w.state === 'alive').map(([k]) => k);
    const ordered = [this.selectedWorker, ...alive].filter((k): k is string => !!k && alive.includes(k));
    // Services (and, with the first, the host) too: their charts start empty otherwise.
    const svcs = [...this.services.keys()].map((id) => `${SERVICE_HISTORY}${id}`);
    for (const k of [...svcs, ...ordered.slice(0, MAX_HISTORY_WORKERS)]) {
      if (this.historyDone.has(k) || this.historyQueue.includes(k) || [...this.historyInFlight.values()].includes(k)) continue;
      this.historyQueue.push(k);
    }
    this.pumpHistory();
  }

  private pumpHistory(): void {
    while (this.historyInFlight.size < HISTORY_IN_FLIGHT && this.historyQueue.length && this.connState.kind === 'open') {
      const key = this.historyQueue.shift()!;
      const requestId = this.nextRequestId++;
      const now = Date.now();
      const from = now - Math.min(this.hello?.windowMs || 600_000, this.maxPoints() * this.interval());
      const serviceId = key.startsWith(SERVICE_HISTORY) ? key.slice(SERVICE_HISTORY.length) : '';
      const host = serviceId !== '' && !this.hostHistoryAsked;
      const req = serviceId ? { requestId, workerKey: '', serviceId, host, fromMs: from, toMs: now } : { requestId, workerKey: key, fromMs: from, toMs: now };
      if (!this.conn.send({ historyRequest: req })) break;
      if (host) this.hostHistoryAsked = true;
      this.historyInFlight.set(requestId, key);
      this.historyDone.add(key);
    }
  }

  private onHistory(hist: History): void {
    this.historyInFlight.delete(hist.requestId);
    const cap = this.maxPoints();
    for (const tl of hist.timelines) {
      if (!tl.identity) continue;
      const key = workerKey(tl.identity.pid, tl.identity.startTicks);
      let arr = this.series.get(key);
      if (!arr) this.series.set(key, (arr = []));
      for (const b of tl.buckets) insertSorted(arr, b, cap);
    }
    for (const sb of hist.serviceBuckets ?? []) {
      let arr = this.svcSeries.get(sb.serviceId);
      if (!arr) this.svcSeries.set(sb.serviceId, (arr = []));
      insertSorted(arr, sb, cap);
    }
    for (const hb of hist.hostBuckets ?? []) insertSorted(this.hostSeries, hb, cap);
    this.addMarkers(hist.markers);
    this.pumpHistory();
    this.schedule();
  }

  // ------------------------------------------------------------ selection and routing

  private defaultService(): string | undefined {
    const svcs = [...this.services.values()];
    const withWorkers = svcs.find((s) => [...this.workers.values()].some((w) => w.identity?.serviceId === s.id && w.state === 'alive' && w.identity.role === 'worker'));
    return (withWorkers ?? svcs[0])?.id;
  }

  private defaultWorker(serviceId?: string): string | undefined {
    const ws = [...this.workers.entries()].filter(([, w]) => w.identity?.serviceId === serviceId && w.state === 'alive');
    const worker = ws.find(([, w]) => w.identity?.role === 'worker') ?? ws[0];
    return worker?.[0];
  }

  private selectService(id: string): void {
    this.selectedService = id;
    this.selectedWorker = this.defaultWorker(id);
    if (this.mode !== 'live') location.hash = '#/';
    this.sideDirty = true;
    this.liveMainBuilt = '';
    this.schedule();
  }

  private selectWorker(key: string): void {
    const w = this.workers.get(key);
    if (w?.identity) this.selectedService = w.identity.serviceId;
    this.selectedWorker = key;
    if (this.mode !== 'live') location.hash = '#/';
    this.queueHistory();
    this.sideDirty = true;
    this.liveMainBuilt = '';
    this.schedule();
  }

  private setWindow(ms: number, btn: HTMLElement): void {
    this.windowMs = ms;
    btn.parentElement?.querySelectorAll('.seg-btn').forEach((b) => b.classList.toggle('on', b === btn));
    this.updateCharts();
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
    this.liveMainBuilt = '';
    this.schedule();
  }

  private enterPostmortem(): void {
    for (const c of this.liveCharts) c.chart.destroy();
    this.liveCharts = [];
    this.liveMainBuilt = '';
    this.postmortem?.destroy();
    this.mode = 'postmortem';
  }

  private async openIncident(id: string): Promise<void> {
    this.enterPostmortem();
    replace(this.mainEl, h('div', { class: 'loading' }, `Loading post-mortem ${id}…`));
    const inc = this.incidents.get(id);
    if (inc) inc.fresh = false;
    // The toast that announced this incident has done its job.
    this.toastEl.querySelectorAll(`[data-incident="${CSS.escape(id)}"]`).forEach((t) => t.remove());
    this.sideDirty = true;
    this.schedule();
    try {
      const base = `api/incidents/${encodeURIComponent(id)}`;
      const res = await fetch(`${base}.pb`, { cache: 'no-store' });
      if (!res.ok) {
        let msg = `${res.status} ${res.statusText}`;
        try { msg = ((await res.json()) as { error?: { message?: string } }).error?.message ?? msg; } catch { /* not JSON */ }
        throw new Error(msg);
      }
      const bundle = decodeBundleBytes(new Uint8Array(await res.arrayBuffer()));
      if (this.mode !== 'postmortem' || location.hash !== `#/incident/${encodeURIComponent(id)}`) return;
      this.postmortem = renderPostmortem(this.mainEl, bundle, { source: 'agent', downloadBase: base, onBack: () => { location.hash = '#/'; } });
    } catch (err) {
      replace(this.mainEl, h('div', { class: 'empty' },
        h('h2', null, 'This post-mortem could not be opened'), h('p', { class: 'muted' }, (err as Error).message),
        h('button', { class: 'btn', onclick: () => { location.hash = '#/'; } }, '← Live view')));
    }
  }

  async openFile(file: File): Promise<void> {
    try {
      const bundle = decodeBundleBytes(new Uint8Array(await file.arrayBuffer()));
      this.enterPostmortem();
      history.pushState(null, '', '#/file');
      this.postmortem = renderPostmortem(this.mainEl, bundle, { source: 'file', fileName: file.name, onBack: () => { location.hash = '#/'; } });
      this.sideDirty = true;
      this.schedule();
    } catch (err) {
      this.toast('error', `${file.name} is not a premortem bundle`, (err as Error).message);
    }
  }

  // ------------------------------------------------------------ rendering

  private schedule(): void {
    if (this.rafPending) return;
    this.rafPending = true;
    const run = () => {
      this.rafPending = false;
      if (this.sideDirty) { this.sideDirty = false; this.renderSide(); }
      if (this.mode === 'live') this.renderLiveMain();
      this.renderMeta();
    };
    // Hidden tabs get no animation frames: fall back to a timer so state stays fresh.
    if (document.hidden) setTimeout(run, 250);
    else requestAnimationFrame(run);
  }

  private renderMeta(): void {
    const hl = this.hello;
    const feats = hl?.features ?? [];
    const on = feats.filter((f) => f.enabled).length;
    const off = feats.filter((f) => !f.enabled);
    const title = feats.map((f) => `${f.enabled ? '●' : '○'} ${f.name}${f.reason ? ` — ${f.reason}` : ''}`).join('\n');
    replace(this.metaEl,
      hl?.host ? h('span', { class: 'meta-item' }, h('span', { class: 'muted' }, 'host '), hl.host) : null,
      hl ? h('span', { class: 'meta-item' }, h('span', { class: 'muted' }, 'agent '), hl.agentVersion, h('span', { class: 'muted' }, ` · proto v${hl.protocolVersion}`)) : null,
      hl ? h('span', { class: 'meta-item' }, h('span', { class: 'muted' }, 'interval '), `${hl.intervalMs} ms`) : null,
      feats.length ? h('span', { class: `meta-item chip${off.length ? ' warn' : ''}`, title, 'data-testid': 'features' }, `probes ${on}/${feats.length} on`) : null);
  }

  private renderStatus(): void {
    const s = this.connState;
    let cls = 'st-connecting', text = 'connecting…';
    if (s.kind === 'open') {
      const stale = this.lastDeltaMs && Date.now() - this.lastDeltaMs > 3 * this.interval() + 2000;
      cls = stale ? 'st-stale' : 'st-live';
      text = stale ? `no data for ${fmtDuration(Date.now() - this.lastDeltaMs)}` : 'live';
    } else if (s.kind === 'waiting') {
      cls = 'st-down';
      text = `disconnected · retry in ${Math.max(0, Math.ceil((s.retryAtMs - Date.now()) / 1000))}s`;
    } else if (s.kind === 'connecting') {
      text = s.attempt > 1 ? `reconnecting (attempt ${s.attempt})…` : 'connecting…';
    } else if (s.kind === 'incompatible') {
      cls = 'st-down';
      text = 'incompatible agent';
    }
    replace(this.statusEl,
      this.lostTotal ? h('span', { class: 'chip warn', title: `last loss at ${fmtClock(this.lostLastMs)}; intervals with gaps are shaded on the charts`, 'data-testid': 'lost' }, `⚠ ${fmtNum(this.lostTotal, 1)} records lost`) : null,
      h('span', { class: `conn ${cls}`, 'data-testid': 'conn', 'data-state': s.kind }, h('span', { class: 'dot' }), text),
      s.kind === 'waiting' ? h('button', { class: 'btn small', onclick: () => this.conn.retryNow() }, 'Retry now') : null);
  }

  private renderBanners(): void {
    const s = this.connState;
    const items: HTMLElement[] = [];
    if (s.kind === 'incompatible') {
      items.push(h('div', { class: 'banner error', 'data-testid': 'banner-incompatible' }, h('strong', null, 'Protocol mismatch. '), s.message));
    } else if (s.kind === 'waiting') {
      items.push(h('div', { class: 'banner error', 'data-testid': 'banner-disconnected' },
        h('strong', null, 'Disconnected from the agent. '), `${s.reason}. The charts are frozen; reconnecting by itself (attempt ${s.attempt}).`));
    }
    if (this.lostTotal && Date.now() - this.lostLastMs < 60_000) {
      items.push(h('div', { class: 'banner warn', 'data-testid': 'banner-lost' },
        h('strong', null, 'Records were lost. '), `The kernel dropped ${fmtNum(this.lostTotal, 1)} records (ring buffer full); shaded intervals on the charts are incomplete.`));
    }
    replace(this.bannerEl, items);
  }

  private renderSide(): void {
    const services = [...this.services.values()].sort((a, b) => a.name.localeCompare(b.name));
    const svcBlocks = services.map((s) => {
      const ws = [...this.workers.entries()].filter(([, w]) => w.identity?.serviceId === s.id);
      const alive = ws.filter(([, w]) => w.state === 'alive').sort(([, a], [, b]) => roleRank(a) - roleRank(b) || (a.identity!.pid - b.identity!.pid));
      const dead = ws.filter(([, w]) => w.state !== 'alive').sort(([, a], [, b]) => b.diedMs - a.diedMs);
      const rows = [...alive, ...dead.slice(0, DEAD_SHOWN_PER_SERVICE)].map(([key, w]) => {
        const id = w.identity!;
        return h('li', { class: `wk${key === this.selectedWorker && this.mode === 'live' ? ' sel' : ''}${w.state === 'alive' ? '' : ' dead'}`, 'data-worker': key, onclick: () => this.selectWorker(key) },
          h('span', { class: `dot ${w.state === 'alive' ? 'ok' : 'bad'}` }),
          h('span', { class: 'mono', title: pidTitle(id) }, pidLabel(id)),
          h('span', { class: 'muted small' }, id.role === 'master' ? 'master' : id.role === 'worker' ? `g${id.generation}` : id.role),
          h('span', { class: 'grow' }),
          w.lastVerdict && w.lastVerdict.kind !== 'unknown' || w.state === 'dead'
            ? h('span', { class: `verdict-badge v-${w.lastVerdict?.kind ?? 'unknown'}`, title: w.lastVerdict?.summary ?? '' }, verdictLabel(w.lastVerdict?.kind)) : null);
      });
      return h('div', { class: `svc${s.id === this.selectedService && this.mode === 'live' ? ' sel' : ''}`, 'data-service': s.id },
        h('div', { class: 'svc-head', onclick: () => this.selectService(s.id) },
          h('span', { class: `kind k-${s.kind}` }, s.kind),
          h('span', { class: 'svc-name', title: [s.name, whereText(s)].filter(Boolean).join(' — ') }, s.name.replace(/^\w+\s/, '')),
          whereText(s) ? h('span', { class: 'muted small', 'data-testid': 'svc-where-short' }, whereText(s).split(' · ')[0]) : null,
          h('span', { class: 'muted small' }, `${alive.filter(([, w]) => w.identity?.role === 'worker').length}w`)),
        h('ul', { class: 'wk-list' }, rows),
        dead.length > DEAD_SHOWN_PER_SERVICE ? h('div', { class: 'muted small more' }, `+ ${dead.length - DEAD_SHOWN_PER_SERVICE} earlier deaths`) : null);
    });
    const incidents = [...this.incidents.values()].sort((a, b) => b.tMs - a.tMs).slice(0, MAX_INCIDENTS_SHOWN);
    const current = /^#\/incident\/(.+)$/.exec(location.hash)?.[1];
    replace(this.sideEl,
      h('div', { class: 'side-sec' },
        h('h4', null, 'Services', h('span', { class: 'count' }, String(services.length))),
        services.length ? svcBlocks : h('p', { class: 'muted small pad' }, this.connState.kind === 'open' ? 'No Python services found yet. Start gunicorn, uvicorn… the agent finds them within seconds.' : 'Waiting for the agent…')),
      h('div', { class: 'side-sec' },
        h('h4', null, 'Incidents', h('span', { class: `count${incidents.some((i) => i.fresh) ? ' hot' : ''}` }, String(this.incidents.size))),
        incidents.length ? h('ul', { class: 'inc-list', 'data-testid': 'incidents' }, incidents.map((i) =>
          h('li', { class: `inc${i.fresh ? ' fresh' : ''}${current && decodeURIComponent(current) === i.id ? ' sel' : ''}`, 'data-incident': i.id, 'data-verdict': i.verdictKind,
            onclick: () => { location.hash = `#/incident/${encodeURIComponent(i.id)}`; } },
          h('div', { class: 'inc-top' },
            h('span', { class: `verdict-badge v-${i.verdictKind}` }, verdictLabel(i.verdictKind)),
            h('span', { class: 'grow' }),
            h('span', { class: 'muted small', title: new Date(i.tMs).toLocaleString() }, `${fmtClock(i.tMs)} · ${fmtAgo(i.tMs)}`)),
          h('div', { class: 'inc-sub' }, h('span', { class: 'mono' }, `pid ${i.pid}`), ' ', h('span', { class: 'muted' }, i.service), i.pending ? h('span', { class: 'muted small' }, ' · writing…') : null),
          h('div', { class: 'inc-sum', title: i.summary }, i.summary)))) : h('p', { class: 'muted small pad' }, 'No worker has died. When one does, its post-mortem appears here.')));
  }

  /** Builds the chart layout for the selection once, then feeds it new rows. */
  private renderLiveMain(): void {
    const sig = `${this.selectedService}|${this.selectedWorker}`;
    if (sig !== this.liveMainBuilt) this.buildLiveMain(sig);
    this.updateCharts();
    this.renderServiceHead();
    this.renderWorkerTable();
    this.renderEvents();
  }

  private buildLiveMain(sig: string): void {
    for (const c of this.liveCharts) c.chart.destroy();
    this.liveCharts = [];
    this.liveMainBuilt = sig;
    const svc = this.selectedService ? this.services.get(this.selectedService) : undefined;
    if (!svc) {
      replace(this.mainEl, h('div', { class: 'empty' },
        h('h2', null, this.connState.kind === 'open' ? 'No Python web workers on this host yet' : 'Connecting to the premortem agent…'),
        h('p', { class: 'muted' }, 'premortem finds gunicorn, uvicorn, uwsgi, hypercorn, daphne, celery and plain python servers by itself. Drop a post-mortem bundle (.pb) anywhere to read it offline.')));
      return;
    }
    const key = this.selectedWorker;
    const w = key ? this.workers.get(key) : undefined;
    const sync = 'live';
    const wMarkers = () => this.markers.filter((m) => (m.pid && `${m.pid}:${m.startTicks}` === key) || (!m.pid && (!m.serviceId || m.serviceId === svc.id)));
    const sMarkers = () => this.markers.filter((m) => m.serviceId === svc.id || (!m.pid && !m.serviceId));
    const workerCharts = WORKER_CHARTS.map((spec) => {
      const chart = new TimeChart<Bucket>(spec, { markers: wMarkers, height: 150, syncKey: sync, intervalMs: this.interval(), attrs: { 'data-worker': key ?? '', 'data-scope': 'live' } });
      this.liveCharts.push({ chart, rows: () => (key ? this.series.get(key) ?? [] : []) });
      return chart.el;
    });
    const svcRows = () => this.svcSeries.get(svc.id) ?? [];
    const socketOpts = { markers: sMarkers, height: 150, syncKey: sync, intervalMs: this.interval(), attrs: { 'data-service': svc.id, 'data-scope': 'live' } };
    const sockets = new TimeChart<ServiceBucket>(socketChart(svcRows()), socketOpts);
    const backlog = new TimeChart<ServiceBucket>(BACKLOG_CHART, { markers: sMarkers, height: 150, syncKey: sync, intervalMs: this.interval(), attrs: { 'data-service': svc.id, 'data-scope': 'live' } });
    const tcp = new TimeChart<ServiceBucket>(WORKERS_CHART, { markers: sMarkers, height: 150, syncKey: sync, intervalMs: this.interval(), attrs: { 'data-service': svc.id, 'data-scope': 'live' } });
    const host = new TimeChart<HostBucket>(HOST_CHART, { height: 110, syncKey: sync, intervalMs: this.interval(), attrs: { 'data-scope': 'live' } });
    const diskOpts = { height: 110, syncKey: sync, intervalMs: this.interval(), attrs: { 'data-scope': 'live' } };
    const disks = new TimeChart<HostBucket>(deviceChart(this.hostSeries), diskOpts);
    this.liveCharts.push({ chart: sockets, rows: svcRows, respec: socketChart, opts: socketOpts }, { chart: backlog, rows: svcRows }, { chart: tcp, rows: svcRows },
      { chart: host, rows: () => this.hostSeries }, { chart: disks, rows: () => this.hostSeries, respec: deviceChart, opts: diskOpts });
    this.svcHeadEl = h('div', { class: 'svc-banner' });
    this.workerTable = h('div', { class: 'card flush' });
    this.eventsEl = h('section', { class: 'card' });
    const id = w?.identity;
    replace(this.mainEl, h('div', { class: 'live', 'data-view': 'live' },
      this.svcHeadEl,
      h('div', { class: 'grid charts3' }, sockets.el, backlog.el, tcp.el),
      this.workerTable,
      h('h2', { class: 'section' }, id ? h('span', null, `Worker pid ${id.pid} `, h('span', { class: 'muted' }, `${id.role === 'worker' ? `generation ${id.generation}` : id.role} · ${id.comm}`),
        w?.state === 'dead' ? h('span', { class: `verdict-badge v-${w.lastVerdict?.kind ?? 'unknown'}` }, verdictLabel(w.lastVerdict?.kind)) : null) : 'No worker selected'),
      h('div', { class: 'grid charts3' }, workerCharts),
      h('div', { class: 'grid two-1' }, this.eventsEl, h('div', null, host.el, disks.el))));
  }

  private updateCharts(): void {
    if (this.mode !== 'live') return;
    const now = Math.max(this.lastDeltaMs ? Date.now() : 0, ...[...this.series.values()].map((a) => (a.length ? a[a.length - 1].tMs + this.interval() : 0)));
    for (const entry of this.liveCharts) {
      const { chart, rows } = entry;
      const all = rows();
      const from = now - this.windowMs;
      let i = 0;
      while (i < all.length && all[i].tMs < from) i++;
      const shown = i ? all.slice(i) : all;
      const start = shown.length ? Math.max(from, shown[0].tMs - this.interval()) : from;
      if (entry.respec) {
        // New socket states and devices appear over time: rebuild the series when they change.
        const spec = entry.respec(shown);
        if (spec.series.map((s) => s.label).join() !== chart.spec.series.map((s) => s.label).join()) {
          const fresh = new TimeChart(spec, entry.opts);
          chart.el.replaceWith(fresh.el);
          chart.destroy();
          entry.chart = fresh;
          fresh.setRows(shown, [start, now], this.interval());
          continue;
        }
      }
      chart.setRows(shown, [start, now], this.interval());
    }
  }

  private renderServiceHead(): void {
    const svc = this.selectedService ? this.services.get(this.selectedService) : undefined;
    if (!svc || !this.svcHeadEl) return;
    const rows = this.svcSeries.get(svc.id) ?? [];
    const last = rows[rows.length - 1];
    const ws = [...this.workers.values()].filter((w) => w.identity?.serviceId === svc.id);
    const deaths = ws.filter((w) => w.state === 'dead').length;
    const master = ws.find((w) => w.identity?.role === 'master' && w.identity.pid === svc.masterPid);
    const cw = last?.socketStates.CLOSE_WAIT ?? 0;
    const stat = (label: string, value: string, tone = '') => h('div', { class: `stat ${tone}` }, h('div', { class: 'stat-v' }, value), h('div', { class: 'stat-l' }, label));
    replace(this.svcHeadEl,
      h('div', { class: 'svc-title' },
        h('span', { class: `kind k-${svc.kind}` }, svc.kind),
        h('h1', null, svc.name),
        h('span', { class: 'muted' }, `master pid ${pidLabel(master?.identity ?? { pid: svc.masterPid } as Identity)}${svc.ports.length ? ` · ports ${svc.ports.join(', ')}` : ''}${svc.unit ? ` · ${svc.unit}` : ''}`),
        whereText(svc) ? h('span', { class: 'muted', 'data-testid': 'svc-where' }, ` · ${whereText(svc)}`) : null),
      h('div', { class: 'stats' },
        stat('workers alive', String(ws.filter((w) => w.state === 'alive' && w.identity?.role === 'worker').length)),
        stat('deaths seen', String(deaths), deaths ? 'bad' : ''),
        stat('established', String(last?.socketStates.ESTABLISHED ?? 0)),
        stat('CLOSE_WAIT', String(cw), cw >= 10 ? 'bad' : cw ? 'warn' : ''),
        stat('backlog', last ? `${last.backlogDepth}/${last.backlogMax || '?'}` : '–', last && last.backlogMax && last.backlogDepth >= 0.8 * last.backlogMax ? 'bad' : ''),
        svc.pressure ? stat(`cgroup PSI cpu·mem·io at ${fmtClock(svc.pressure.tMs)}`, `${svc.pressure.cpuSomeAvg10.toFixed(0)} · ${svc.pressure.memorySomeAvg10.toFixed(0)} · ${svc.pressure.ioSomeAvg10.toFixed(0)} %`,
          Math.max(svc.pressure.cpuSomeAvg10, svc.pressure.memorySomeAvg10, svc.pressure.ioSomeAvg10) >= 20 ? 'warn' : '') : null));
  }

  private renderWorkerTable(): void {
    const svcId = this.selectedService;
    if (!this.workerTable || !svcId) return;
    const ws = [...this.workers.entries()].filter(([, w]) => w.identity?.serviceId === svcId)
      .sort(([, a], [, b]) => (a.state === 'alive' ? 0 : 1) - (b.state === 'alive' ? 0 : 1) || roleRank(a) - roleRank(b) || b.diedMs - a.diedMs || a.identity!.pid - b.identity!.pid)
      .slice(0, 24);
    const iv = this.interval() / 1000;
    replace(this.workerTable, h('table', { class: 'tbl', 'data-testid': 'workers' },
      h('thead', null, h('tr', null, ['', 'pid', 'role', 'up', 'runq p50', 'runq p99', 'runq max', 'RSS', 'limit', 'CPU', 'faults/s', 'D-state', 'GC', 'last verdict'].map((t) => h('th', null, t)))),
      h('tbody', null, ws.map(([key, w]) => {
        const id = w.identity!;
        const arr = this.series.get(key) ?? [];
        const b = arr[arr.length - 1];
        const alive = w.state === 'alive';
        const p99 = b?.runqP99Us ?? 0;
        return h('tr', { class: `${key === this.selectedWorker ? 'sel' : ''}${alive ? '' : ' dead'}`, 'data-worker': key, onclick: () => this.selectWorker(key) },
          h('td', null, h('span', { class: `dot ${alive ? 'ok' : 'bad'}` })),
          h('td', { class: 'mono', title: pidTitle(id) }, pidLabel(id)),
          h('td', null, id.role === 'worker' ? `worker g${id.generation}` : id.role),
          h('td', { class: 'num' }, alive ? fmtDuration(Date.now() - id.startedMs) : fmtAgo(w.diedMs)),
          h('td', { class: 'num' }, b && b.runqCount ? fmtUs(b.runqP50Us) : '–'),
          h('td', { class: `num${p99 > 50_000 ? ' bad' : p99 > 10_000 ? ' warn' : ''}` }, b && b.runqCount ? fmtUs(p99) : '–'),
          h('td', { class: 'num' }, b && b.runqCount ? fmtUs(b.runqMaxUs) : '–'),
          h('td', { class: 'num' }, b ? fmtBytes(b.rssBytes) : '–'),
          h('td', { class: `num${b && b.cgroupLimitBytes && b.rssBytes > 0.9 * b.cgroupLimitBytes ? ' bad' : ''}` }, b && b.cgroupLimitBytes ? fmtBytes(b.cgroupLimitBytes) : '–'),
          h('td', { class: 'num' }, b && b.intervalMs ? `${((100 * b.cpuMs) / b.intervalMs).toFixed(0)}%` : '–'),
          h('td', { class: 'num' }, b ? fmtNum((b.minorFaults + b.majorFaults) / iv) : '–'),
          h('td', { class: 'num' }, b ? `${(b.dstateNs / 1e6).toFixed(0)} ms` : '–'),
          h('td', { class: 'num' }, b ? (b.gcPauses ? `${b.gcPauses} · ${(b.gcMaxPauseNs / 1e6).toFixed(1)} ms` : '0') : '–'),
          h('td', null, w.lastVerdict && (w.state === 'dead' || w.lastVerdict.kind !== 'unknown')
            ? h('span', { class: `verdict-badge v-${w.lastVerdict.kind}`, title: w.lastVerdict.summary }, verdictLabel(w.lastVerdict.kind)) : h('span', { class: 'muted' }, '—')));
      }))));
  }

  private renderEvents(): void {
    const svcId = this.selectedService;
    if (!this.eventsEl || !svcId) return;
    const evs = this.markers.filter((m) => m.serviceId === svcId || (!m.pid && !m.serviceId)).slice(-60).reverse();
    replace(this.eventsEl,
      h('h3', null, 'Events ', h('span', { class: 'muted' }, 'signals, slow wakeups, GC, OOM, exits, pressure')),
      evs.length ? h('table', { class: 'events', 'data-testid': 'events' }, h('tbody', null, evs.map((m) => h('tr', { class: `sev-row-${m.severity}` },
        h('td', { class: 'num muted' }, fmtClock(m.tMs, true)),
        h('td', null, h('span', { class: 'kind', style: `--c:${markerColor(m)}` }, m.kind)),
        h('td', { class: 'mono muted' }, m.pid ? String(m.pid) : 'svc'),
        h('td', null, m.message))))) : h('p', { class: 'muted small' }, 'Nothing unusual yet.'));
  }

  // ------------------------------------------------------------ toasts

  private toast(kind: 'incident' | 'error' | 'warn', title: string, body: string, onOpen?: () => void, verdict?: string, incidentId?: string): void {
    const el = h('div', { class: `toast t-${kind}`, 'data-testid': `toast-${kind}`, 'data-incident': incidentId },
      h('div', { class: 'toast-head' }, verdict ? h('span', { class: `verdict-badge v-${verdict}` }, verdictLabel(verdict)) : null, h('strong', null, title),
        h('span', { class: 'grow' }), h('button', { class: 'x', onclick: () => el.remove(), title: 'dismiss' }, '×')),
      body ? h('div', { class: 'toast-body' }, body) : null,
      onOpen ? h('button', { class: 'btn small', onclick: () => { el.remove(); onOpen(); } }, 'Open post-mortem →') : null);
    this.toastEl.prepend(el);
    while (this.toastEl.children.length > 4) this.toastEl.lastElementChild?.remove();
    setTimeout(() => el.remove(), TOAST_MS);
  }
}

function roleRank(w: Worker): number {
  const r = w.identity?.role;
  return r === 'master' ? 0 : r === 'worker' ? 1 : 2;
}

/** A full-page target for dropping a bundle file. */
export function dropOverlay(onFile: (f: File) => void): HTMLElement {
  const el = h('div', { class: 'drop', hidden: true }, h('div', { class: 'drop-box' }, h('div', { class: 'drop-title' }, 'Drop a premortem bundle'), h('div', { class: 'muted' }, '.pb (export / download) or .pmb (store file)')));
  let depth = 0;
  const hasFiles = (e: DragEvent) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  window.addEventListener('dragenter', (e) => { if (!hasFiles(e)) return; depth++; el.hidden = false; e.preventDefault(); });
  window.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) el.hidden = true; });
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    el.hidden = true;
    const f = e.dataTransfer?.files?.[0];
    if (f) onFile(f);
  });
  return el;
}

export { fmtDuration };
