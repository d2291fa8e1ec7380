/** The selected service's banner: kind, name, master, ports, where it runs, and its numbers now. */
import type { Identity } from '../codec';
import { h, replace } from '../dom';
import { fmtClock } from '../format';
import { pidLabel, whereText } from '../../../agent/container/label';
import type { LiveModel } from './model';

const stat = (label: string, value: string, tone = '') => h('div', { class: `stat ${tone}` }, h('div', { class: 'stat-v' }, value), h('div', { class: 'stat-l' }, label));

export function renderServiceHead(el: HTMLElement | undefined, m: LiveModel): void {
  const svc = m.selectedService ? m.services.get(m.selectedService) : undefined;
  if (!svc || !el) return;
  const rows = m.series.services.get(svc.id) ?? [];
  const last = rows[rows.length - 1];
  const ws = [...m.workers.values()].filter((w) => w.identity?.serviceId === svc.id);
  const deaths = ws.filter((w) => w.state === 'dead').length;
  const master = ws.find((w) => w.identity?.role === 'master' && w.identity.pid === svc.masterPid);
  const cw = last?.socketStates.CLOSE_WAIT ?? 0;
  replace(el,
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
