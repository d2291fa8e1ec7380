/** The selected service's recent markers as a list, newest first. */
import { markerColor } from '../charts';
import { h, replace } from '../dom';
import { fmtClock } from '../format';
import type { LiveModel } from './model';

/** Markers listed. */
const MAX_EVENTS_SHOWN = 60;

export function renderEvents(el: HTMLElement | undefined, m: LiveModel): void {
  const svcId = m.selectedService;
  if (!el || !svcId) return;
  const evs = m.markers.forService(svcId).slice(-MAX_EVENTS_SHOWN).reverse();
  replace(el,
    h('h3', null, 'Events ', h('span', { class: 'muted' }, 'signals, slow wakeups, GC, OOM, exits, pressure')),
    evs.length ? h('table', { class: 'events', 'data-testid': 'events' }, h('tbody', null, evs.map((mk) => h('tr', { class: `sev-row-${mk.severity}` },
      h('td', { class: 'num muted' }, fmtClock(mk.tMs, true)),
      h('td', null, h('span', { class: 'kind', style: `--c:${markerColor(mk)}` }, mk.kind)),
      h('td', { class: 'mono muted' }, mk.pid ? String(mk.pid) : 'svc'),
      h('td', null, mk.message))))) : h('p', { class: 'muted small' }, 'Nothing unusual yet.'));
}
