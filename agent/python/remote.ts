/**
 * Reading a live process's memory in batches (process_vm_readv through the
 * addon): many [address, length] ranges per system call into one scratch
 * buffer. A range that cannot be read (unmapped: the interpreter freed it
 * while we looked) comes back null; the others are still read.
 *
 * Returned buffers are views into the scratch buffer: valid until the next
 * read of the same reader. Parse them at once. A range of length 0, or whose
 * address is not a user-space address, is null without a system call.
 */
import { loadAddon } from '../native';

export const REMOTE_LIMITS = {
  /** Bytes one batch may read (every range is bounded well below this). */
  maxBatchBytes: 1 << 20,
  /** Ranges per system call (the kernel's IOV_MAX). */
  maxRanges: 1024,
};

export type RemoteErrorCode = 'PREMORTEM_ERR_PROCESS_GONE' | 'PREMORTEM_ERR_PROCESS_MEMORY_DENIED' | 'PREMORTEM_ERR_PROCESS_MEMORY';

/** Reads of one process. `calls` counts system calls (the cost that matters). */
export interface RemoteReader {
  readonly pid: number;
  readonly calls: number;
  /** One range; null when unreadable. */
  read(addr: number, len: number): Buffer | null;
  /** Many ranges, in as few calls as the kernel allows; one result per range. */
  readMany(ranges: ReadonlyArray<readonly [number, number]>): Array<Buffer | null>;
}

/** x86-64 user addresses are below 2^47. */
const USER_MAX = 2 ** 47;

type ReadFn = (pid: number, ranges: Float64Array, out: Uint8Array) => number;

export function createRemoteReader(pid: number, readFn?: ReadFn): RemoteReader {
  const read: ReadFn = readFn ?? loadAddon().readProcessMemory;
  let scratch = Buffer.alloc(64 << 10);
  let iov = new Float64Array(2 * 64);
  let calls = 0;

  function readMany(ranges: ReadonlyArray<readonly [number, number]>): Array<Buffer | null> {
    const out: Array<Buffer | null> = new Array(ranges.length).fill(null);
    // A pointer read from a racing process may be anything: such a range is unreadable, not an error.
    const todo: number[] = [];
    let total = 0;
    ranges.forEach(([a, len], i) => {
      if (!Number.isSafeInteger(a) || a < 4096 || a >= USER_MAX || !Number.isSafeInteger(len) || len <= 0) return;
      todo.push(i);
      total += len;
    });
    if (total > REMOTE_LIMITS.maxBatchBytes || todo.length > REMOTE_LIMITS.maxRanges)
      throw new RangeError(`a remote read of ${todo.length} ranges and ${total} bytes is over the bounds`);
    if (scratch.length < total) scratch = Buffer.alloc(Math.max(total, scratch.length * 2));
    if (iov.length < todo.length * 2) iov = new Float64Array(todo.length * 2);
    const offsets: number[] = [];
    let o = 0;
    for (const i of todo) {
      offsets.push(o);
      o += ranges[i][1];
    }
    // The kernel stops at the first range it cannot read: go on after it.
    let first = 0;
    while (first < todo.length) {
      let n = 0;
      for (let k = first; k < todo.length; k++, n++) {
        iov[2 * n] = ranges[todo[k]][0];
        iov[2 * n + 1] = ranges[todo[k]][1];
      }
      calls++;
      const got = read(pid, iov.subarray(0, 2 * n), scratch.subarray(offsets[first]));
      let done = 0;
      let k = first;
      for (; k < todo.length && done + ranges[todo[k]][1] <= got; k++) {
        out[todo[k]] = scratch.subarray(offsets[k], offsets[k] + ranges[todo[k]][1]);
        done += ranges[todo[k]][1];
      }
      first = k + 1; // range k failed (or all are done)
    }
    return out;
  }

  return {
    pid,
    get calls() {
      return calls;
    },
    read: (addr, len) => readMany([[addr, len]])[0],
    readMany,
  };
}
