/**
 * Markers: discrete events on a timeline (a slow wakeup, a signal, memory near
 * its limit), each carrying the numbers that triggered it. The board keeps
 * each marker on its owner's ring, holds repeats back for the cooldown, and
 * collects what was raised since the last tick for the live stream.
 */
import type { Marker, Severity } from '../../proto/codec';
import { MarkerRing } from '../timeline';

export interface Subject {
  pid: number;
  startTicks: number;
  serviceId: string;
}

/** Service- and host-level markers have no process. */
export const serviceSubject = (serviceId: string): Subject => ({ pid: 0, startTicks: 0, serviceId });
export const HOST_SUBJECT: Subject = { pid: 0, startTicks: 0, serviceId: '' };

export function marker(tMs: number, kind: string, subject: Subject, severity: Severity, message: string,
  numbers: Record<string, number> = {}, details: Record<string, string> = {}): Marker {
  return { tMs, kind, pid: subject.pid, startTicks: subject.startTicks, serviceId: subject.serviceId, severity, message, numbers, details };
}

/** Suppresses repeats of one marker kind for one subject within the cooldown. */
export class Cooldown {
  private last = new Map<string, number>();
  constructor(private readonly ms: number, private readonly maxKeys = 10_000) {}

  admit(m: Marker): boolean {
    const key = `${m.kind}|${m.serviceId}|${m.pid}|${m.startTicks}`;
    const prev = this.last.get(key);
    if (prev !== undefined && m.tMs - prev < this.ms) return false;
    if (this.last.size >= this.maxKeys) this.last.clear(); // bound: forget rather than grow
    this.last.set(key, m.tMs);
    return true;
  }
}

/** Markers raised between two ticks, at most (a burst past it is counted, and kept on the rings). */
export const MAX_PENDING_MARKERS = 10_000;

export interface MarkerBoard {
  /** Keeps `m` on `owner`'s ring and in the next tick; a repeat within the cooldown is dropped unless `always`. */
  raise(owner: { markers: MarkerRing }, m: Marker, always?: boolean): void;
  /** The host's own markers (records lost...). */
  readonly host: { markers: MarkerRing };
  /** What was raised since the last call. */
  drain(): Marker[];
  /** Markers left out of the live stream because more than MAX_PENDING_MARKERS came in one tick. */
  readonly overflowed: number;
}

export function createMarkerBoard(cooldownMs: number, ringSize: number): MarkerBoard {
  const cooldown = new Cooldown(cooldownMs);
  let pending: Marker[] = [];
  let overflowed = 0;
  return {
    host: { markers: new MarkerRing(ringSize) },
    raise(owner, m, always = false) {
      if (!always && !cooldown.admit(m)) return;
      owner.markers.push(m);
      if (pending.length < MAX_PENDING_MARKERS) pending.push(m);
      else overflowed++;
    },
    drain() {
      const out = pending;
      pending = [];
      return out;
    },
    get overflowed() {
      return overflowed;
    },
  };
}
