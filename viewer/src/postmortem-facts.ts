/**
 * The post-mortem page's evidence and facts cards: the verdict's evidence
 * items, and the facts read from the verdict, the cgroup and the window.
 */
import type { Bundle, Verdict } from './codec';
import { h } from './dom';
import { fmtBytes, fmtClock, fmtDuration } from './format';

/** [label, value] rows of the facts card, in the order shown. */
export function bundleFacts(bundle: Bundle, interval: number): Array<[string, string]> {
  const facts: Array<[string, string]> = [];
  const v = bundle.verdict;
  if (v) {
    if (v.signal) facts.push(['signal', `${v.signalName || `signal ${v.signal}`}${v.coreDumped ? ' (core dumped)' : ''}`]);
    else facts.push(['exit code', String(v.exitCode)]);
    if (v.senderPid) facts.push(['sent by', `pid ${v.senderPid}${v.senderComm ? ` (${v.senderComm})` : ''}`]);
    if (v.oomScope !== 'none') facts.push(['OOM scope', v.oomScope]);
    if (v.cgroupPath) facts.push(['cgroup', v.cgroupPath]);
    if (v.limitBytes) facts.push(['limit', fmtBytes(v.limitBytes)]);
    if (v.usageBytes) facts.push(['usage at kill', fmtBytes(v.usageBytes)]);
    facts.push(['failure', v.failure ? 'yes' : 'no (planned exit)']);
  }
  const cg = bundle.cgroupLimits;
  if (cg) {
    facts.push(['memory cgroup', cg.path || '/']);
    if (cg.memoryMaxBytes) facts.push(['memory.max', fmtBytes(cg.memoryMaxBytes)]);
    if (cg.memoryPeakBytes) facts.push(['peak', fmtBytes(cg.memoryPeakBytes)]);
    const ev = Object.entries(cg.memoryEvents).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
    if (ev) facts.push(['memory events', ev]);
  }
  facts.push(['window', `${fmtClock(bundle.windowStartMs)} – ${fmtClock(bundle.windowEndMs)} (${fmtDuration(bundle.windowEndMs - bundle.windowStartMs)}, ${interval} ms buckets)`]);
  if (bundle.worker?.cmdline) facts.push(['command', bundle.worker.cmdline]);
  return facts;
}

export function evidenceCard(v: Verdict | undefined): HTMLElement {
  const evidence = v?.evidence ?? [];
  return h('section', { class: 'card' },
    h('h3', null, 'Evidence'),
    evidence.length
      ? h('table', { class: 'kv evidence', 'data-testid': 'evidence' },
        h('tbody', null, evidence.map((e) => h('tr', null,
          h('th', null, e.what), h('td', null, e.value), h('td', { class: 'muted num' }, e.tMs ? fmtClock(e.tMs, true) : '')))))
      : h('p', { class: 'muted' }, 'The agent recorded no evidence items for this death.'));
}

export function factsCard(facts: Array<[string, string]>): HTMLElement {
  return h('section', { class: 'card' },
    h('h3', null, 'Facts'),
    h('table', { class: 'kv' }, h('tbody', null, facts.map(([k, val]) => h('tr', null, h('th', null, k), h('td', { class: k === 'command' ? 'mono wrap' : '' }, val))))));
}
