/** The selected service's processes as a table: the newest bucket of each, alive first. */
import type { Bucket, Worker } from '../codec';
import { h, replace } from '../dom';
import { fmtAgo, fmtBytes, fmtDuration, fmtNum, fmtUs, verdictLabel } from '../format';
import { pidLabel, pidTitle } from '../../../agent/container/label';
import { roleRank, type LiveModel } from './model';

/** Rows in the table. */
const MAX_ROWS = 24;
const COLUMNS = ['', 'pid', 'role', 'up', 'runq p50', 'runq p99', 'runq max', 'RSS', 'limit', 'CPU', 'faults/s', 'D-state', 'GC', 'last verdict'];

function workerCells(w: Worker, b: Bucket | undefined, intervalS: number): HTMLElement[] {
  const id = w.identity!;
  const alive = w.state === 'alive';
  const p99 = b?.runqP99Us ?? 0;
  return [
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
    h('td', { class: 'num' }, b ? fmtNum((b.minorFaults + b.majorFaults) / intervalS) : '–'),
    h('td', { class: 'num' }, b ? `${(b.dstateNs / 1e6).toFixed(0)} ms` : '–'),
    h('td', { class: 'num' }, b ? (b.gcPauses ? `${b.gcPauses} · ${(b.gcMaxPauseNs / 1e6).toFixed(1)} ms` : '0') : '–'),
    h('td', null, w.lastVerdict && (w.state === 'dead' || w.lastVerdict.kind !== 'unknown')
      ? h('span', { class: `verdict-badge v-${w.lastVerdict.kind}`, title: w.lastVerdict.summary }, verdictLabel(w.lastVerdict.kind)) : h('span', { class: 'muted' }, '—')),
  ];
}

export function renderWorkerTable(el: HTMLElement | undefined, m: LiveModel, selectWorker: (key: string) => void): void {
  const svcId = m.selectedService;
  if (!el || !svcId) return;
  const ws = m.workersOf(svcId)
    .sort(([, a], [, b]) => (a.state === 'alive' ? 0 : 1) - (b.state === 'alive' ? 0 : 1) || roleRank(a) - roleRank(b) || b.diedMs - a.diedMs || a.identity!.pid - b.identity!.pid)
    .slice(0, MAX_ROWS);
  const iv = m.interval() / 1000;
  replace(el, h('table', { class: 'tbl', 'data-testid': 'workers' },
    h('thead', null, h('tr', null, COLUMNS.map((t) => h('th', null, t)))),
    h('tbody', null, ws.map(([key, w]) => {
      const arr = m.series.workers.get(key) ?? [];
      return h('tr', { class: `${key === m.selectedWorker ? 'sel' : ''}${w.state === 'alive' ? '' : ' dead'}`, 'data-worker': key, onclick: () => selectWorker(key) },
        workerCells(w, arr[arr.length - 1], iv));
    }))));
}
