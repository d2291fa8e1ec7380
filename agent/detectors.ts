/**
 * Pre-failure detectors: markers raised while trouble builds, each carrying
 * the numbers that triggered it. Pure functions of the latest buckets; the
 * cooldown keeps one condition from raising a marker every interval.
 */
import type { Thresholds } from './config';
import type { Bucket, Marker, ServiceBucket } from '../proto/codec';
import { marker, serviceSubject, Subject } from './core/markers';
import { formatBytes } from '../proto/format';

/** Markers of one worker's newest bucket. `hostMemTotal` is the limit when no cgroup limit is known. */
export function workerMarkers(b: Bucket, subject: Subject, t: Thresholds, hostMemTotal: number): Marker[] {
  const out: Marker[] = [];
  const usage = b.cgroupLimitBytes ? Math.max(b.cgroupUsageBytes, b.rssBytes) : b.rssBytes;
  const limit = b.cgroupLimitBytes || hostMemTotal;
  if (limit > 0 && usage > 0) {
    const ratio = usage / limit;
    const slope = b.rssSlopeBytesPerS;
    const ttl = slope > 0 ? (limit - usage) / slope : Infinity;
    const scope = b.cgroupLimitBytes ? 'cgroup limit' : 'host memory';
    if (ratio >= t.memoryNearLimitRatio || ttl <= t.timeToLimitS) {
      const when = Number.isFinite(ttl) ? `; at ${formatBytes(Math.round(slope))}/s it reaches the ${scope} in ${Math.max(0, Math.round(ttl))} s` : '';
      out.push(marker(b.tMs, 'memory-near-limit', subject, ratio >= 0.97 || ttl < 10 ? 'critical' : 'warning',
        `memory ${formatBytes(usage)} is ${Math.round(ratio * 100)}% of the ${scope} (${formatBytes(limit)})${when}`,
        { usageBytes: usage, limitBytes: limit, ratio, slopeBytesPerS: slope, ...(Number.isFinite(ttl) ? { timeToLimitS: Math.max(0, ttl) } : {}) },
        { scope }));
    }
  }
  if (b.runqP99Us > t.runqP99Us)
    out.push(marker(b.tMs, 'runq-p99-high', subject, b.runqP99Us > 4 * t.runqP99Us ? 'critical' : 'warning',
      `runqueue latency p99 ${(b.runqP99Us / 1000).toFixed(1)} ms (threshold ${(t.runqP99Us / 1000).toFixed(1)} ms) over ${b.runqCount} waits`,
      { p99Us: b.runqP99Us, maxUs: b.runqMaxUs, waits: b.runqCount, thresholdUs: t.runqP99Us }));
  const dRatio = b.dstateNs / (b.intervalMs * 1e6);
  if (dRatio > t.dstateRatio)
    out.push(marker(b.tMs, 'dstate-stall', subject, dRatio > 0.5 ? 'critical' : 'warning',
      `blocked in uninterruptible sleep (D state) ${Math.round(dRatio * 100)}% of the interval (longest ${(b.dstateMaxNs / 1e6).toFixed(1)} ms)`,
      { dstateMs: b.dstateNs / 1e6, ratio: dRatio, maxMs: b.dstateMaxNs / 1e6 }));
  return out;
}

/** Markers of one service's newest bucket; `history` is its earlier buckets, oldest first. */
export function serviceMarkers(b: ServiceBucket, history: ServiceBucket[], t: Thresholds, intervalMs: number): Marker[] {
  const subject = serviceSubject(b.serviceId);
  const out: Marker[] = [];
  if (b.backlogMax > 0 && b.backlogDepth >= t.backlogNearFullRatio * b.backlogMax)
    out.push(marker(b.tMs, 'backlog-near-full', subject, b.backlogDepth >= b.backlogMax ? 'critical' : 'warning',
      `listen backlog ${b.backlogDepth} of ${b.backlogMax}${b.backlogDepth >= b.backlogMax ? ': full, new connections wait or are dropped' : ''}`,
      { depth: b.backlogDepth, max: b.backlogMax, listenDrops: b.listenDrops }));
  const back = Math.round((t.closeWaitWindowS * 1000) / intervalMs);
  const then = history.length >= back ? history[history.length - back] : history[0];
  const cwNow = b.socketStates.CLOSE_WAIT ?? 0;
  const cwThen = then?.socketStates.CLOSE_WAIT ?? 0;
  if (then && cwNow - cwThen >= t.closeWaitGrowth)
    out.push(marker(b.tMs, 'close-wait-growing', subject, 'warning',
      `CLOSE_WAIT sockets grew from ${cwThen} to ${cwNow} in ${Math.round((b.tMs - then.tMs) / 1000)} s: the application is not closing connections its clients closed`,
      { from: cwThen, to: cwNow, windowS: (b.tMs - then.tMs) / 1000 }));
  if (b.cpuThrottledUs >= t.cpuThrottledUs && b.nrThrottled > 0)
    out.push(marker(b.tMs, 'cpu-throttled', subject, 'warning',
      `the service's cgroup was CPU-throttled ${b.nrThrottled} times for ${(b.cpuThrottledUs / 1000).toFixed(1)} ms`,
      { throttledMs: b.cpuThrottledUs / 1000, periods: b.nrThrottled }));
  return out;
}

/** restart-storm when `deathTimes` (unix ms) hold too many deaths within the window ending at `now`. */
export function restartStorm(serviceId: string, deathTimes: number[], now: number, t: Thresholds): Marker | undefined {
  const recent = deathTimes.filter((d) => d > now - t.restartStormWindowS * 1000);
  if (recent.length < t.restartStormDeaths) return undefined;
  return marker(now, 'restart-storm', serviceSubject(serviceId), 'critical',
    `${recent.length} workers died within ${t.restartStormWindowS} s`,
    { deaths: recent.length, windowS: t.restartStormWindowS });
}
