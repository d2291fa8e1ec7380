/**
 * The read commands: list, show, export. They open the post-mortem directory
 * read-only (agent/store.ts): no mkdir, no chmod, no cleanup, no retention.
 */
import * as fs from 'fs';
import { DEFAULTS } from '../../config';
import { createBundleStore, isValidBundleId, type BundleStore } from '../../store';
import { bundleToJson, EXPORT_FORMATS, exporterFor } from '../../export';
import { loadCodec } from '../../../proto/node';
import { get, UsageError, type ParsedCommand } from '../args';
import { formatBundle, formatIncidentLine } from '../format';
import { writeOut } from '../output';
import { EXIT } from '../spec';

async function openReadOnly(p: ParsedCommand): Promise<BundleStore> {
  const store = createBundleStore({ dir: get.str(p, 'data-dir') ?? DEFAULTS.dataDir, readOnly: true });
  await store.ready();
  return store;
}

function bundleId(p: ParsedCommand): string {
  const id = p.positionals[0];
  if (!isValidBundleId(id)) throw new UsageError(`'${id}' is not a post-mortem id (see premortem list)`, p.cmd);
  return id;
}

export async function list(p: ParsedCommand): Promise<number> {
  const store = await openReadOnly(p);
  try {
    const incidents = await store.list();
    if (get.flag(p, 'json')) await writeOut(JSON.stringify(incidents, null, 2) + '\n');
    else if (!incidents.length) await writeOut(`no post-mortems yet in ${store.dir}\n`);
    else for (const i of incidents) await writeOut(formatIncidentLine(i) + '\n');
  } finally {
    await store.close();
  }
  return EXIT.ok;
}

export async function show(p: ParsedCommand): Promise<number> {
  const id = bundleId(p);
  const store = await openReadOnly(p);
  try {
    const bundle = await store.read(id);
    await writeOut(get.flag(p, 'json') ? JSON.stringify(bundleToJson(bundle), null, 2) + '\n' : formatBundle(bundle) + '\n');
  } finally {
    await store.close();
  }
  return EXIT.ok;
}

export async function exportBundle(p: ParsedCommand): Promise<number> {
  const id = bundleId(p);
  const format = get.str(p, 'format') ?? 'json';
  const exporter = exporterFor(format);
  if (!exporter) throw new UsageError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, got '${format}'`, p.cmd);
  const store = await openReadOnly(p);
  let data: Uint8Array | string;
  try {
    const raw = await store.readRaw(id); // read once: the other formats decode these bytes
    data = exporter.export(loadCodec().decodeBundle(raw), raw);
  } finally {
    await store.close();
  }
  const out = get.str(p, 'out');
  if (out) fs.writeFileSync(out, data, { mode: 0o600 });
  else await writeOut(data);
  return EXIT.ok;
}
