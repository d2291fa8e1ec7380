/** `premortem show`: where the worker's last seconds went and the requests it was serving. */
import type { RequestInFlight, TimeBreakdown, TimeShares, Verdict } from '../../proto/codec';
import { seconds, span } from '../deaths/why-text';
import { busyNs, SHARE_KEYS, type ShareKey } from '../deaths/why-time';

const NAMES: Record<ShareKey, string> = {
  onCpuNs: 'on CPU', runqWaitNs: 'waiting for a CPU', throttledNs: 'throttled (CPU quota)', blockedIoNs: 'blocked (D state)',
  faultWaitNs: 'page faults (D)', sleepNetNs: 'sockets/poll', sleepLockNs: 'locks (futex)', sleepTimerNs: 'timers',
  sleepOtherNs: 'other sleep',
};
const SHORT: Record<ShareKey, string> = {
  onCpuNs: 'cpu', runqWaitNs: 'runq', throttledNs: 'thr', blockedIoNs: 'D', faultWaitNs: 'flt', sleepNetNs: 'net',
  sleepLockNs: 'lock', sleepTimerNs: 'tmr', sleepOtherNs: 'oth',
};
const BAR = 24;

function bar(ns: number, total: number): string {
  const n = total > 0 ? Math.round((ns / total) * BAR) : 0;
  return '█'.repeat(n) + '·'.repeat(BAR - n);
}

function detail(k: ShareKey, t: TimeBreakdown): string {
  if (k === 'blockedIoNs') {
    const d = [t.blockedDevice, t.bioOps ? `${t.bioOps} block requests` : '', t.bioOps && t.bioLatMaxUs ? `longest ${seconds(t.bioLatMaxUs * 1000)}` : '',
      t.blockedSyscall ? `in ${t.blockedSyscall}()` : ''].filter(Boolean);
    return d.length ? `  ${d.join(', ')}` : '';
  }
  if (k === 'faultWaitNs' && t.majorFaults) return `  ${t.majorFaults} major faults`;
  if (k === 'onCpuNs' && t.gcNs) return `  ${seconds(t.gcNs)} in GC`;
  return '';
}

function threadLine(name: string, s: TimeShares): string {
  const parts = SHARE_KEYS.filter((k) => s[k] >= 1e6).map((k) => `${SHORT[k]} ${seconds(s[k])}`);
  return `    ${name.padEnd(26)} ${parts.join('  ') || 'idle'}`;
}

export function formatTimeBreakdown(t: TimeBreakdown): string[] {
  const s = t.total;
  if (!s) return [];
  const total = SHARE_KEYS.reduce((n, k) => n + s[k], 0);
  const out = [`last ${span(t.windowMs)} (${t.windowSource || 'default'})${t.threads > 1 ? `, ${t.threads} threads (thread time)` : ''}${t.scaled ? ', cut to fit the window' : ''}`];
  for (const k of SHARE_KEYS) {
    if (s[k] < 1e6) continue;
    out.push(`  ${NAMES[k].padEnd(22)} ${seconds(s[k]).padStart(8)}  ${bar(s[k], total)}${detail(k, t)}`);
  }
  if (t.threadTimes.length) {
    out.push('  by thread (busiest first):');
    for (const th of t.threadTimes)
      if (th.time) out.push(threadLine(`${th.tid}${th.isMain ? ' main' : ''} ${th.name}`.trim(), th.time));
    const idle = t.threadTimes.filter((th) => th.time && busyNs(th.time) < 1e6).length;
    if (idle) out.push(`    (${idle} of them idle)`);
  }
  return out;
}

export function formatRequests(reqs: readonly RequestInFlight[], note: string): string[] {
  if (note) return [`requests  ${note}`];
  if (!reqs.length) return ['requests  none in flight'];
  return [`requests in flight (${reqs.length})`, ...reqs.map((r) =>
    `  ${`${r.method} ${r.path}${r.queryDropped ? ' (query dropped)' : ''}${r.truncated ? '…' : ''}`.padEnd(40)} ${r.protocol.padEnd(9)} ${seconds(r.ageMs * 1e6).padStart(8)}  fd ${r.fd}, thread ${r.tid}`)];
}

/** The lines `show` prints about why (nothing for a bundle written before these facts existed). */
export function formatWhy(v: Verdict): string[] {
  const out = v.timeBreakdown ? formatTimeBreakdown(v.timeBreakdown) : [];
  if (v.timeBreakdown || v.requestsInFlight?.length || v.requestsNote) out.push(...formatRequests(v.requestsInFlight ?? [], v.requestsNote ?? ''));
  return out;
}
