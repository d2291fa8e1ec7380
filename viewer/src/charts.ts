/**
 * Time-series panels on uPlot: one panel = one chart of a few series over
 * timeline rows (worker buckets, service buckets, host buckets), with
 * markers drawn on the time axis, lost-record gaps shaded, a shared crosshair
 * and a hover card for the nearest marker.
 */
import uPlot from 'uplot';
import type { Marker } from './codec';
import { h } from './dom';
import { fmtBytes, fmtClock, fmtNum, fmtUs } from './format';

export interface Row { tMs: number; gap?: boolean }

export interface SeriesSpec<R> {
  label: string;
  color: string;
  value: (row: R, intervalS: number) => number | null;
  dash?: number[];
  width?: number;
  fill?: boolean;
  /** Scale key: 'y' (left axis, default) or 'y2' (right axis). */
  scale?: 'y' | 'y2';
}

export type Unit = 'us' | 'bytes' | 'count' | 'rate' | 'ms' | 'pct' | 'bytesRate' | 'ratio';

export interface ChartSpec<R> {
  id: string;
  title: string;
  unit: Unit;
  unit2?: Unit;
  log?: boolean;
  series: SeriesSpec<R>[];
  /** A short note under the title (e.g. "per second"). */
  note?: string;
}

export function fmtUnit(unit: Unit, v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return '–';
  switch (unit) {
    case 'us': return fmtUs(v);
    case 'ms': return fmtUs(v * 1000);
    case 'bytes': return fmtBytes(v);
    case 'bytesRate': return `${fmtBytes(v)}/s`;
    case 'rate': return `${fmtNum(v)}/s`;
    case 'pct': return `${v.toFixed(v < 10 ? 1 : 0)}%`;
    case 'ratio': return v.toFixed(2);
    default: return fmtNum(v);
  }
}

/** Axis ticks: compact forms of fmtUnit. */
function axisFmt(unit: Unit): (u: uPlot, vals: number[]) => string[] {
  return (_u, vals) => vals.map((v) => (v == null ? '' : fmtUnit(unit, v).replace(/\.00(?= )/, '')));
}

export const SEVERITY_COLOR: Record<string, string> = {
  info: '#5b8def',
  warning: '#f2a93b',
  critical: '#f2495c',
};

/** Marker kinds that get their own colour on the time axis, whatever their severity. */
const KIND_COLOR: Record<string, string> = {
  'oom': '#f2495c', 'oom-kill': '#f2495c', 'exit': '#e0e4ea', 'death': '#f2495c',
  'gc-pause': '#b877d9', 'slow-wakeup': '#f2a93b', signal: '#5b8def', 'records-lost': '#8a93a3',
};

export function markerColor(m: Pick<Marker, 'kind' | 'severity'>): string {
  if (m.kind === 'exit' && m.severity === 'critical') return '#f2495c';
  return KIND_COLOR[m.kind] ?? SEVERITY_COLOR[m.severity] ?? '#8a93a3';
}

export interface ChartOptions {
  markers?: () => Marker[];
  height?: number;
  syncKey?: string;
  /** Draws a labelled vertical line (e.g. the time of death). */
  deathMs?: number;
  intervalMs?: number;
  /** Attributes set on the panel element (tests look charts up by them). */
  attrs?: Record<string, string>;
}

/** Columnar uPlot data from rows; x in seconds. */
export function toData<R extends Row>(spec: ChartSpec<R>, rows: R[], intervalMs: number): uPlot.AlignedData {
  const s = intervalMs / 1000 || 1;
  const xs = new Array<number>(rows.length);
  const cols = spec.series.map(() => new Array<number | null>(rows.length));
  for (let i = 0; i < rows.length; i++) {
    xs[i] = rows[i].tMs / 1000;
    for (let j = 0; j < spec.series.length; j++) {
      let v = spec.series[j].value(rows[i], s);
      if (spec.log && v != null && v <= 0) v = null;
      cols[j][i] = v;
    }
  }
  return [xs, ...cols] as uPlot.AlignedData;
}

function decades(min: number, max: number): number[] {
  const out: number[] = [];
  for (let v = 10 ** Math.floor(Math.log10(Math.max(1, min))); v <= max * 1.0001; v *= 10) out.push(v);
  return out.length > 4 ? out.filter((_v, i) => i % 2 === 0) : out;
}

export class TimeChart<R extends Row> {
  readonly el: HTMLElement;
  private readonly plotEl: HTMLElement;
  private readonly card: HTMLElement;
  private readonly valueEl: HTMLElement;
  private u?: uPlot;
  private rows: R[] = [];
  private range?: [number, number];
  private readonly resize: ResizeObserver;
  private intervalMs: number;

  constructor(readonly spec: ChartSpec<R>, private readonly opts: ChartOptions = {}) {
    this.intervalMs = opts.intervalMs ?? 1000;
    this.plotEl = h('div', { class: 'plot' });
    this.card = h('div', { class: 'marker-card', hidden: true });
    this.valueEl = h('span', { class: 'panel-now' });
    this.el = h('section', { class: 'panel', 'data-chart': spec.id, 'data-points': '0', ...(opts.attrs ?? {}) },
      h('header', { class: 'panel-head' },
        h('span', { class: 'panel-title' }, spec.title),
        spec.note ? h('span', { class: 'panel-note' }, spec.note) : null,
        this.valueEl),
      this.plotEl, this.card);
    this.resize = new ResizeObserver(() => this.fit());
    this.resize.observe(this.plotEl);
  }

  /** Replaces the rows (sorted by tMs) and redraws; `range` in ms fixes the x axis. */
  setRows(rows: R[], range?: [number, number], intervalMs?: number): void {
    this.rows = rows;
    if (intervalMs) this.intervalMs = intervalMs;
    this.range = range;
    this.el.dataset.points = String(rows.length);
    const last = rows[rows.length - 1];
    const main = this.spec.series[this.spec.series.length > 1 ? 1 : 0] ?? this.spec.series[0];
    if (last && main && this.spec.series.length) {
      const v = main.value(last, this.intervalMs / 1000);
      this.valueEl.textContent = `${main.label} ${fmtUnit(main.scale === 'y2' ? this.spec.unit2 ?? this.spec.unit : this.spec.unit, v)}`;
    } else this.valueEl.textContent = '';
    const data = toData(this.spec, rows, this.intervalMs);
    if (!this.u) {
      if (this.plotEl.clientWidth > 0) this.create(data);
      return;
    }
    this.u.setData(data, !range);
    if (range) this.u.setScale('x', { min: range[0] / 1000, max: range[1] / 1000 });
    this.showLatestInLegend();
  }

  /** Without a cursor on the chart, the legend shows the newest values instead of dashes. */
  private showLatestInLegend(): void {
    const u = this.u;
    if (!u || this.hovering) return;
    // The newest index where some series has a value (the last bucket of a dead worker may be partial).
    let i = u.data[0].length - 1;
    while (i > 0 && u.data.slice(1).every((col) => col[i] == null)) i--;
    if (i >= 0 && u.data[0].length) u.setLegend({ idx: i });
  }
  private hovering = false;

  /** Redraws (markers changed). */
  redraw(): void {
    this.u?.redraw(false);
  }

  destroy(): void {
    this.resize.disconnect();
    this.u?.destroy();
    this.u = undefined;
    this.el.remove();
  }

  private fit(): void {
    const w = this.plotEl.clientWidth;
    if (w <= 0) return;
    if (!this.u) {
      this.create(toData(this.spec, this.rows, this.intervalMs));
      return;
    }
    if (Math.abs(this.u.width - w) > 1) this.u.setSize({ width: w, height: this.opts.height ?? 150 });
  }

  private create(data: uPlot.AlignedData): void {
    const spec = this.spec;
    const height = this.opts.height ?? 150;
    const series: uPlot.Series[] = [
      { label: 'time', value: (_u, v) => (v == null ? '–' : fmtClock(v * 1000)) },
      ...spec.series.map((s): uPlot.Series => ({
        label: s.label,
        stroke: s.color,
        width: s.width ?? 1.5,
        dash: s.dash,
        scale: s.scale ?? 'y',
        fill: s.fill ? s.color + '22' : undefined,
        spanGaps: false,
        // Latency is null in intervals without waits: isolated points must still show.
        points: spec.log ? { show: true, size: 3, fill: s.color } : { show: false },
        value: (_u, v) => fmtUnit(s.scale === 'y2' ? spec.unit2 ?? spec.unit : spec.unit, v),
      })),
    ];
    const hasY2 = spec.series.some((s) => s.scale === 'y2');
    const axisStyle = { stroke: '#8a93a3', grid: { stroke: '#232833', width: 1 }, ticks: { stroke: '#232833', width: 1, size: 4 }, font: '11px system-ui, sans-serif' };
    const axes: uPlot.Axis[] = [
      { ...axisStyle, space: 70, values: (_u, vals) => vals.map((v) => fmtClock(v * 1000)) },
      {
        ...axisStyle, scale: 'y', size: 58, values: axisFmt(spec.unit),
        // Log axes: one tick per decade (uPlot's default draws every 1..9 step).
        ...(spec.log ? { splits: (u: uPlot) => decades(u.scales.y.min ?? 1, u.scales.y.max ?? 1000) } : {}),
      },
    ];
    if (hasY2) axes.push({ ...axisStyle, scale: 'y2', side: 1, size: 52, grid: { show: false }, values: axisFmt(spec.unit2 ?? spec.unit) });
    const self = this;
    const opts: uPlot.Options = {
      width: Math.max(200, this.plotEl.clientWidth),
      height,
      series,
      axes,
      scales: {
        x: { time: false },
        y: spec.log ? { distr: 3, log: 10, range: (_u, min, max) => uPlot.rangeLog(Math.max(1, Math.min(min ?? 10, 10)), Math.max(1000, max ?? 1000), 10, true) }
          : { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
        ...(hasY2 ? { y2: { range: (_u: uPlot, _min: number, max: number) => [0, max > 0 ? max * 1.1 : 1] as uPlot.Range.MinMax } } : {}),
      },
      legend: { show: true, live: true },
      cursor: { sync: this.opts.syncKey ? { key: this.opts.syncKey } : undefined, points: { size: 5 }, drag: { x: false, y: false } },
      hooks: {
        drawClear: [(u) => self.drawGaps(u)],
        draw: [(u) => self.drawMarkers(u)],
        setCursor: [(u) => self.hoverMarker(u)],
        // uPlot commits its first draw after construction: fill the legend then.
        ready: [() => queueMicrotask(() => self.showLatestInLegend())],
      },
    };
    this.u = new uPlot(opts, data, this.plotEl);
    if (this.range) this.u.setScale('x', { min: this.range[0] / 1000, max: this.range[1] / 1000 });
    this.u.over.addEventListener('mouseenter', () => { this.hovering = true; });
    this.u.over.addEventListener('mouseleave', () => { this.hovering = false; this.card.hidden = true; this.showLatestInLegend(); });
    this.showLatestInLegend();
  }

  private drawGaps(u: uPlot): void {
    const ctx = u.ctx;
    const { top, height } = u.bbox;
    ctx.save();
    ctx.fillStyle = 'rgba(138,147,163,0.16)';
    for (const r of this.rows) {
      if (!r.gap) continue;
      const x0 = u.valToPos(r.tMs / 1000, 'x', true);
      const x1 = u.valToPos((r.tMs + this.intervalMs) / 1000, 'x', true);
      ctx.fillRect(x0, top, Math.max(2, x1 - x0), height);
    }
    ctx.restore();
  }

  private visibleMarkers(u: uPlot): Marker[] {
    const min = (u.scales.x.min ?? 0) * 1000, max = (u.scales.x.max ?? 0) * 1000;
    return (this.opts.markers?.() ?? []).filter((m) => m.tMs >= min && m.tMs <= max);
  }

  private drawMarkers(u: uPlot): void {
    const ctx = u.ctx;
    const { top, height, left, width } = u.bbox;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top - 8 * dpr, width, height + 8 * dpr);
    ctx.clip();
    for (const m of this.visibleMarkers(u)) {
      const x = Math.round(u.valToPos(m.tMs / 1000, 'x', true)) + 0.5;
      const color = markerColor(m);
      ctx.strokeStyle = color;
      ctx.globalAlpha = m.severity === 'info' ? 0.45 : 0.8;
      ctx.lineWidth = dpr;
      ctx.setLineDash(m.severity === 'critical' ? [] : [3 * dpr, 3 * dpr]);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
      ctx.fillStyle = color;
      ctx.beginPath(); // a small flag at the top marks the event
      ctx.moveTo(x - 4 * dpr, top);
      ctx.lineTo(x + 4 * dpr, top);
      ctx.lineTo(x, top + 6 * dpr);
      ctx.closePath();
      ctx.fill();
    }
    if (this.opts.deathMs) {
      const x = Math.round(u.valToPos(this.opts.deathMs / 1000, 'x', true)) + 0.5;
      ctx.strokeStyle = '#f2495c';
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
      ctx.fillStyle = '#f2495c';
      ctx.font = `${10 * dpr}px system-ui, sans-serif`;
      ctx.textAlign = 'right';
      ctx.fillText('death', x - 4 * dpr, top + 12 * dpr);
    }
    ctx.restore();
  }

  private hoverMarker(u: uPlot): void {
    const left = u.cursor.left ?? -1;
    if (left < 0) { this.card.hidden = true; return; }
    let best: Marker | undefined;
    let bestD = 6;
    for (const m of this.visibleMarkers(u)) {
      const d = Math.abs(u.valToPos(m.tMs / 1000, 'x') - left);
      if (d <= bestD) { best = m; bestD = d; }
    }
    if (!best) { this.card.hidden = true; return; }
    this.card.hidden = false;
    this.card.replaceChildren(
      h('div', { class: 'marker-card-head' },
        h('span', { class: `sev sev-${best.severity}` }, best.kind), ' ', h('span', { class: 'muted' }, fmtClock(best.tMs, true))),
      h('div', null, best.message));
    const x = u.over.offsetLeft + left;
    this.card.style.left = `${Math.min(x + 10, this.el.clientWidth - 260)}px`;
    this.card.style.top = '34px';
  }
}

/**
 * Rows of several processes aligned on one time axis (for "by process"
 * charts): one output row per distinct tMs, `values[i]` the i-th process's
 * value or null.
 */
export interface MultiRow extends Row { values: Array<number | null> }

export function alignRows<R extends Row>(sets: R[][], value: (r: R, intervalS: number) => number | null, intervalMs: number): MultiRow[] {
  const byT = new Map<number, MultiRow>();
  const s = intervalMs / 1000 || 1;
  sets.forEach((rows, i) => {
    for (const r of rows) {
      let m = byT.get(r.tMs);
      if (!m) { m = { tMs: r.tMs, gap: false, values: sets.map(() => null) }; byT.set(r.tMs, m); }
      m.values[i] = value(r, s);
      if (r.gap) m.gap = true;
    }
  });
  return [...byT.values()].sort((a, b) => a.tMs - b.tMs);
}

export const PROCESS_COLORS = ['#f2495c', '#5794f2', '#73bf69', '#f2cc0c', '#b877d9', '#ff9830', '#8ab8ff', '#96d98d', '#ffb357', '#ca95e5'];
