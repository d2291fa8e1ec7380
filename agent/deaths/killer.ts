/**
 * The verdict's killer: the sender of the fatal (or stop) signal named by its
 * role (roles.ts), with why when the master's log or the timing says it
 * (a worker timeout, a reload, a shutdown, a graceful stop that ran out, a
 * max-requests recycle). Fills Verdict.sender, adds evidence and at most one
 * sentence to the summary. Pure, like decideVerdict, whose hook it is.
 */
import type { Evidence, Sender, Verdict } from '../../proto/codec';
import type { DeathFacts, SignalFacts } from './verdict';
import { signalName, SIGNAL_LOOKBACK_MS } from './verdict';
import { formatTime } from '../../proto/format';
import { ancestorLabel, classifySender, SenderRoleInfo } from './roles';

const STOPS = new Set([1, 2, 3, 15]);
/** A master's own SIGHUP/SIGTERM this long before it signalled a worker explains it. */
const MASTER_CAUSE_WINDOW_MS = 60_000;

const ev = (what: string, value: string, tMs: number, number = 0, unit = ''): Evidence => ({ what, value, tMs, number, unit });
const quote = (s: string) => `“${s}”`;

/** The signal the verdict names as the cause, among those the worker received. */
function causeOf(v: Verdict, f: DeathFacts): SignalFacts | undefined {
  if (f.oom) return { tMs: f.oom.tMs, sig: 9, senderPid: 0, senderComm: '', kernel: true };
  if (!v.signal && !v.senderPid) return undefined;
  const recent = f.signals.filter((s) => s.tMs <= f.exit.tMs + 5 && s.tMs >= f.exit.tMs - SIGNAL_LOOKBACK_MS);
  // An exit after a stop request names its sender but no signal: that request is the cause.
  const found = [...recent].reverse().find((s) => (v.signal ? s.sig === v.signal : STOPS.has(s.sig))
    && s.senderPid === v.senderPid && (v.senderPid !== 0 || s.kernel));
  if (found) return found;
  if (v.kind === 'crashed') return { tMs: f.exit.tMs, sig: v.signal, senderPid: 0, senderComm: '', kernel: true };
  return undefined;
}

/** Earlier stop requests from the same sender: the kill came after the grace it gave. */
function escalation(cause: SignalFacts, f: DeathFacts): SignalFacts | undefined {
  if (cause.sig !== 9) return undefined;
  return f.signals.find((s) => !s.kernel && s.senderPid === cause.senderPid && (STOPS.has(s.sig) || s.sig === 6)
    && s.tMs < cause.tMs && s.tMs >= cause.tMs - SIGNAL_LOOKBACK_MS);
}

const isGunicorn = (f: DeathFacts, by: SignalFacts) => /gunicorn/.test(`${by.senderComm} ${f.masterComm ?? ''} ${f.master?.cmdline ?? ''}`);

/** Why the master sent it: its log, then what gunicorn's signals mean, then what the master itself was told. */
function masterReason(cause: SignalFacts, f: DeathFacts): { reason: string; why: string; evidence: Evidence[] } | undefined {
  const m = f.master;
  const timeout = m?.timeoutS ? ` (${m.timeoutOption} ${m.timeoutS} s)` : '';
  const evidence = (m?.logLines ?? []).map((l) => ev('master log', l, cause.tMs));
  const logged = m?.logLines.find((l) => /WORKER TIMEOUT|HARAKIRI|time limit/i.test(l));
  if (logged) return { reason: 'timeout', why: `the master's worker timeout${timeout}: its log says ${quote(logged)}`, evidence };
  const aborted = cause.sig === 6 || f.signals.some((s) => s.sig === 6 && s.senderPid === cause.senderPid && s.tMs <= cause.tMs && s.tMs >= cause.tMs - SIGNAL_LOOKBACK_MS);
  if (aborted && isGunicorn(f, cause))
    return { reason: 'timeout', evidence, why: `gunicorn's worker timeout${timeout}: its master sends SIGABRT only to a worker that stopped notifying it for that long` };
  const told = [...(f.masterSignals ?? [])].reverse().find((s) => s.tMs <= cause.tMs && s.tMs >= cause.tMs - MASTER_CAUSE_WINDOW_MS
    && (s.sig === 1 || s.sig === 22 || STOPS.has(s.sig)));
  const from = (s: SignalFacts) => (s.kernel ? 'the kernel' : `pid ${s.senderPid} (${s.senderComm})`);
  let out: { reason: string; why: string; evidence: Evidence[] } | undefined;
  if (told) {
    evidence.push(ev('master received', `${signalName(told.sig)} from ${from(told)}`, told.tMs, told.sig));
    if (told.sig === 1) out = { reason: 'reload', why: `the master was reloading: it received SIGHUP from ${from(told)} at ${formatTime(told.tMs)} and replaced its workers`, evidence };
    else if (told.sig === 22) out = { reason: 'scale-down', why: `the master was told to run fewer workers (SIGTTOU from ${from(told)})`, evidence };
    else out = { reason: 'shutdown', why: `the master was shutting down: it received ${signalName(told.sig)} from ${from(told)} at ${formatTime(told.tMs)}`, evidence };
  }
  const graceful = escalation(cause, f);
  if (graceful && STOPS.has(graceful.sig)) {
    const waited = ((cause.tMs - graceful.tMs) / 1000).toFixed(1);
    const tail = `the worker had not stopped ${waited} s after its ${signalName(graceful.sig)} (the graceful timeout ran out)`;
    return { reason: out ? `${out.reason}, graceful-timeout` : 'graceful-timeout', why: out ? `${out.why}; ${tail}` : tail, evidence };
  }
  return out;
}

function senderMessage(cause: SignalFacts, info: SenderRoleInfo, reason: string): Sender {
  const p = cause.process;
  return {
    role: info.role, pid: cause.senderPid, comm: cause.senderComm, exe: p?.exe ?? '', cmdline: p?.cmdline ?? '', ppid: p?.ppid ?? 0,
    tty: p?.tty ?? '', ancestors: p?.ancestors.map(ancestorLabel) ?? [], reason, description: info.description, uid: p?.uid ?? 0,
    readAtSignal: !!p,
  };
}

/** The sentence a person acts on: who it was, running what, after what grace. */
function senderSentence(cause: SignalFacts, info: SenderRoleInfo, f: DeathFacts): string {
  const grace = escalation(cause, f);
  const after = grace ? `; it had sent ${signalName(grace.sig)} ${((cause.tMs - grace.tMs) / 1000).toFixed(1)} s before the ${signalName(cause.sig)}` : '';
  const running = info.reason ? `, running ${quote(info.reason)}` : '';
  return `The ${signalName(cause.sig)} came from ${info.description}${running}${after}.`;
}

/** Hook of decideVerdict: the sender's role in the verdict, its evidence and summary. */
export function explainKiller(v: Verdict, f: DeathFacts): void {
  const cause = causeOf(v, f);
  if (!cause) {
    explainPlannedExit(v, f);
    return;
  }
  const info = classifySender(cause, { workerPid: f.exit.pid, masterPid: f.masterPid, oom: f.oom });
  let reason = info.reason;
  let sentence = '';
  if (info.role === 'master') {
    const why = masterReason(cause, f);
    if (why) {
      reason = why.reason;
      sentence = `Why: ${why.why}.`;
      v.evidence.push(...why.evidence);
    }
  } else if (info.role !== 'kernel-oom' && info.role !== 'kernel' && info.role !== 'self') {
    sentence = senderSentence(cause, info, f);
  }
  v.sender = senderMessage(cause, info, reason);
  v.evidence.push(ev('sender role', `${info.role}: ${info.description}${reason ? ` (${reason})` : ''}`, cause.tMs, cause.sig));
  if (cause.process?.ancestors.length) v.evidence.push(ev('sender parents', cause.process.ancestors.map(ancestorLabel).join(' ← '), cause.tMs));
  if (sentence) v.summary = `${v.summary} ${sentence}`;
}

/** No signal: a worker that exited on its own; its master's log may say why (max-requests). */
function explainPlannedExit(v: Verdict, f: DeathFacts): void {
  const line = f.master?.logLines.find((l) => /Autorestarting worker|max.?requests|maximum request/i.test(l));
  if (!line || v.kind !== 'exited') return;
  v.evidence.push(ev('master log', line, f.exit.tMs));
  v.summary = `${v.summary} Why: max-requests recycling${f.master?.maxRequests ? ` (--max-requests ${f.master.maxRequests})` : ''}: the log says ${quote(line)}.`;
}
