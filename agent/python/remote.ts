/**
 * Reading a live process's memory in batches (process_vm_readv through the
 * addon): many [address, length] ranges per system call into one scratch
 * buffer. A range that cannot be read (unmapped: the interpreter freed it
 * while we looked) comes back null; the others are still read.
 *
 * Returned buffers are views into one scratch buffer shared by every reader
 * (the sampler is synchronous; 256 readers must not hold 256 buffers): valid
 * until the next read of any reader. Parse them at once. A range of length 0, or whose
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
  /** The same without a buffer per range: `each(i, buf, offset)` for every range read (hot paths). */
  readEach(ranges: ReadonlyArray<readonly [number, number]>, each: (i: number, buf: Buffer, offset: number) => void): void;
  /**
   * Follows a frame chain natively (walkFrameChain in the addon): [code, instr]
   * pairs in `out`, innermost first. Absent on readers without the addon.
   */
  walkChain?(first: number, layout: Float64Array, out: Float64Array, region?: readonly [number, number] | null): { count: number; truncated: boolean };
}

/** x86-64 user addresses are below 2^47. */
const USER_MAX = 2 ** 47;

type ReadFn = (pid: number, ranges: Float64Array, out: Uint8Array) => number;

// Shared by every reader: grown on demand up to REMOTE_LIMITS.maxBatchBytes.
let scratch = Buffer.alloc(16 << 10);
let iov = new Float64Array(2 * 64);

export function createRemoteReader(pid: number, readFn?: ReadFn): RemoteReader {
  const addon = readFn ? null : loadAddon();
  const read: ReadFn = readFn ?? addon!.readProcessMemory;
  let calls = 0;

  /** Reads `ranges` into the scratch buffer; calls `each` for every range read. */
  function readEach(ranges: ReadonlyArray<readonly [number, number]>, each: (i: number, buf: Buffer, offset: number) => void): void {
    // A pointer read from a racing process may be anything: such a range is unreadable, not an error.
    const todo: number[] = [];
    let total = 0;
    for (let i = 0; i < ranges.length; i++) {
      const [a, len] = ranges[i];
      if (!Number.isSafeInteger(a) || a < 4096 || a >= USER_MAX || !Number.isSafeInteger(len) || len <= 0) continue;
      todo.push(i);
      total += len;
    }
    if (total > REMOTE_LIMITS.maxBatchBytes || todo.length > REMOTE_LIMITS.maxRanges)
      throw new RangeError(`a remote read of ${todo.length} ranges and ${total} bytes is over the bounds`);
    if (scratch.length < total) scratch = Buffer.alloc(Math.max(total, scratch.length * 2));
    if (iov.length < todo.length * 2) iov = new Float64Array(todo.length * 2);
    const offsets: number[] = new Array(todo.length);
    let o = 0;
    for (let k = 0; k < todo.length; k++) {
      offsets[k] = o;
      o += ranges[todo[k]][1];
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
        each(todo[k], scratch, offsets[k]);
        done += ranges[todo[k]][1];
      }
      first = k + 1; // range k failed (or all are done)
    }
  }

  function readMany(ranges: ReadonlyArray<readonly [number, number]>): Array<Buffer | null> {
    const out: Array<Buffer | null> = new Array(ranges.length).fill(null);
    readEach(ranges, (i, buf, offset) => {
      out[i] = buf.subarray(offset, offset + ranges[i][1]);
    });
    return out;
  }

  return {
    pid,
    get calls() {
      return calls;
    },
    read: (addr, len) => readMany([[addr, len]])[0],
    readMany,
    readEach,
    ...(addon ? {
      walkChain(first: number, layout: Float64Array, out: Float64Array, region?: readonly [number, number] | null) {
        const r = region ? addon.walkFrameChain(pid, first, layout, out, region[0], region[1]) : addon.walkFrameChain(pid, first, layout, out);
        calls += r.reads;
        return r;
      },
    } : {}),
  };
}
