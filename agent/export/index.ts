/**
 * Exports of a post-mortem, one interface for every format:
 *   json      the proto3 JSON mapping, every field present (json.ts)
 *   pb        the protobuf Bundle as stored, without the file header
 *   perfetto  a Chrome/Perfetto trace: one track per worker (perfetto.ts)
 *   html      one self-contained page: the viewer with the bundle inside (html.ts)
 * Used by `premortem export`; the REST API serves json and pb the same way.
 */
import type { Bundle } from '../../proto/codec';
import { exportBundle as toHtml } from './html';
import { bundleToJson } from './json';
import { exportBundle as toPerfetto } from './perfetto';

export interface Exporter {
  /** What `--format` names. */
  readonly format: string;
  readonly extension: string;
  readonly contentType: string;
  /** The export of one post-mortem; `raw` is the stored protobuf (what pb gives as is). */
  export(bundle: Bundle, raw: Uint8Array): string | Uint8Array;
}

export const EXPORTERS: readonly Exporter[] = [
  { format: 'json', extension: '.json', contentType: 'application/json', export: (b) => JSON.stringify(bundleToJson(b), null, 2) + '\n' },
  { format: 'pb', extension: '.pb', contentType: 'application/x-protobuf', export: (_b, raw) => raw },
  { format: 'perfetto', extension: '.json', contentType: 'application/json', export: (b) => toPerfetto(b) },
  { format: 'html', extension: '.html', contentType: 'text/html', export: (b) => toHtml(b) },
];

export const EXPORT_FORMATS = EXPORTERS.map((e) => e.format);

export function exporterFor(format: string): Exporter | undefined {
  return EXPORTERS.find((e) => e.format === format);
}

export { bundleToJson } from './json';
