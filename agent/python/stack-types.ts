/**
 * Python stacks as premortem keeps them: the plain-object form of the
 * PyFrame / PyThread / PyStackSample messages of proto/premortem.proto
 * (lowerCamelCase, as agent/proto.ts encodes them).
 */

export interface PyFrame {
  /** co_filename, as the interpreter has it. */
  file: string;
  /** co_name. */
  function: string;
  /** 0 when the instruction has no line. */
  line: number;
}

export interface PyThread {
  /** Kernel thread id (0 when it could not be told). */
  tid: number;
  /** The thread's comm. */
  name: string;
  /** Innermost first. */
  frames: PyFrame[];
  isMain: boolean;
  holdsGil: boolean;
  /** More frames than maxFrames, or the walk stopped on memory that changed under it. */
  truncated: boolean;
}

export interface PyStackSample {
  tMs: number;
  pid: number;
  threads: PyThread[];
  /** '' when the sample is good; else "PREMORTEM_ERR_...: why". */
  error: string;
  /** e.g. "3.11.7". */
  pythonVersion: string;
}
