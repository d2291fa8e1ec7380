/** Toasts: incidents as they happen, agent errors, undecodable frames; the newest on top. */
import { h } from '../dom';
import { verdictLabel } from '../format';

const TOAST_MS = 12_000;
/** Toasts shown at once (the oldest go first). */
const MAX_TOASTS = 4;

export type ToastKind = 'incident' | 'error' | 'warn';

export class Toasts {
  readonly el = h('div', { class: 'toasts' });

  show(kind: ToastKind, title: string, body: string, onOpen?: () => void, verdict?: string, incidentId?: string): void {
    const el = h('div', { class: `toast t-${kind}`, 'data-testid': `toast-${kind}`, 'data-incident': incidentId },
      h('div', { class: 'toast-head' }, verdict ? h('span', { class: `verdict-badge v-${verdict}` }, verdictLabel(verdict)) : null, h('strong', null, title),
        h('span', { class: 'grow' }), h('button', { class: 'x', onclick: () => el.remove(), title: 'dismiss' }, '×')),
      body ? h('div', { class: 'toast-body' }, body) : null,
      onOpen ? h('button', { class: 'btn small', onclick: () => { el.remove(); onOpen(); } }, 'Open post-mortem →') : null);
    this.el.prepend(el);
    while (this.el.children.length > MAX_TOASTS) this.el.lastElementChild?.remove();
    setTimeout(() => el.remove(), TOAST_MS);
  }

  /** The toast that announced an incident has done its job once the incident is open. */
  dismissIncident(id: string): void {
    this.el.querySelectorAll(`[data-incident="${CSS.escape(id)}"]`).forEach((t) => t.remove());
  }
}
