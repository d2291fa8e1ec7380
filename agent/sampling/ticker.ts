/**
 * The tick: once per interval, aligned to interval boundaries, every timeline
 * gets its bucket — loss first (so this interval's buckets carry the gap flag),
 * then the host, the tracked processes and the services, each followed by the
 * markers its newest bucket raises — and the interval goes out as one event.
 */
import type { AgentOptions } from '../config';
import type { Clock } from '../core/clock';
import type { ErrorCounter } from '../core/errors';
import type { LossLedger } from '../core/loss';
import { HOST_SUBJECT, MarkerBoard, marker } from '../core/markers';
import { serviceMarkers, workerMarkers } from '../detectors';
import type { TickEvent } from '../events';
import type { Tracer } from '../native';
import type { HostBucket, ServiceBucket } from '../../proto/codec';
import type { Registry } from '../registry/registry';
import type { HostTimeline } from '../timeline';
import type { HostSampler } from './host';
import type { ServiceSampler } from './service';
import { subjectOf, WorkerSampler } from './worker';

/** The timer fires this long after the interval boundary: the kernel's last records of it are in. */
const TICK_DELAY_MS = 5;

export interface TickerDeps {
  options: AgentOptions;
  clock: Clock;
  tracer: Tracer;
  registry: Registry;
  host: HostTimeline;
  loss: LossLedger;
  markers: MarkerBoard;
  errors: ErrorCounter;
  samplers: { worker: WorkerSampler; service: ServiceSampler; host: HostSampler };
  emit: { tick(t: TickEvent): void; lost(l: ReturnType<LossLedger['tick']>[number]): void };
}

export interface Ticker {
  start(): void;
  stop(): void;
}

export function createTicker(d: TickerDeps): Ticker {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const { options, clock, registry, markers } = d;

  const checkLoss = (tMs: number) => {
    const notices = d.loss.tick(tMs, d.tracer.stats());
    if (d.loss.thisInterval > 0) {
      markers.raise(markers.host, marker(tMs, 'records-lost', HOST_SUBJECT, 'warning',
        `${d.loss.thisInterval} kernel records were lost in this interval (ring buffer full): the timeline has a gap`,
        { dropped: d.loss.thisInterval, droppedTotal: d.loss.total }), true);
      for (const n of notices) d.emit.lost(n); // one notice per record type that lost records
    }
  };

  const tick = (tMs: number) => {
    if (stopped) return;
    clock.sync();
    d.samplers.worker.newTick(registry.workers.values());
    checkLoss(tMs);
    const hostSample = d.samplers.host.sample();
    d.host.push(tMs, hostSample);

    const workers: TickEvent['workers'] = [];
    for (const w of registry.workers.values()) {
      if (!w.alive || w.judging) continue;
      d.samplers.worker.sample(w, tMs);
      const b = w.timeline.latest()!;
      for (const m of workerMarkers(b, subjectOf(w), options.thresholds, hostSample.memTotalBytes)) markers.raise(w, m);
      workers.push({ pid: w.identity.pid, startTicks: w.identity.startTicks, serviceId: w.identity.serviceId, bucket: b });
    }

    const services: ServiceBucket[] = [];
    for (const s of registry.services.values()) {
      d.samplers.service.sample(s, tMs);
      const b = s.timeline.latest()!;
      const hist = s.timeline.buckets(tMs - options.thresholds.closeWaitWindowS * 1000 - options.intervalMs, tMs);
      for (const m of serviceMarkers(b, hist, options.thresholds, options.intervalMs)) markers.raise(s, m);
      services.push(b);
    }
    d.emit.tick({ tMs, intervalMs: options.intervalMs, workers, services, host: d.host.latest() as HostBucket, markers: markers.drain() });
  };

  const schedule = () => {
    if (stopped) return;
    const now = Date.now();
    const next = clock.intervalStart(now) + options.intervalMs;
    timer = setTimeout(() => {
      try {
        tick(next - options.intervalMs);
      } catch (e) {
        d.errors.count('tick', e);
      }
      schedule();
    }, next - now + TICK_DELAY_MS);
    timer.unref?.();
  };

  return {
    start: schedule,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
