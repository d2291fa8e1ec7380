/**
 * `premortem show`: who sent the fatal signal (by role) and the worker's last
 * Python stack, innermost frame first, per thread. The stack the verdict names
 * (current when the kill began) is printed too when a later one differs (a
 * signal handler, the interpreter's teardown).
 */
import type { Bundle, PyStackSample, PyThread, Sender } from '../../proto/codec';

/** Frames printed per thread; the rest are counted. */
export const SHOW_MAX_FRAMES = 40;

const clock = (tMs: number) => new Date(tMs).toISOString().slice(11, 23);

export function formatSender(s: Sender): string[] {
  const out = [`killer    ${s.role}: ${s.description}${s.reason ? ` (${s.reason})` : ''}`];
  const who = [`pid ${s.pid} (${s.comm})`, s.exe, s.uid ? `uid ${s.uid}` : '', s.tty ? `on ${s.tty}` : ''].filter(Boolean).join(', ');
  out.push(`          ${who}${s.readAtSignal ? '' : ' — gone before it could be read: only its name is known'}`);
  if (s.cmdline) out.push(`          command: ${s.cmdline}`);
  if (s.ancestors.length) out.push(`          parents: ${s.ancestors.join(' ← ')}`);
  return out;
}

function threadLines(t: PyThread): string[] {
  const flags = [t.isMain ? 'main' : '', t.holdsGil ? 'holds the GIL' : '', t.truncated ? 'truncated' : ''].filter(Boolean).join(', ');
  const out = [`  thread ${t.tid || '?'}${t.name ? ` ${t.name}` : ''}${flags ? ` (${flags})` : ''}`];
  if (!t.frames.length) out.push('    (no Python frame)');
  for (const f of t.frames.slice(0, SHOW_MAX_FRAMES)) out.push(`    ${`${f.function}()`.padEnd(28)} ${f.file}:${f.line}`);
  if (t.frames.length > SHOW_MAX_FRAMES) out.push(`    … ${t.frames.length - SHOW_MAX_FRAMES} more frames`);
  return out;
}

/** Main thread first, then the others as sampled. */
function sampleLines(title: string, s: PyStackSample): string[] {
  const threads = [...s.threads].sort((a, b) => Number(b.isMain) - Number(a.isMain));
  return [`${title} ${clock(s.tMs)}${s.pythonVersion ? `, Python ${s.pythonVersion}` : ''}, innermost frame first`, ...threads.flatMap(threadLines)];
}

export function formatStacks(b: Bundle): string[] {
  const sampling = b.stackSampling;
  const stacks = b.stacks ?? [];
  if (!sampling) return [];
  const counts = `${sampling.samples} samples (every ${sampling.intervalMs} ms, ${sampling.burstIntervalMs} ms in bursts), ${sampling.empty} empty, ${sampling.failed} failed`;
  if (!stacks.length) return [`python    no stack with frames was sampled: ${counts}${sampling.lastError ? `; last error ${sampling.lastError}` : ''}`];
  const last = stacks[stacks.length - 1];
  const out = [`python    ${counts}; the last stack with frames was still current at ${clock(sampling.lastFramesMs || last.tMs)}`];
  const named = b.verdict?.lastFrameSinceMs ? stacks.find((s) => s.tMs === b.verdict!.lastFrameSinceMs) : undefined;
  if (named && named !== last) out.push(...sampleLines('stack when the kill began, first sampled at', named));
  out.push(...sampleLines('last stack, first sampled at', last));
  return out;
}
