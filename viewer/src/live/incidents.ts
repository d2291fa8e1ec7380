/**
 * Incidents (post-mortems) known to the page: announced by a death on the
 * stream (pending until its bundle is written), completed by bundleReady, and
 * listed by the agent's REST API after each (re)connect.
 */
import { codec, type Death, type IncidentSummary } from '../codec';

/** pending: the bundle is still being written; fresh: not opened in this page yet. */
export interface IncidentItem extends IncidentSummary { pending: boolean; fresh: boolean }

export class IncidentList {
  readonly byId = new Map<string, IncidentItem>();

  get size(): number { return this.byId.size; }
  get(id: string): IncidentItem | undefined { return this.byId.get(id); }
  values(): IterableIterator<IncidentItem> { return this.byId.values(); }

  /** A death with a bundle id: listed at once, pending until its bundle is ready. */
  addDeath(d: Death, serviceName: string): void {
    if (!d.bundleId || this.byId.has(d.bundleId)) return;
    const id = d.identity;
    const v = d.verdict;
    this.byId.set(d.bundleId, {
      id: d.bundleId, tMs: d.tMs, service: serviceName, serviceId: id?.serviceId ?? '',
      pid: id?.pid ?? 0, startTicks: id?.startTicks ?? 0, verdictKind: v?.kind ?? 'unknown', summary: v?.summary ?? '',
      failure: v?.failure ?? true, bytes: 0, pending: true, fresh: true,
    });
  }

  /** A bundle written: fresh unless the page has seen it before. */
  addReady(inc: IncidentSummary): void {
    const prev = this.byId.get(inc.id);
    this.byId.set(inc.id, { ...inc, pending: false, fresh: prev?.fresh ?? true });
  }

  /** Listed by the agent: fresh only when the stream announced it first. */
  addListed(inc: IncidentSummary): void {
    const prev = this.byId.get(inc.id);
    this.byId.set(inc.id, { ...inc, pending: false, fresh: prev?.fresh ?? false });
  }
}

/**
 * Adds the agent's list of incidents; false when it cannot be had (the
 * stream's state already tells the user when the agent is unreachable).
 */
export async function loadIncidents(list: IncidentList): Promise<boolean> {
  try {
    const res = await fetch('api/incidents', { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) return false;
    const body = (await res.json()) as { incidents?: unknown[] };
    for (const raw of body.incidents ?? []) list.addListed(codec().normalize<IncidentSummary>('IncidentSummary', raw));
    return true;
  } catch {
    return false;
  }
}
