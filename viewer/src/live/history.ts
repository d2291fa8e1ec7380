/**
 * History requests: fill the charts with what the agent kept before the page
 * connected. Services first (the first one also asks for the host), then the
 * selected worker, then other live workers; at most HISTORY_IN_FLIGHT at once.
 */
import type { DeepPartial, HistoryRequest } from '../../../proto/codec';
import type { LiveModel } from './model';

/** History requests in flight (the agent allows 2 per client). */
const HISTORY_IN_FLIGHT = 2;
/** History keys of services (not workers) start with this. */
const SERVICE_HISTORY = 'svc:';
/** Workers whose history is fetched after (re)connecting. */
const MAX_HISTORY_WORKERS = 64;

export class HistoryRequests {
  private queue: string[] = [];
  private inFlight = new Map<number, string>();
  private nextRequestId = 1;
  private done = new Set<string>();
  private hostAsked = false;

  /** send returns false when the frame could not be sent (the connection is down). */
  constructor(private readonly model: LiveModel, private readonly send: (req: DeepPartial<HistoryRequest>) => boolean) {}

  /** Forgets everything asked: after a reconnect, what was missed is asked again. */
  reset(): void {
    this.inFlight.clear();
    this.queue = [];
    this.done.clear();
    this.hostAsked = false;
  }

  /** Queues every service and live worker not asked for yet, then sends what fits. */
  request(): void {
    const m = this.model;
    const alive = [...m.workers.entries()].filter(([, w]) => w.state === 'alive').map(([k]) => k);
    const ordered = [m.selectedWorker, ...alive].filter((k): k is string => !!k && alive.includes(k));
    // Services (and, with the first, the host) too: their charts start empty otherwise.
    const svcs = [...m.services.keys()].map((id) => `${SERVICE_HISTORY}${id}`);
    for (const k of [...svcs, ...ordered.slice(0, MAX_HISTORY_WORKERS)]) {
      if (this.done.has(k) || this.queue.includes(k) || [...this.inFlight.values()].includes(k)) continue;
      this.queue.push(k);
    }
    this.pump();
  }

  /** An answer arrived: its slot is free for the next request. */
  answered(requestId: number): void {
    this.inFlight.delete(requestId);
  }

  pump(): void {
    const m = this.model;
    while (this.inFlight.size < HISTORY_IN_FLIGHT && this.queue.length && m.connState.kind === 'open') {
      const key = this.queue.shift()!;
      const requestId = this.nextRequestId++;
      const now = Date.now();
      const from = now - Math.min(m.hello?.windowMs || 600_000, m.maxPoints() * m.interval());
      const serviceId = key.startsWith(SERVICE_HISTORY) ? key.slice(SERVICE_HISTORY.length) : '';
      const host = serviceId !== '' && !this.hostAsked;
      const req = serviceId ? { requestId, workerKey: '', serviceId, host, fromMs: from, toMs: now } : { requestId, workerKey: key, fromMs: from, toMs: now };
      if (!this.send(req)) break;
      if (host) this.hostAsked = true;
      this.inFlight.set(requestId, key);
      this.done.add(key);
    }
  }
}
