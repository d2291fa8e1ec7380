/**
 * What the store knows of its directory: one entry per bundle file (size,
 * mtime, its summary, or none when the file is corrupt), kept in line with the
 * directory by sync(). Quota and count are measured here.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import type { Bundle, Codec, DeepPartial, IncidentSummary } from '../../proto/codec';
import { errnoOf } from './errors';
import { decodeBundleFile } from './file-format';
import { bundleFileName, idOfFileName } from './ids';
import type { StoreLog } from './failures';

export interface IndexEntry {
  file: string;
  size: number;
  mtimeMs: number;
  summary?: IncidentSummary; // absent: corrupt
  createdMs: number;
}

/** The line a bundle is listed by: the same whether it was just written or read back from its file. */
export function incidentOf(b: DeepPartial<Bundle>, id: string, bytes: number): IncidentSummary {
  return {
    id, tMs: b.verdict?.tMs || b.windowEndMs || b.createdMs || 0, service: b.service?.name ?? '',
    serviceId: b.service?.id ?? b.worker?.serviceId ?? '', pid: b.worker?.pid ?? 0,
    startTicks: b.worker?.startTicks ?? 0, verdictKind: b.verdict?.kind ?? 'unknown',
    summary: b.verdict?.summary ?? '', failure: b.verdict?.failure ?? false, bytes,
  };
}

export class BundleIndex {
  /** By file name. */
  private readonly entries = new Map<string, IndexEntry>();

  constructor(private readonly dir: string, private readonly codec: () => Codec, private readonly log: StoreLog) {}

  get(file: string): IndexEntry | undefined { return this.entries.get(file); }
  set(e: IndexEntry): void { this.entries.set(e.file, e); }
  forget(file: string): void { this.entries.delete(file); }

  bytesUsed(): number { let n = 0; for (const e of this.entries.values()) n += e.size; return n; }
  bundleCount(): number { let n = 0; for (const e of this.entries.values()) if (e.summary) n++; return n; }
  corruptCount(): number { let n = 0; for (const e of this.entries.values()) if (!e.summary) n++; return n; }

  /** Complete, verified bundles, newest first. */
  summaries(): IncidentSummary[] {
    return [...this.entries.values()]
      .filter((e): e is IndexEntry & { summary: IncidentSummary } => !!e.summary)
      .sort((a, b) => b.createdMs - a.createdMs || (a.file < b.file ? 1 : -1))
      .map((e) => e.summary);
  }

  /** Oldest first, corrupt files before everything. */
  evictionOrder(): IndexEntry[] {
    return [...this.entries.values()].sort((a, b) =>
      (a.summary ? 1 : 0) - (b.summary ? 1 : 0) || a.createdMs - b.createdMs || (a.file < b.file ? -1 : 1));
  }

  /** Deletes the entry's file (already gone is fine) and forgets it. */
  async unlink(e: IndexEntry): Promise<void> {
    try {
      await fsp.unlink(path.join(this.dir, e.file));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
    this.entries.delete(e.file);
  }

  /** Brings the index in line with the directory (new, changed, vanished files). */
  async sync(): Promise<void> {
    const names = await fsp.readdir(this.dir);
    const seen = new Set<string>();
    for (const name of names) {
      if (idOfFileName(name) === undefined) continue;
      let st;
      try { st = await fsp.stat(path.join(this.dir, name)); } catch { continue; }
      if (!st.isFile()) continue;
      seen.add(name);
      const known = this.entries.get(name);
      if (known && known.size === st.size && known.mtimeMs === st.mtimeMs) continue;
      const summary = await this.summarize(name, st.size);
      if (!summary) this.log('warn', `bundle ${name} is corrupt: not listed, evicted first`);
      this.entries.set(name, { file: name, size: st.size, mtimeMs: st.mtimeMs, summary, createdMs: summary ? summary.tMs : 0 });
    }
    for (const name of [...this.entries.keys()]) if (!seen.has(name)) this.entries.delete(name);
  }

  /** The summary of a bundle file, or undefined when it is corrupt. */
  private async summarize(file: string, size: number): Promise<IncidentSummary | undefined> {
    try {
      const payload = decodeBundleFile(await fsp.readFile(path.join(this.dir, file)), file);
      return incidentOf(this.codec().decodeBundle(payload), idOfFileName(file)!, size);
    } catch {
      return undefined;
    }
  }
}

/** An entry for a file the index may not know (remove() of an unlisted id). */
export function entryFor(id: string): IndexEntry {
  return { file: bundleFileName(id), size: 0, mtimeMs: 0, createdMs: 0 };
}
