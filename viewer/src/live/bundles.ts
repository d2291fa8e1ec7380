/** Post-mortem bundles the live page opens: an incident from the agent, or a file from disk. */
import { decodeBundleBytes, type Bundle } from '../codec';

/** Where the agent serves an incident's bundle (the download links hang off it). */
export function incidentBase(id: string): string {
  return `api/incidents/${encodeURIComponent(id)}`;
}

/** Fetches and decodes an incident's bundle; throws an Error saying what went wrong. */
export async function fetchIncidentBundle(id: string): Promise<Bundle> {
  const res = await fetch(`${incidentBase(id)}.pb`, { cache: 'no-store' });
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { msg = ((await res.json()) as { error?: { message?: string } }).error?.message ?? msg; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return decodeBundleBytes(new Uint8Array(await res.arrayBuffer()));
}

/** Decodes a bundle file (.pb or .pmb) the user opened or dropped. */
export async function readBundleFile(file: File): Promise<Bundle> {
  return decodeBundleBytes(new Uint8Array(await file.arrayBuffer()));
}
