/**
 * Python stacks read from outside the process, and how they were sampled.
 * These mirror proto/premortem.proto (see index.ts).
 */

/** A Python frame read from outside the process (agent/python/stacks.ts); line 0: none. */
export interface PyFrame { file: string; function: string; line: number }
/** One thread's Python stack, innermost frame first. */
export interface PyThread { tid: number; name: string; frames: PyFrame[]; isMain: boolean; holdsGil: boolean; truncated: boolean }
/** Every thread of one process at one time; `error` is "" or "PREMORTEM_ERR_...: why". */
export interface PyStackSample { tMs: number; pid: number; threads: PyThread[]; error: string; pythonVersion: string }
/** How a worker's Python stacks were sampled (agent/sampling/stacks.ts). */
export interface StackSampling {
  intervalMs: number; burstIntervalMs: number; samples: number; empty: number; failed: number; lastError: string;
  lastSampleMs: number; lastFramesMs: number; dropped: number;
}
