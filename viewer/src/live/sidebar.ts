/**
 * The sidebar: services with their workers (alive first, then the latest
 * deaths), and the incidents, newest first.
 */
import type { Service, Worker } from '../codec';
import { h, replace } from '../dom';
import { fmtAgo, fmtClock, verdictLabel } from '../format';
import { pidLabel, pidTitle, whereText } from '../../../agent/container/label';
import { roleRank, type LiveModel } from './model';

/** Dead workers listed per service in the sidebar. */
const DEAD_SHOWN_PER_SERVICE = 4;
/** Incidents listed in the sidebar. */
const MAX_INCIDENTS_SHOWN = 100;

export interface SidebarActions {
  /** The live view is shown (selection is highlighted only there). */
  live: boolean;
  selectService(id: string): void;
  selectWorker(key: string): void;
}

function workerRow(m: LiveModel, a: SidebarActions, key: string, w: Worker): HTMLElement {
  const id = w.identity!;
  return h('li', { class: `wk${key === m.selectedWorker && a.live ? ' sel' : ''}${w.state === 'alive' ? '' : ' dead'}`, 'data-worker': key, onclick: () => a.selectWorker(key) },
    h('span', { class: `dot ${w.state === 'alive' ? 'ok' : 'bad'}` }),
    h('span', { class: 'mono', title: pidTitle(id) }, pidLabel(id)),
    h('span', { class: 'muted small' }, id.role === 'master' ? 'master' : id.role === 'worker' ? `g${id.generation}` : id.role),
    h('span', { class: 'grow' }),
    w.lastVerdict && w.lastVerdict.kind !== 'unknown' || w.state === 'dead'
      ? h('span', { class: `verdict-badge v-${w.lastVerdict?.kind ?? 'unknown'}`, title: w.lastVerdict?.summary ?? '' }, verdictLabel(w.lastVerdict?.kind)) : null);
}

function serviceBlock(m: LiveModel, a: SidebarActions, s: Service): HTMLElement {
  const ws = m.workersOf(s.id);
  const alive = ws.filter(([, w]) => w.state === 'alive').sort(([, x], [, y]) => roleRank(x) - roleRank(y) || (x.identity!.pid - y.identity!.pid));
  const dead = ws.filter(([, w]) => w.state !== 'alive').sort(([, x], [, y]) => y.diedMs - x.diedMs);
  const rows = [...alive, ...dead.slice(0, DEAD_SHOWN_PER_SERVICE)].map(([key, w]) => workerRow(m, a, key, w));
  return h('div', { class: `svc${s.id === m.selectedService && a.live ? ' sel' : ''}`, 'data-service': s.id },
    h('div', { class: 'svc-head', onclick: () => a.selectService(s.id) },
      h('span', { class: `kind k-${s.kind}` }, s.kind),
      h('span', { class: 'svc-name', title: [s.name, whereText(s)].filter(Boolean).join(' — ') }, s.name.replace(/^\w+\s/, '')),
      whereText(s) ? h('span', { class: 'muted small', 'data-testid': 'svc-where-short' }, whereText(s).split(' · ')[0]) : null,
      h('span', { class: 'muted small' }, `${alive.filter(([, w]) => w.identity?.role === 'worker').length}w`)),
    h('ul', { class: 'wk-list' }, rows),
    dead.length > DEAD_SHOWN_PER_SERVICE ? h('div', { class: 'muted small more' }, `+ ${dead.length - DEAD_SHOWN_PER_SERVICE} earlier deaths`) : null);
}

function incidentsSection(m: LiveModel): HTMLElement {
  const incidents = [...m.incidents.values()].sort((a, b) => b.tMs - a.tMs).slice(0, MAX_INCIDENTS_SHOWN);
  const current = /^#\/incident\/(.+)$/.exec(location.hash)?.[1];
  return h('div', { class: 'side-sec' },
    h('h4', null, 'Incidents', h('span', { class: `count${incidents.some((i) => i.fresh) ? ' hot' : ''}` }, String(m.incidents.size))),
    incidents.length ? h('ul', { class: 'inc-list', 'data-testid': 'incidents' }, incidents.map((i) =>
      h('li', { class: `inc${i.fresh ? ' fresh' : ''}${current && decodeURIComponent(current) === i.id ? ' sel' : ''}`, 'data-incident': i.id, 'data-verdict': i.verdictKind,
        onclick: () => { location.hash = `#/incident/${encodeURIComponent(i.id)}`; } },
      h('div', { class: 'inc-top' },
        h('span', { class: `verdict-badge v-${i.verdictKind}` }, verdictLabel(i.verdictKind)),
        h('span', { class: 'grow' }),
        h('span', { class: 'muted small', title: new Date(i.tMs).toLocaleString() }, `${fmtClock(i.tMs)} · ${fmtAgo(i.tMs)}`)),
      h('div', { class: 'inc-sub' }, h('span', { class: 'mono' }, `pid ${i.pid}`), ' ', h('span', { class: 'muted' }, i.service), i.pending ? h('span', { class: 'muted small' }, ' · writing…') : null),
      h('div', { class: 'inc-sum', title: i.summary }, i.summary)))) : h('p', { class: 'muted small pad' }, 'No worker has died. When one does, its post-mortem appears here.'));
}

export function renderSide(el: HTMLElement, m: LiveModel, a: SidebarActions): void {
  const services = [...m.services.values()].sort((x, y) => x.name.localeCompare(y.name));
  const svcBlocks = services.map((s) => serviceBlock(m, a, s));
  replace(el,
    h('div', { class: 'side-sec' },
      h('h4', null, 'Services', h('span', { class: 'count' }, String(services.length))),
      services.length ? svcBlocks : h('p', { class: 'muted small pad' }, m.connState.kind === 'open' ? 'No Python services found yet. Start gunicorn, uvicorn… the agent finds them within seconds.' : 'Waiting for the agent…')),
    incidentsSection(m));
}
