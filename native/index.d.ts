/**
 * Typings for premortem's Node-API addon (build/Release/premortem.node).
 * Hand-written: keep in step with native/tracer.cc and native/layout.cc.
 */

/** An error from the addon: a stable code, the errno, and libbpf's log. */
export interface NativeError extends Error {
  /** e.g. `PREMORTEM_ERR_BPF_LOAD`, `PREMORTEM_ERR_NO_BTF`. */
  code: string;
  /** Positive errno (EPERM = 1), 0 when none. */
  errno: number;
  /** What libbpf printed while failing (verifier log included). */
  libbpfLog: string;
}

/** A failure kept as data, per probe or per program. */
export interface FailureInfo {
  code: string;
  errno: number;
  message: string;
}

export interface ProgramStatus {
  name: string;
  /** ELF section: the hook, e.g. `tp_btf/sched_switch`, `usdt`. */
  section: string;
  /** false when disabled by `disablePrograms`. */
  enabled: boolean;
  attached: boolean;
  /** Attached later, per target binary (USDT, uprobe, uretprobe). */
  deferred: boolean;
  error?: FailureInfo;
}

export interface ProbeStatus {
  name: string;
  loaded: boolean;
  error?: FailureInfo;
  programs: ProgramStatus[];
}

export interface TracerOptions {
  /** Called on the JS thread with one batch: `count` records laid end to end. */
  onRecords(batch: ArrayBuffer, count: number): void;
  /** Probes to load (default: every compiled probe but `flood`). */
  probes?: string[];
  /** Ring buffer size, a power of two (default 8 MiB). */
  ringBufferBytes?: number;
  /** Wake the reader early when this much data waits (default ringBufferBytes/8). */
  wakeupBytes?: number;
  /** Hand a batch to JS at this size (default 256 KiB). */
  batchBytes?: number;
  /** Longest a record waits in the ring buffer before it is read (default 10 ms). */
  pollMs?: number;
  /** Batches held between the reader thread and JS (default 64). */
  maxQueuedBatches?: number;
  /** Load-time settings per probe: `{ runqlat: { targ_min_us: 5000 } }`. */
  rodata?: Record<string, Record<string, number | bigint>>;
  /** Programs not to load, as `probe/program`. */
  disablePrograms?: string[];
}

export interface MapDump {
  /** keySize / 4 words per key: a 64-bit key (tgid << 32 | fd) is two words, low first. */
  keys: Uint32Array;
  keySize: 4 | 8;
  /** One value of `valueSize` bytes per key, per-CPU values summed. */
  values: ArrayBuffer;
  valueSize: number;
}

/** Values of many keys of one map, in the order of the keys asked for. */
export interface MapLookupMany {
  /** found[i] = 1 when keys[i] is in the map; else its value reads as zeros. */
  found: Uint8Array;
  /** `keys.length` values of `valueSize` bytes, per-CPU values summed. */
  values: ArrayBuffer;
  valueSize: number;
}

export interface TracerStats {
  /** Records read from the ring buffer, by record type. */
  delivered: number[];
  /** Records the kernel could not reserve (ring buffer full), by record type. */
  dropped: number[];
  batches: number;
  polls: number;
  /** Polls that returned because the kernel woke the reader. */
  wakeups: number;
  /** Times the reader waited because JS had not taken its batches. */
  queueWaits: number;
  queued: number;
  /** The reader is held by {@link Tracer.pause}. */
  paused: boolean;
  /** Exceptions thrown by onRecords (caught; never escape into Node). */
  callbackErrors: number;
  ringBufferBytes: number;
  closed: boolean;
}

export class Tracer {
  constructor(options: TracerOptions);
  /** Detaches everything, delivers what was still buffered, frees maps. Idempotent. */
  close(): void;
  probes(): ProbeStatus[];
  /** Adds a process (tgid) to the pid filter. flags: 1 = follow forks. */
  track(pid: number, startNs?: number | bigint, flags?: number): void;
  untrack(pid: number): boolean;
  /**
   * Map access by key: a number for maps with 32-bit keys, a bigint (or a number below 2^53)
   * for 64-bit keys (e.g. requests: tgid << 32 | fd), or an ArrayBuffer of exactly the map's
   * key size for struct keys (e.g. tcp `ports`: netns inode + port).
   */
  mapLookup(probe: string, map: string, key: number | bigint | ArrayBuffer): ArrayBuffer | null;
  mapUpdate(probe: string, map: string, key: number | bigint | ArrayBuffer, value: ArrayBuffer): void;
  mapDelete(probe: string, map: string, key: number | bigint | ArrayBuffer): boolean;
  /** Every entry (keys of any size that is a multiple of 4). */
  mapDump(probe: string, map: string): MapDump;
  /**
   * Looks up every key of `keys` (32-bit keys, at most 65,536) in one call: for reading a
   * per-process map for every tracked process each tick. Throws as mapLookup does for an
   * unknown or unloaded probe or map.
   */
  mapLookupMany(probe: string, map: string, keys: Uint32Array): MapLookupMany;
  stats(): TracerStats;
  /** Attaches a deferred USDT program to one binary (pid -1: every process). Returns a link id. */
  attachUsdt(probe: string, program: string, binaryPath: string, pid: number,
             provider: string, name: string): number;
  /**
   * Attaches a deferred `uprobe`/`uretprobe` program at `fileOffset` (a file
   * offset, not a virtual address) of `binaryPath` (pid -1: every process that
   * maps the file). `cookie` is what the program reads with bpf_get_attach_cookie.
   * Returns a link id (detach with `detach`).
   */
  attachUprobe(probe: string, program: string, binaryPath: string, fileOffset: number, pid: number,
               cookie?: number): number;
  detach(linkId: number): boolean;
  /** Delivers every queued batch now, synchronously (records still in the ring buffer wait for the reader). */
  flush(): void;
  /**
   * Delivers, before it returns, every record the kernel submitted before the
   * call: waits for one full pass of the reader thread (about `pollMs`) and
   * hands its batches to `onRecords`. A barrier for code that must see an
   * event's records (a test after the process it watched exited). Returns
   * false if the pass did not complete within `timeoutMs` (default 5000) or
   * the reader is paused (then only queued batches are delivered).
   */
  sync(timeoutMs?: number): boolean;
  /**
   * Holds the reader thread: once this returns, no record leaves the ring
   * buffer until {@link Tracer.resume} (batches already queued are still
   * delivered). When the ring buffer is full the kernel drops new records and
   * counts them in `stats().dropped`, exactly as when JS falls behind: tests
   * and the ingest benchmark force loss with it, whatever the machine's speed.
   * Idempotent; `close()` still drains everything.
   */
  pause(): void;
  /** Lets a paused reader read the ring buffer again. Idempotent. */
  resume(): void;
}

export interface StructLayout {
  size: number;
  /** Record type number, for records. */
  type?: number;
  offsets: Record<string, number>;
}

export interface Layout {
  version: number;
  limits: { maxTracked: number; maxThreads: number; histSlots: number; recordTypes: number; commLen: number };
  structs: Record<string, StructLayout>;
}

export function layout(): Layout;
export function probeNames(): string[];
/** CLOCK_BOOTTIME now, in ns: the clock of every record's `tsNs`. */
export function bootTimeNs(): number;

/**
 * Reads ranges of another process's memory with one process_vm_readv call.
 * `ranges` holds [address, length] pairs (at most 1024 ranges); they are copied
 * end to end into `out`, which must hold their total. A range that cannot be
 * read ends the copy there: the return value (bytes copied) tells which ranges
 * are valid. Throws `PREMORTEM_ERR_PROCESS_GONE` (ESRCH),
 * `PREMORTEM_ERR_PROCESS_MEMORY_DENIED` (EPERM: needs CAP_SYS_PTRACE),
 * `PREMORTEM_ERR_PROCESS_MEMORY` (other errno), `PREMORTEM_ERR_ARG`.
 */
export function readProcessMemory(pid: number, ranges: Float64Array, out: Uint8Array): number;

/**
 * Follows a chain of interpreter frames in process `pid` from `first`, one
 * process_vm_readv per frame, or none for frames inside the region
 * [regionStart, regionStart + regionBytes) (at most 256 KiB), which is read
 * once. `layout` = [frameBytes, previousOffset, codeOffset, instrOffset,
 * instrIsPointer (0/1), ownerOffset (-1: none), skipOwner (-1: none)]. Writes
 * [code, instr] pairs into `out` (innermost first; at most out.length / 2
 * frames, and at most 4096). `truncated`: more frames than that, or a frame
 * that could not be read. `reads`: system calls made. Throws like readProcessMemory.
 */
/**
 * Sets glibc malloc for a long-lived process: allocations of 64 KiB and more get their own
 * mapping (returned when freed), free memory above 64 KiB at the top of the heap is trimmed,
 * at most 2 arenas. Process-wide; false if glibc refused a setting.
 */
export function tuneMalloc(): boolean;

export function walkFrameChain(pid: number, first: number, layout: Float64Array, out: Float64Array,
  regionStart?: number, regionBytes?: number): { count: number; truncated: boolean; reads: number };
