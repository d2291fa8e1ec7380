/**
 * The post-mortem's "why" section: where the worker's last seconds went (a
 * stacked bar of thread time per scheduler state, the classes with their
 * details, per thread for a multi-threaded worker) and the HTTP requests it
 * had in flight. Renders nothing for a bundle written before these facts
 * existed (they are optional in the format).
 */
import type { RequestInFlight, TimeBreakdown, TimeShares, Verdict } from '../../proto/codec';
import { h } from './dom';
import { fmtClock } from './format';

type Key = keyof TimeShares;
const CLASSES: Array<{ key: Key; label: string; color: string }> = [
  { key: 'onCpuNs', label: 'on CPU', color: '#73bf69' },
  { key: 'runqWaitNs', label: 'waiting for a CPU', color: '#f2cc0c' },
  { key: 'throttledNs', label: 'throttled (CPU quota)', color: '#ff9830' },
  { key: 'blockedIoNs', label: 'blocked (D state)', color: '#f2495c' },
  { key: 'faultWaitNs', label: 'page faults (D)', color: '#b877d9' },
  { key: 'sleepLockNs', label: 'locks (futex, GIL)', color: '#ca95e5' },
  { key: 'sleepNetNs', label: 'sockets / poll (idle)', color: '#5794f2' },
  { key: 'sleepTimerNs', label: 'timers', color: '#8ab8ff' },
  { key: 'sleepOtherNs', label: 'other sleep', color: '#8690a2' },
];

const sec = (ns: number) => `${(ns / 1e9).toFixed(ns >= 100e9 ? 0 : 1)} s`;
const sumOf = (s: TimeShares) => CLASSES.reduce((n, c) => n + s[c.key], 0);

function detail(key: Key, t: TimeBreakdown): string {
  if (key === 'blockedIoNs')
    return [t.blockedDevice, t.bioOps ? `${t.bioOps} block requests` : '', t.bioOps && t.bioLatMaxUs ? `longest ${sec(t.bioLatMaxUs * 1000)}` : '',
      t.blockedSyscall ? `in ${t.blockedSyscall}()` : ''].filter(Boolean).join(', ');
  if (key === 'faultWaitNs' && t.majorFaults) return `${t.majorFaults} major faults`;
  if (key === 'onCpuNs' && t.gcNs) return `${sec(t.gcNs)} in GC pauses`;
  return '';
}

function stackedBar(s: TimeShares, testid?: string): HTMLElement {
  const total = sumOf(s) || 1;
  return h('div', { class: 'why-bar', 'data-testid': testid ?? null },
    CLASSES.filter((c) => s[c.key] > 0).map((c) => h('span', {
      class: 'why-seg', title: `${c.label}: ${sec(s[c.key])}`, 'data-class': c.key,
      style: `width:${((100 * s[c.key]) / total).toFixed(2)}%;background:${c.color}`,
    })));
}

function timeCard(t: TimeBreakdown): HTMLElement | null {
  const s = t.total;
  if (!s || sumOf(s) <= 0) return null;
  const total = sumOf(s);
  const window = t.windowMs % 1000 ? `${(t.windowMs / 1000).toFixed(1)} s` : `${t.windowMs / 1000} s`;
  const rows = CLASSES.filter((c) => s[c.key] >= 1e6).sort((a, b) => s[b.key] - s[a.key]);
  return h('section', { class: 'card why', 'data-testid': 'why-time' },
    h('h3', null, `Where its last ${window} went `, h('span', { class: 'muted small' },
      `(${t.windowSource || 'default'}${t.threads > 1 ? `; thread time of ${t.threads} threads` : ''}${t.scaled ? '; a state begun earlier cut to fit' : ''})`)),
    stackedBar(s, 'why-bar'),
    h('table', { class: 'kv why-classes' }, h('tbody', null, rows.map((c) => h('tr', { 'data-class': c.key },
      h('th', null, h('span', { class: 'why-swatch', style: `background:${c.color}` }), c.label),
      h('td', { class: 'num' }, sec(s[c.key])),
      h('td', { class: 'num muted' }, `${Math.round((100 * s[c.key]) / total)} %`),
      h('td', { class: 'muted' }, detail(c.key, t)))))),
    t.threadTimes.length ? h('table', { class: 'events why-threads', 'data-testid': 'why-threads' }, h('tbody', null,
      t.threadTimes.map((th) => h('tr', null,
        h('td', { class: 'num muted' }, String(th.tid)),
        h('td', null, `${th.name}${th.isMain ? ' (main)' : ''}`),
        h('td', { class: 'why-thread-bar' }, th.time ? stackedBar(th.time) : null),
        h('td', { class: 'muted' }, th.time ? CLASSES.filter((c) => th.time![c.key] >= 50e6).map((c) => `${c.label} ${sec(th.time![c.key])}`).join(', ') : ''))))) : null);
}

function requestsCard(reqs: readonly RequestInFlight[], note: string): HTMLElement {
  return h('section', { class: 'card why', 'data-testid': 'requests' },
    h('h3', null, 'Requests in flight ', h('span', { class: 'muted' }, `(${reqs.length})`)),
    note ? h('p', { class: 'muted' }, note)
      : !reqs.length ? h('p', { class: 'muted' }, 'None: it had answered every request it read.')
        : h('table', { class: 'events' }, h('tbody', null, reqs.map((r) => h('tr', { 'data-testid': 'request' },
          h('td', { class: 'mono' }, `${r.method} ${r.path}${r.truncated ? '…' : ''}`),
          h('td', { class: 'muted' }, `${r.protocol}${r.queryDropped ? ' · query dropped' : ''}`),
          h('td', { class: 'num' }, `running ${sec(r.ageMs * 1e6)}`),
          h('td', { class: 'num muted' }, `read at ${fmtClock(r.startedMs, true)}`),
          h('td', { class: 'muted' }, `thread ${r.tid}, fd ${r.fd}`))))));
}

/** The section for a verdict, or null when the bundle carries none of these facts. */
export function whySection(v: Verdict | undefined): HTMLElement | null {
  if (!v) return null;
  const time = v.timeBreakdown ? timeCard(v.timeBreakdown) : null;
  const reqs = v.timeBreakdown || v.requestsInFlight?.length || v.requestsNote ? requestsCard(v.requestsInFlight ?? [], v.requestsNote ?? '') : null;
  if (!time && !reqs) return null;
  return h('div', { class: 'grid two why-grid' }, time ?? h('div'), reqs);
}
