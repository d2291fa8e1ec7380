/**
 * `premortem export ID --format html`: one self-contained HTML file holding
 * the viewer's post-mortem page with the bundle embedded, to attach to a
 * ticket. It needs no server and no network: dist/viewer/app.css and app.js are
 * inlined, and the protobuf bundle sits base64-encoded in
 *   <script type="application/octet-stream" id="premortem-bundle">
 * which the viewer renders offline (viewer/src/main.ts, embedded mode).
 * A Content-Security-Policy meta tag forbids every fetch, so the report cannot
 * reach out even if a future viewer tried to.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Bundle } from '../../proto/codec';
import { projectRoot } from '../native';
import { loadCodec } from '../../proto/node';

/** The id of the tag the viewer looks for (EMBEDDED_BUNDLE_ID in viewer/src/main.ts). */
export const EMBEDDED_BUNDLE_ID = 'premortem-bundle';

/** No network of any kind; inline script and style only; images and fonts from data: URLs. */
const CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'";

export interface HtmlExportOptions {
  /** Directory holding the built viewer (app.js, app.css); default dist/viewer under the project root. */
  viewerDir?: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Inlined text must not close its element early: `</script` (any case) inside
 * the JS becomes `<\/script`, the same text to JavaScript in a string, a
 * template or a regular expression (the only places esbuild's output can hold it).
 */
export function escapeInlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1');
}

export function escapeInlineStyle(css: string): string {
  return css.replace(/<\/(style)/gi, '<\\/$1');
}

function viewerAsset(dir: string, name: string): string {
  const file = path.join(dir, name);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = new Error(`the viewer is not built (${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): run npm run build`) as Error & { code: string };
    err.code = 'PREMORTEM_ERR_NO_VIEWER';
    throw err;
  }
}

/** The HTML report of a post-mortem. */
export function exportBundle(bundle: Bundle, options: HtmlExportOptions = {}): string {
  const dir = options.viewerDir ?? path.join(projectRoot(), 'dist', 'viewer');
  const css = viewerAsset(dir, 'app.css');
  const js = viewerAsset(dir, 'app.js');
  const bytes = loadCodec().encodeBundle(bundle);
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const v = bundle.verdict;
  const title = `premortem · ${v?.kind ?? 'post-mortem'} · pid ${bundle.worker?.pid ?? '?'}${bundle.service?.name ? ` · ${bundle.service.name}` : ''}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="dark">
<meta name="generator" content="premortem ${escapeHtml(bundle.agentVersion)}">
<title>${escapeHtml(title)}</title>
<style>
${escapeInlineStyle(css)}
</style>
<script>
${escapeInlineScript(js)}
</script>
</head>
<body>
<div id="premortem"><noscript>${escapeHtml(v?.summary ?? '')} (this report needs JavaScript to draw its charts)</noscript></div>
<script type="application/octet-stream" id="${EMBEDDED_BUNDLE_ID}">${b64}</script>
</body>
</html>
`;
}
