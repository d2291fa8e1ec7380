/**
 * Markers kept in the page: deduplicated (the stream and history both carry
 * them), sorted by time, the oldest dropped beyond MAX_MARKERS.
 */
import type { Marker } from '../codec';
import { insertSorted } from './series';

/** Markers kept in the page (oldest dropped). */
const MAX_MARKERS = 5000;

const markerId = (m: Marker) => `${m.tMs}|${m.kind}|${m.pid}|${m.startTicks}|${m.serviceId}|${m.message}`;

export class MarkerList {
  private items: Marker[] = [];
  private ids = new Set<string>();

  add(ms: Marker[]): void {
    for (const m of ms) {
      const id = markerId(m);
      if (this.ids.has(id)) continue;
      this.ids.add(id);
      insertSorted(this.items, m, Number.MAX_SAFE_INTEGER);
    }
    if (this.items.length > MAX_MARKERS) {
      for (const m of this.items.splice(0, this.items.length - MAX_MARKERS)) this.ids.delete(markerId(m));
    }
  }

  /** A worker's own markers plus those of its service (or the host) that name no pid. */
  forWorker(key: string | undefined, serviceId: string): Marker[] {
    return this.items.filter((m) => (m.pid && `${m.pid}:${m.startTicks}` === key) || (!m.pid && (!m.serviceId || m.serviceId === serviceId)));
  }

  /** A service's markers plus the host's. */
  forService(serviceId: string): Marker[] {
    return this.items.filter((m) => m.serviceId === serviceId || (!m.pid && !m.serviceId));
  }
}
