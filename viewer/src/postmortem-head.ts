/**
 * The post-mortem page's header: where the bundle came from and its downloads,
 * the verdict badge, who died (pid, namespace pid, role, service, container),
 * when and on what host, the summary, and a banner when records were lost.
 */
import type { Bundle, Identity } from './codec';
import { h } from './dom';
import { fmtDateTime, fmtDuration, verdictLabel } from './format';
import { nsPidOf, whereText } from '../../agent/container/label';

export interface PostmortemOptions {
  /** Where the bundle came from, shown in the header. */
  source?: 'agent' | 'file' | 'embedded';
  fileName?: string;
  /** "← live view" link; absent in an export. */
  onBack?: () => void;
  /** Base URL of the bundle downloads (agent only): `${base}.pb`, `${base}.json`. */
  downloadBase?: string;
}

const roleName = (id?: Identity) => (id ? (id.role === 'master' ? 'master' : id.role === 'worker' ? `worker gen ${id.generation}` : id.role) : '');

/** Back link or brand, the bundle's id, its source and its downloads. */
function topRow(bundle: Bundle, opts: PostmortemOptions): HTMLElement {
  return h('div', { class: 'pm-head-top' },
    opts.onBack ? h('button', { class: 'btn ghost', onclick: () => opts.onBack!() }, '← Live view') : h('span', { class: 'brand small' }, h('span', { class: 'brand-mark' }), 'premortem'),
    h('span', { class: 'pm-kicker' }, 'Post-mortem'),
    h('span', { class: 'muted' }, bundle.id),
    h('span', { class: 'grow' }),
    opts.source === 'file' ? h('span', { class: 'chip' }, `opened from ${opts.fileName ?? 'a file'}`) : null,
    opts.source === 'embedded' ? h('span', { class: 'chip' }, 'exported report') : null,
    opts.downloadBase ? h('a', { class: 'btn', href: `${opts.downloadBase}.pb`, download: `${bundle.id}.pb` }, 'Download .pb') : null,
    opts.downloadBase ? h('a', { class: 'btn', href: `${opts.downloadBase}.json`, download: `${bundle.id}.json` }, '.json') : null);
}

/** The verdict badge beside who died, where, when and on what. */
function verdictRow(bundle: Bundle, deathMs: number): HTMLElement {
  const w = bundle.worker;
  const kind = bundle.verdict?.kind ?? 'unknown';
  return h('div', { class: 'pm-verdict-row' },
    h('span', { class: `verdict-badge big v-${kind}`, 'data-testid': 'verdict' }, verdictLabel(kind)),
    h('div', { class: 'pm-who' },
      h('div', { class: 'pm-title' }, `${w?.comm || 'worker'} pid ${w?.pid ?? '?'}`,
        nsPidOf(w) !== undefined ? h('span', { class: 'muted', 'data-testid': 'ns-pid' }, ` (pid ${nsPidOf(w)} in its PID namespace)`) : null,
        h('span', { class: 'muted' }, ` · ${roleName(w)}`),
        bundle.service ? h('span', { class: 'muted' }, ` · ${bundle.service.name}`) : null),
      whereText(bundle.service) ? h('div', { class: 'muted small', 'data-testid': 'where' }, whereText(bundle.service)) : null,
      h('div', { class: 'muted small' }, `died ${fmtDateTime(deathMs)} · lived ${w?.startedMs ? fmtDuration(deathMs - w.startedMs) : '?'} · host ${bundle.host || '?'} · kernel ${bundle.kernel || '?'} · agent ${bundle.agentVersion || '?'}`)));
}

export function postmortemHeader(bundle: Bundle, opts: PostmortemOptions, deathMs: number): HTMLElement {
  return h('header', { class: 'pm-head' },
    topRow(bundle, opts),
    verdictRow(bundle, deathMs),
    h('p', { class: 'pm-summary', 'data-testid': 'summary' }, bundle.verdict?.summary || 'No summary was recorded.'),
    bundle.lostRecords > 0 ? h('div', { class: 'banner warn' }, `${bundle.lostRecords} kernel records were lost while this window was recorded: shaded intervals have gaps, and the verdict may lack evidence.`) : null);
}
