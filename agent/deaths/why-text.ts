/**
 * The sentences that say why a worker died, beyond what killed it: where its
 * last seconds went and the requests it was serving. Pure: facts in, text out.
 *   "Of its last 30 s, 27.9 s blocked on disk I/O (vda, 212 reads, longest 1.9 s,
 *    in read()), 1.1 s waiting for a CPU. GET /report was running for 31.2 s."
 */
import type { Evidence, RequestInFlight, TimeBreakdown, TimeShares, Verdict } from '../../proto/codec';
import { SHARE_KEYS, sharesTotal, type ShareKey } from './why-time';

/** What the judge found out about a death beyond its cause (all optional). */
export interface WhyFacts {
  time?: TimeBreakdown;
  /** Requests read and not answered, oldest first. */
  requests?: RequestInFlight[];
  /** Why requests are not listed, when they could not be looked for. */
  requestsNote?: string;
}

/** Classes cited in the summary, at most. */
const MAX_CITED = 3;
/** Requests named in the summary, at most (all of them are in the verdict's list). */
const MAX_NAMED = 5;
/** A class is cited from this share of the window's thread time on (and at least MIN_CITED_NS). */
const MIN_SHARE = 0.02;
const MIN_CITED_NS = 50e6;

/** "27.9 s", "0.4 s", "312 s". */
export function seconds(ns: number): string {
  const s = ns / 1e9;
  return s >= 100 ? `${Math.round(s)} s` : `${s.toFixed(1)} s`;
}

/** A window length: "30 s" when whole, "12.5 s" otherwise. */
export function span(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : seconds(ms * 1e6);
}

function diskDetails(t: TimeBreakdown): string {
  const parts: string[] = [];
  if (t.blockedDevice) parts.push(t.blockedDevice);
  if (t.bioOps) parts.push(`${t.bioOps} ${!t.bioWriteBytes && t.bioReadBytes ? 'reads' : !t.bioReadBytes && t.bioWriteBytes ? 'writes' : 'requests'}`);
  if (t.bioOps && t.bioLatMaxUs) parts.push(`longest ${seconds(t.bioLatMaxUs * 1000)}`);
  if (t.blockedSyscall) parts.push(`in ${t.blockedSyscall}()`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** How each class reads in a sentence. */
const LABELS: Record<ShareKey, (t: TimeBreakdown) => string> = {
  onCpuNs: () => 'on CPU',
  runqWaitNs: () => 'waiting for a CPU',
  throttledNs: () => "throttled by its cgroup's CPU quota",
  blockedIoNs: (t) => `${t.bioOps || t.blockedDevice ? 'blocked on disk I/O' : 'blocked in uninterruptible sleep'}${diskDetails(t)}`,
  faultWaitNs: (t) => `servicing page faults${t.majorFaults ? ` (${t.majorFaults} major)` : ''}`,
  sleepNetNs: () => 'waiting on sockets or poll (idle included)',
  sleepLockNs: () => 'waiting on locks (futex, the GIL)',
  sleepTimerNs: () => 'sleeping (timers)',
  sleepOtherNs: () => 'sleeping (other)',
};

/** The largest classes of a breakdown, largest first: [class, ns]. */
export function citedClasses(shares: TimeShares, windowNs: number): Array<[ShareKey, number]> {
  const floor = Math.max(MIN_CITED_NS, MIN_SHARE * windowNs);
  return SHARE_KEYS.map((k) => [k, shares[k]] as [ShareKey, number]).filter(([, ns]) => ns >= floor)
    .sort((a, b) => b[1] - a[1]).slice(0, MAX_CITED);
}

/** "Of its last 30 s, 27.9 s blocked on disk I/O (...), 1.1 s waiting for a CPU." */
export function describeTime(t: TimeBreakdown): string | undefined {
  const shares = t.total;
  if (!shares || sharesTotal(shares) < MIN_CITED_NS || !t.windowMs) return undefined;
  const threads = Math.max(1, t.threads);
  const cited = citedClasses(shares, t.windowMs * 1e6 * threads);
  if (!cited.length) return undefined;
  const across = threads > 1 ? `, across its ${threads} threads` : '';
  // GC pauses overlap the classes (mostly on CPU): said apart.
  const gc = t.gcNs >= MIN_CITED_NS ? `; ${seconds(t.gcNs)} in GC pauses` : '';
  return `Of its last ${span(t.windowMs)}${across}, ${cited.map(([k, ns]) => `${seconds(ns)} ${LABELS[k](t)}`).join(', ')}${gc}.`;
}

const requestName = (r: RequestInFlight) => `${r.method} ${r.path || '?'}`;

/** "GET /report was running for 31.2 s." or "3 requests were in flight: ...". */
export function describeRequests(reqs: readonly RequestInFlight[]): string | undefined {
  if (!reqs.length) return undefined;
  if (reqs.length === 1) return `${requestName(reqs[0])} was running for ${seconds(reqs[0].ageMs * 1e6)}.`;
  const named = reqs.slice(0, MAX_NAMED).map((r) => `${requestName(r)} (${seconds(r.ageMs * 1e6)})`);
  const more = reqs.length - named.length;
  const list = more > 0 ? `${named.join(', ')} and ${more} more` : `${named.slice(0, -1).join(', ')} and ${named.at(-1)}`;
  return `${reqs.length} requests were in flight: ${list}.`;
}

function evidence(what: string, value: string, tMs: number, number = 0, unit = ''): Evidence {
  return { what, value, tMs, number, unit };
}

/** Attaches the facts to a verdict and, for a failure, cites them in its summary. */
export function withWhy(v: Verdict, why: WhyFacts | undefined): Verdict {
  if (!why) return v;
  if (why.time) v.timeBreakdown = why.time;
  v.requestsInFlight = why.requests ?? [];
  v.requestsNote = why.requestsNote ?? '';
  const time = why.time && describeTime(why.time);
  const reqs = why.requests && describeRequests(why.requests);
  if (time) v.evidence.push(evidence(`last ${span(why.time!.windowMs)}`, time.replace(/^Of its last [^,]+, /, '').replace(/\.$/, ''), why.time!.endMs));
  for (const r of (why.requests ?? []).slice(0, MAX_NAMED))
    v.evidence.push(evidence('request in flight', `${requestName(r)} for ${seconds(r.ageMs * 1e6)}`, r.startedMs, r.ageMs, 'ms'));
  if (v.failure) v.summary = [v.summary, time, reqs].filter(Boolean).join(' ');
  return v;
}
