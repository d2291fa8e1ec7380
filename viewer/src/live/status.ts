/**
 * The page's chrome about the agent and the connection: the agent's meta
 * (host, version, interval, probes), the connection status chip with records
 * lost, and the banners (disconnected, protocol mismatch, records lost).
 */
import type { Hello } from '../codec';
import { h, replace } from '../dom';
import { fmtClock, fmtDuration, fmtNum } from '../format';
import type { LiveModel } from './model';

/** A loss banner stays this long after the last loss. */
const LOST_BANNER_MS = 60_000;

export function renderMeta(el: HTMLElement, hl: Hello | undefined): void {
  const feats = hl?.features ?? [];
  const on = feats.filter((f) => f.enabled).length;
  const off = feats.filter((f) => !f.enabled);
  const title = feats.map((f) => `${f.enabled ? '●' : '○'} ${f.name}${f.reason ? ` — ${f.reason}` : ''}`).join('\n');
  replace(el,
    hl?.host ? h('span', { class: 'meta-item' }, h('span', { class: 'muted' }, 'host '), hl.host) : null,
    hl ? h('span', { class: 'meta-item' }, h('span', { class: 'muted' }, 'agent '), hl.agentVersion, h('span', { class: 'muted' }, ` · proto v${hl.protocolVersion}`)) : null,
    hl ? h('span', { class: 'meta-item' }, h('span', { class: 'muted' }, 'interval '), `${hl.intervalMs} ms`) : null,
    feats.length ? h('span', { class: `meta-item chip${off.length ? ' warn' : ''}`, title, 'data-testid': 'features' }, `probes ${on}/${feats.length} on`) : null);
}

/** The status chip's class and text for the connection's state (stale: no delta for 3 intervals + 2 s). */
function connLabel(m: LiveModel): { cls: string; text: string } {
  const s = m.connState;
  if (s.kind === 'open') {
    const stale = m.lastDeltaMs && Date.now() - m.lastDeltaMs > 3 * m.interval() + 2000;
    return stale ? { cls: 'st-stale', text: `no data for ${fmtDuration(Date.now() - m.lastDeltaMs)}` } : { cls: 'st-live', text: 'live' };
  }
  if (s.kind === 'waiting') return { cls: 'st-down', text: `disconnected · retry in ${Math.max(0, Math.ceil((s.retryAtMs - Date.now()) / 1000))}s` };
  if (s.kind === 'connecting') return { cls: 'st-connecting', text: s.attempt > 1 ? `reconnecting (attempt ${s.attempt})…` : 'connecting…' };
  return { cls: 'st-down', text: 'incompatible agent' };
}

export function renderStatus(el: HTMLElement, m: LiveModel, retryNow: () => void): void {
  const s = m.connState;
  const { cls, text } = connLabel(m);
  replace(el,
    m.lostTotal ? h('span', { class: 'chip warn', title: `last loss at ${fmtClock(m.lostLastMs)}; intervals with gaps are shaded on the charts`, 'data-testid': 'lost' }, `⚠ ${fmtNum(m.lostTotal, 1)} records lost`) : null,
    h('span', { class: `conn ${cls}`, 'data-testid': 'conn', 'data-state': s.kind }, h('span', { class: 'dot' }), text),
    s.kind === 'waiting' ? h('button', { class: 'btn small', onclick: retryNow }, 'Retry now') : null);
}

export function renderBanners(el: HTMLElement, m: LiveModel): void {
  const s = m.connState;
  const items: HTMLElement[] = [];
  if (s.kind === 'incompatible') {
    items.push(h('div', { class: 'banner error', 'data-testid': 'banner-incompatible' }, h('strong', null, 'Protocol mismatch. '), s.message));
  } else if (s.kind === 'waiting') {
    items.push(h('div', { class: 'banner error', 'data-testid': 'banner-disconnected' },
      h('strong', null, 'Disconnected from the agent. '), `${s.reason}. The charts are frozen; reconnecting by itself (attempt ${s.attempt}).`));
  }
  if (m.lostTotal && Date.now() - m.lostLastMs < LOST_BANNER_MS) {
    items.push(h('div', { class: 'banner warn', 'data-testid': 'banner-lost' },
      h('strong', null, 'Records were lost. '), `The kernel dropped ${fmtNum(m.lostTotal, 1)} records (ring buffer full); shaded intervals on the charts are incomplete.`));
  }
  replace(el, items);
}
