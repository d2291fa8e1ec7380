/**
 * Why a worker died: the verdict, its evidence, who sent the signal, where its
 * last seconds went and the requests it left unanswered. These mirror
 * proto/premortem.proto (see index.ts).
 */
import type { PyFrame } from './stacks';

export type VerdictKind =
  | 'unknown' | 'oom-killed' | 'killed-by-master' | 'killed-by-other' | 'crashed' | 'exited';
export type OomScope = 'none' | 'cgroup' | 'global';
/** Who sent a fatal signal, by role (agent/deaths/roles.ts). */
export type SenderRole =
  | 'unknown' | 'master' | 'kernel-oom' | 'systemd-oomd' | 'systemd' | 'kubelet' | 'container-runtime'
  | 'supervisor' | 'operator' | 'script' | 'self' | 'kernel' | 'init' | 'other' | 'shell';

export interface Evidence { what: string; value: string; tMs: number; number: number; unit: string }
export interface Verdict {
  kind: VerdictKind; exitCode: number; signal: number; coreDumped: boolean; senderPid: number;
  senderComm: string; oomScope: OomScope; cgroupPath: string; limitBytes: number; usageBytes: number;
  summary: string; evidence: Evidence[]; tMs: number; signalName: string; failure: boolean;
  /** Where its last seconds went (decode leaves it undefined when absent). */
  timeBreakdown?: TimeBreakdown;
  /** HTTP requests read and not answered at death (decode always fills it; writers may leave it out). */
  requestsInFlight?: RequestInFlight[];
  requestsNote?: string;
  /** Who sent the fatal (or stop) signal, by role; absent when no process sent one. */
  sender?: Sender;
  /** The Python frame it was in at its last stack before the kill (decode fills the times; writers may leave them out). */
  lastFrame?: PyFrame; lastFrameSinceMs?: number; lastFrameUntilMs?: number;
}
/** The sender of a signal as read from /proc when its record arrived. */
export interface Sender {
  role: SenderRole; pid: number; comm: string; exe: string; cmdline: string; ppid: number; tty: string;
  ancestors: string[]; reason: string; description: string; uid: number; readAtSignal: boolean;
}
/** Thread time per scheduler state over a window (ns). */
export interface TimeShares {
  onCpuNs: number; runqWaitNs: number; throttledNs: number; blockedIoNs: number; faultWaitNs: number;
  sleepNetNs: number; sleepLockNs: number; sleepTimerNs: number; sleepOtherNs: number;
}
export interface ThreadTime { tid: number; name: string; isMain: boolean; time?: TimeShares }
export interface TimeBreakdown {
  windowMs: number; endMs: number; windowSource: string; total?: TimeShares; threads: number; gcNs: number;
  majorFaults: number; blockedSyscall: string; blockedDevice: string; bioOps: number; bioLatMaxUs: number;
  bioReadBytes: number; bioWriteBytes: number; threadTimes: ThreadTime[]; scaled: boolean;
}
export interface RequestInFlight {
  method: string; path: string; protocol: string; startedMs: number; ageMs: number; tid: number; fd: number;
  truncated: boolean; queryDropped: boolean;
}
