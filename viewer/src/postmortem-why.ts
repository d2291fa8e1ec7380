/**
 * The post-mortem's "why" row: who sent the fatal signal (its role, command,
 * terminal and parents) and the worker's Python stack, innermost frame first,
 * per thread, with the frame the verdict names marked. The stack shown is the
 * one current when the kill began; a later one (a signal handler, the
 * teardown) is listed after it. Pure rendering from a decoded Bundle: the live
 * viewer, a dropped file and the HTML export all come here.
 */
import type { Bundle, PyFrame, PyStackSample, PyThread, Sender, Verdict } from '../../agent/proto';
import { h } from './dom';
import { fmtClock } from './format';

/** Frames drawn per thread; the rest are counted. */
const MAX_FRAMES = 60;

const ROLE_LABELS: Record<string, string> = {
  master: 'master', 'kernel-oom': 'kernel OOM killer', 'systemd-oomd': 'systemd-oomd', systemd: 'systemd', kubelet: 'kubelet',
  'container-runtime': 'container runtime', supervisor: 'supervisor', operator: 'an operator', script: 'a script', self: 'itself',
  kernel: 'the kernel', init: 'init', other: 'another process', shell: 'a shell', unknown: 'unknown',
};

const sameFrame = (a: PyFrame, b?: PyFrame) => !!b && a.file === b.file && a.function === b.function && a.line === b.line;

function killerCard(s: Sender): HTMLElement {
  const rows: Array<[string, string]> = [['role', `${ROLE_LABELS[s.role] ?? s.role} — ${s.description}`]];
  if (s.reason) rows.push(['why', s.reason]);
  rows.push(['process', `pid ${s.pid} (${s.comm})${s.exe ? ` ${s.exe}` : ''}${s.uid ? `, uid ${s.uid}` : ''}`]);
  if (s.tty) rows.push(['terminal', s.tty]);
  if (s.cmdline) rows.push(['command', s.cmdline]);
  if (s.ancestors.length) rows.push(['parents', s.ancestors.join(' ← ')]);
  if (!s.readAtSignal) rows.push(['note', 'it was gone before the agent could read it: only its name is known']);
  return h('section', { class: 'card', 'data-testid': 'killer', 'data-role': s.role },
    h('h3', null, 'Who sent it'),
    h('table', { class: 'kv' }, h('tbody', null, rows.map(([k, val]) =>
      h('tr', null, h('th', null, k), h('td', { class: k === 'command' || k === 'parents' ? 'mono wrap' : '' }, val))))));
}

function threadBlock(t: PyThread, named?: PyFrame): HTMLElement {
  const flags = [t.isMain ? 'main' : '', t.holdsGil ? 'holds the GIL' : '', t.truncated ? 'truncated' : ''].filter(Boolean).join(', ');
  const frames = t.frames.slice(0, MAX_FRAMES);
  return h('div', { class: 'pystack-thread', 'data-tid': t.tid },
    h('div', { class: 'muted small' }, `thread ${t.tid || '?'}${t.name ? ` ${t.name}` : ''}${flags ? ` (${flags})` : ''}`),
    frames.length
      ? h('ol', { class: 'pystack-frames mono' }, frames.map((f) => h('li', { class: sameFrame(f, named) ? 'named' : '', 'data-function': f.function },
        h('span', { class: 'fn' }, `${f.function}()`), ' ', h('span', { class: 'muted' }, `${f.file}:${f.line}`))))
      : h('div', { class: 'muted small' }, '(no Python frame)'),
    t.frames.length > MAX_FRAMES ? h('div', { class: 'muted small' }, `… ${t.frames.length - MAX_FRAMES} more frames`) : null);
}

function sampleBlock(title: string, s: PyStackSample, named?: PyFrame): HTMLElement {
  const threads = [...s.threads].sort((a, b) => Number(b.isMain) - Number(a.isMain));
  return h('div', { class: 'pystack-sample', 'data-t': s.tMs },
    h('div', { class: 'small' }, `${title} ${fmtClock(s.tMs, true)}${s.pythonVersion ? ` · Python ${s.pythonVersion}` : ''} · innermost frame first`),
    threads.map((t) => threadBlock(t, named)));
}

function stackCard(b: Bundle, v?: Verdict): HTMLElement | null {
  const sampling = b.stackSampling;
  if (!sampling) return null;
  const stacks = b.stacks ?? [];
  const counts = `${sampling.samples} samples every ${sampling.intervalMs} ms (${sampling.burstIntervalMs} ms in bursts), ${sampling.empty} empty, ${sampling.failed} failed`;
  const title = h('h3', null, 'Python stack ', h('span', { class: 'muted' }, `(${counts})`));
  if (!stacks.length) {
    return h('section', { class: 'card', 'data-testid': 'pystack' }, title,
      h('p', { class: 'muted' }, `No stack with frames was sampled.${sampling.lastError ? ` Last error: ${sampling.lastError}` : ''}`));
  }
  const last = stacks[stacks.length - 1];
  const atKill = v?.lastFrameSinceMs ? stacks.find((s) => s.tMs === v.lastFrameSinceMs) : undefined;
  const first = atKill ?? last;
  return h('section', { class: 'card', 'data-testid': 'pystack' }, title,
    v?.lastFrame ? h('p', { class: 'small' }, 'It was in ', h('b', { class: 'mono' }, `${v.lastFrame.function}()`),
      ` at ${v.lastFrame.file}:${v.lastFrame.line}`,
      v.lastFrameSinceMs ? h('span', { class: 'muted' }, ` from ${fmtClock(v.lastFrameSinceMs, true)} to ${fmtClock(v.lastFrameUntilMs ?? v.lastFrameSinceMs, true)}`) : null) : null,
    sampleBlock(atKill ? 'when the kill began, first sampled at' : 'last stack, first sampled at', first, v?.lastFrame),
    first !== last ? sampleBlock('then, first sampled at', last) : null);
}

/** The row under the evidence: the killer and the stack, or null when the bundle has neither (older bundles). */
export function renderWhy(bundle: Bundle): HTMLElement | null {
  const v = bundle.verdict;
  const killer = v?.sender ? killerCard(v.sender) : null;
  const stack = stackCard(bundle, v);
  if (!killer && !stack) return null;
  return h('div', { class: killer && stack ? 'grid two pm-why' : 'pm-why' }, killer, stack);
}
