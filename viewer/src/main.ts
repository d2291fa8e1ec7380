/**
 * Viewer entry (dist/viewer/app.js, an IIFE exposed as `premortemViewer`).
 *
 * Two modes:
 *  - live: connects to the agent that served the page (WebSocket /ws).
 *  - embedded: when the page holds
 *      <script type="application/octet-stream" id="premortem-bundle">BASE64</script>
 *    (the raw protobuf Bundle, base64), it shows only that post-mortem and
 *    never connects. A self-contained HTML export is index.html with app.css
 *    and app.js inlined plus that tag.
 */
import 'uplot/dist/uPlot.min.css';
import '../style.css';
import { decodeBundleBytes, codec, type Bundle } from './codec';
import { h } from './dom';
import { LiveApp } from './live';
import { renderPostmortem, type PostmortemHandle, type PostmortemOptions } from './postmortem';

export { renderPostmortem, decodeBundleBytes, codec };
export type { Bundle, PostmortemOptions, PostmortemHandle };

/** The id of the tag that carries an embedded bundle. */
export const EMBEDDED_BUNDLE_ID = 'premortem-bundle';

export function base64ToBytes(b64: string): Uint8Array {
  const bin = atob(b64.replace(/\s+/g, ''));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Renders the post-mortem page of raw bundle bytes (.pb or .pmb) into `root`. */
export function renderBundleBytes(root: HTMLElement, bytes: Uint8Array, opts: PostmortemOptions = {}): PostmortemHandle {
  return renderPostmortem(root, decodeBundleBytes(bytes), opts);
}

/**
 * The embedded post-mortem, if the page carries one: renders it into `root`
 * and returns true; false when there is no #premortem-bundle tag.
 */
export function renderEmbeddedBundle(root: HTMLElement = document.body): boolean {
  const tag = document.getElementById(EMBEDDED_BUNDLE_ID);
  if (!tag) return false;
  const b64 = tag.textContent ?? ''; // read before the page is replaced (the tag may sit inside root)
  document.body.classList.add('embedded');
  const host = h('div', { class: 'app embedded-app' });
  root.replaceChildren(host);
  try {
    const bundle = decodeBundleBytes(base64ToBytes(b64));
    document.title = `premortem · ${bundle.verdict?.kind ?? 'post-mortem'} · pid ${bundle.worker?.pid ?? '?'}`;
    renderPostmortem(host, bundle, { source: 'embedded' });
  } catch (err) {
    host.replaceChildren(h('div', { class: 'empty' }, h('h2', null, 'This report holds no readable post-mortem'), h('p', { class: 'muted' }, (err as Error).message)));
  }
  return true;
}

function wsUrl(): string {
  const u = new URL('ws', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = '';
  u.hash = '';
  return u.toString();
}

/** Starts whichever mode the page is in. */
export function boot(): void {
  const root = document.getElementById('premortem') ?? document.body;
  if (renderEmbeddedBundle(root)) return;
  const app = new LiveApp(root, wsUrl());
  (window as unknown as { premortemApp?: LiveApp }).premortemApp = app;
  app.start();
}

if (typeof document !== 'undefined') {
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot, { once: true });
  else boot();
}
