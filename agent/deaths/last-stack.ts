/**
 * The Python frame a worker was in when it was killed: from its last stacks
 * (agent/sampling/stack-ring.ts), the one current at the first signal of the
 * kill (a stack sampled after it shows the signal handler or the teardown),
 * its main thread (else the thread holding the GIL), its innermost frame and
 * the innermost frame of the application's own code. Fills Verdict.lastFrame
 * and adds one sentence: "It was stuck in slow_report() at app.py:12 ...".
 * Pure, like decideVerdict, whose hook it is.
 */
import type { PyFrame, PyThread, Verdict } from '../../proto/codec';
import type { KeptStack } from '../sampling/stack-ring';
import type { DeathFacts } from './verdict';
import { SIGNAL_LOOKBACK_MS, signalName } from './verdict';
import { formatTime } from '../../proto/format';

/** A stack unchanged for this long before the kill is "stuck" (ms). */
export const STUCK_MIN_MS = 1000;

/** Interpreter and third-party code: the frame a person fixes is rarely there. */
const LIBRARY = /\/(site|dist)-packages\/|\/lib\/python\d(\.\d+)?\/|^<frozen |^<string>$/;
export const isLibraryFrame = (f: PyFrame) => LIBRARY.test(f.file);

/** "app.py:12" for application code; "gunicorn/workers/sync.py:45", "socket.py:706" for libraries. */
export function shortPlace(f: PyFrame): string {
  const lib = /\/(?:site|dist)-packages\/(.+)$/.exec(f.file) ?? /\/lib\/python\d(?:\.\d+)?\/(.+)$/.exec(f.file);
  const file = lib ? lib[1] : f.file.slice(f.file.lastIndexOf('/') + 1);
  return `${file}:${f.line}`;
}

const named = (f: PyFrame) => `${f.function}() at ${shortPlace(f)}`;

/** The thread a person asks about: the main one, else the one holding the GIL, else any with frames. */
export function threadOfInterest(threads: PyThread[]): PyThread | undefined {
  const withFrames = threads.filter((t) => t.frames.length);
  return withFrames.find((t) => t.isMain) ?? withFrames.find((t) => t.holdsGil) ?? withFrames[0];
}

/** When the kill began, and what began it: the OOM kill, else the first signal from the verdict's sender, else the exit. */
export function killStart(v: Verdict, f: DeathFacts): { tMs: number; what: string } {
  if (f.oom) return { tMs: f.oom.tMs, what: 'the OOM kill' };
  const from = f.exit.tMs - SIGNAL_LOOKBACK_MS;
  const first = v.senderPid ? f.signals.find((s) => !s.kernel && s.senderPid === v.senderPid && s.tMs >= from && s.tMs <= f.exit.tMs + 5) : undefined;
  if (first) return { tMs: first.tMs, what: `the ${signalName(first.sig)}` };
  return { tMs: f.exit.tMs, what: v.signal ? `the ${signalName(v.signal)}` : 'its exit' };
}

/** The kept stack current at `atMs` (the newest first sampled by then), else the oldest kept. */
export function stackAt(stacks: KeptStack[], atMs: number): KeptStack | undefined {
  for (let i = stacks.length - 1; i >= 0; i--) if (stacks[i].sample.tMs <= atMs) return stacks[i];
  return stacks[0];
}

/** Hook of decideVerdict: the frame it was in, and the sentence that names it. */
export function explainStack(v: Verdict, f: DeathFacts): void {
  if (!f.stacks?.length) return;
  const { tMs: atMs, what: killed } = killStart(v, f);
  const kept = stackAt(f.stacks, atMs)!;
  const thread = threadOfInterest(kept.sample.threads);
  if (!thread) return;
  const inner = thread.frames[0];
  const app = thread.frames.find((x) => !isLibraryFrame(x));
  const sinceMs = kept.sample.tMs;
  const untilMs = Math.max(sinceMs, Math.min(kept.untilMs, atMs));
  v.lastFrame = inner;
  v.lastFrameSinceMs = sinceMs;
  v.lastFrameUntilMs = untilMs;
  const where = app && app !== inner ? `${named(inner)}, called from ${named(app)}` : named(inner);
  const thr = thread.isMain ? '' : ` (thread ${thread.name || thread.tid})`;
  const stuck = untilMs - sinceMs >= STUCK_MIN_MS;
  if (!app) {
    v.summary += ` Its last Python stack${thr}, at ${formatTime(untilMs)}, was in the server's or a library's code: ${where}.`;
  } else if (stuck) {
    v.summary += ` It was stuck in ${where}${thr}: its Python stack did not change for the last ${((untilMs - sinceMs) / 1000).toFixed(1)} s before ${killed}.`;
  } else {
    v.summary += ` Its last Python stack${thr}, ${((atMs - untilMs) / 1000).toFixed(1)} s before ${killed}, was in ${where}.`;
  }
  v.evidence.push({ what: 'python stack', value: `${thread.frames.slice(0, 4).map(named).join(' ← ')}${thread.frames.length > 4 ? ' ← …' : ''}`, tMs: untilMs, number: thread.frames.length, unit: 'frames' });
}
