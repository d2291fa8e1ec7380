/**
 * The post-mortem page's list of timeline events: every marker of the window,
 * newest first (the last 300), with the process it is about.
 */
import type { Marker } from './codec';
import { markerColor } from './charts';
import { h } from './dom';
import { fmtClock } from './format';
import type { PostmortemProcesses } from './postmortem-charts';

/** Rows drawn; older markers are left out (the count in the title still counts them). */
const MAX_EVENT_ROWS = 300;

export function eventsCard(markers: Marker[], procs: PostmortemProcesses): HTMLElement {
  const procOf = new Map(procs.timelines.map((t, i) => [`${t.identity?.pid}:${t.identity?.startTicks}`, procs.labels[i]]));
  return h('section', { class: 'card' },
    h('h3', null, `Timeline events `, h('span', { class: 'muted' }, `(${markers.length})`)),
    markers.length ? h('table', { class: 'events' }, h('tbody', null, markers.slice(-MAX_EVENT_ROWS).reverse().map((m) => h('tr', { class: `sev-row-${m.severity}` },
      h('td', { class: 'num muted' }, fmtClock(m.tMs, true)),
      h('td', null, h('span', { class: 'kind', style: `--c:${markerColor(m)}` }, m.kind)),
      h('td', { class: 'muted' }, m.pid ? procOf.get(`${m.pid}:${m.startTicks}`) ?? `pid ${m.pid}` : m.serviceId ? 'service' : 'host'),
      h('td', null, m.message))))) : h('p', { class: 'muted' }, 'No markers in this window.'));
}
