/**
 * The controls around the live view: the top bar (brand, agent meta, time
 * window, "Open bundle…", connection status) and the page-wide drop target for
 * a bundle file.
 */
import { h } from '../dom';

/** The chart windows offered, label and length. */
const WINDOWS: Array<[string, number]> = [['1m', 60_000], ['5m', 300_000], ['15m', 900_000]];

export interface TopbarParts {
  metaEl: HTMLElement;
  statusEl: HTMLElement;
  windowMs: number;
  onWindow(ms: number, btn: HTMLElement): void;
  onFile(f: File): void;
}

export function buildTopbar(p: TopbarParts): HTMLElement {
  const fileInput = h('input', { type: 'file', accept: '.pb,.pmb,application/x-protobuf,application/octet-stream', hidden: true }) as HTMLInputElement;
  fileInput.addEventListener('change', () => {
    const f = fileInput.files?.[0];
    if (f) p.onFile(f);
    fileInput.value = '';
  });
  return h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/' }, h('span', { class: 'brand-mark' }), 'premortem'),
    p.metaEl,
    h('span', { class: 'grow' }),
    h('div', { class: 'seg', role: 'group', 'aria-label': 'time window' }, WINDOWS.map(([label, ms]) =>
      h('button', { class: `seg-btn${ms === p.windowMs ? ' on' : ''}`, 'data-window': ms, onclick: (ev: Event) => p.onWindow(ms, ev.currentTarget as HTMLElement) }, label))),
    h('button', { class: 'btn', onclick: () => fileInput.click(), title: 'Open a post-mortem bundle (.pb) from disk; or drop it anywhere on the page' }, 'Open bundle…'),
    fileInput,
    p.statusEl);
}

/** Marks the pressed window button. */
export function markWindowButton(btn: HTMLElement): void {
  btn.parentElement?.querySelectorAll('.seg-btn').forEach((b) => b.classList.toggle('on', b === btn));
}

/** A full-page target for dropping a bundle file. */
export function dropOverlay(onFile: (f: File) => void): HTMLElement {
  const el = h('div', { class: 'drop', hidden: true }, h('div', { class: 'drop-box' }, h('div', { class: 'drop-title' }, 'Drop a premortem bundle'), h('div', { class: 'muted' }, '.pb (export / download) or .pmb (store file)')));
  let depth = 0;
  const hasFiles = (e: DragEvent) => !!e.dataTransfer && [...e.dataTransfer.types].includes('Files');
  window.addEventListener('dragenter', (e) => { if (!hasFiles(e)) return; depth++; el.hidden = false; e.preventDefault(); });
  window.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) el.hidden = true; });
  window.addEventListener('dragover', (e) => { if (hasFiles(e)) e.preventDefault(); });
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    el.hidden = true;
    const f = e.dataTransfer?.files?.[0];
    if (f) onFile(f);
  });
  return el;
}
