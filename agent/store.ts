/**
 * The post-mortem bundle store: one file per bundle in a data directory, with a
 * disk quota, a count cap and a retention period.
 *
 * File format (<id>.pmb, mode 0600, directory 0700): proto/bundle-file.ts (a
 * 40-byte header with the payload's length and SHA-256, then the protobuf Bundle).
 * A file whose size, magic or digest disagrees is corrupt: never listed, never
 * served, counted in health() and evicted first.
 *
 * Atomic writes: the file is written as ".tmp-<writer pid>-<random>" in the same
 * directory, fsynced, renamed to <id>.pmb, then the directory is fsynced. A
 * writer killed at any point leaves a temp file (deleted at the next start) or a
 * complete bundle, never a half one.
 *
 * Bounds, enforced before each write: a bundle larger than quotaBytes is refused
 * (PREMORTEM_ERR_BUNDLE_TOO_LARGE); bundles older than retentionDays go first,
 * then the oldest until both the quota (apparent file sizes, temp file included)
 * and maxBundles hold. Writes are serialised; at most maxPendingWrites wait.
 *
 * Failures never throw out of the store's caller context unexpectedly: every
 * operation rejects with a StoreError carrying a stable code, and health()
 * counts them (the agent shows health() in /api/health and the viewer).
 *
 * Read-only mode (`readOnly: true`, what `premortem list/show/export` use):
 * the directory is only read. No mkdir, no chmod, no temp-file cleanup, no
 * retention or eviction; write() and remove() reject with
 * PREMORTEM_ERR_STORE_READ_ONLY. A missing directory is
 * PREMORTEM_ERR_STORE_NOT_FOUND, one that cannot be read (permissions, not a
 * directory) PREMORTEM_ERR_STORE_UNREADABLE.
 */
import { createHash, randomBytes } from 'crypto';
import { promises as fsp } from 'fs';
import * as path from 'path';
import { BUNDLE_FORMAT_VERSION, type Bundle, type Codec, type DeepPartial, type IncidentSummary } from '../proto/codec';
import { loadCodec } from '../proto/node';
import { bundleFileHeader, BUNDLE_HEADER_BYTES, splitBundleFile } from '../proto/bundle-file';
import { log as defaultLogger, type Logger } from './log';

export { BUNDLE_HEADER_BYTES } from '../proto/bundle-file';
export const BUNDLE_FILE_EXT = '.pmb';
const TEMP_PREFIX = '.tmp-';
/** A temp file whose writer is alive is left alone unless it is this old. */
const STALE_TEMP_MS = 10 * 60_000;

export const STORE_DEFAULTS = {
  dir: '/var/lib/premortem',
  quotaBytes: 256 * 1024 * 1024,
  maxBundles: 500,
  retentionDays: 14,
  maxPendingWrites: 16,
} as const;

export type StoreErrorCode =
  | 'PREMORTEM_ERR_STORE_NO_SPACE'     // ENOSPC / EDQUOT: the disk is full
  | 'PREMORTEM_ERR_STORE_READ_ONLY'    // EROFS / EACCES / EPERM: cannot write there (or a read-only store)
  | 'PREMORTEM_ERR_STORE_NOT_FOUND'    // read-only open: the directory does not exist
  | 'PREMORTEM_ERR_STORE_UNREADABLE'   // read-only open: not a directory, or no permission to list it
  | 'PREMORTEM_ERR_STORE_IO'           // any other I/O failure
  | 'PREMORTEM_ERR_STORE_BUSY'         // more than maxPendingWrites waiting
  | 'PREMORTEM_ERR_STORE_CLOSED'
  | 'PREMORTEM_ERR_BUNDLE_TOO_LARGE'   // larger than the whole quota
  | 'PREMORTEM_ERR_BUNDLE_INVALID'     // cannot be encoded
  | 'PREMORTEM_ERR_BUNDLE_NOT_FOUND'
  | 'PREMORTEM_ERR_BUNDLE_CORRUPT'
  | 'PREMORTEM_ERR_BUNDLE_BAD_ID';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  readonly errno?: string;
  constructor(code: StoreErrorCode, message: string, options?: { cause?: unknown; errno?: string }) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
    this.errno = options?.errno;
  }
}

export interface BundleStoreOptions {
  dir?: string;
  quotaBytes?: number;
  maxBundles?: number;
  retentionDays?: number;
  maxPendingWrites?: number;
  /** Only read the directory: never create, chmod, clean or evict (the read commands). */
  readOnly?: boolean;
  codec?: Codec;
  /** Clock for retention (tests). */
  now?: () => number;
  /** Defaults to the agent's one logger. */
  logger?: Pick<Logger, 'info' | 'warn' | 'error'>;
}

export interface WriteResult { id: string; path: string; bytes: number; evicted: string[]; incident: IncidentSummary }

/** The line a bundle is listed by: the same whether it was just written or read back from its file. */
export function incidentOf(b: DeepPartial<Bundle>, id: string, bytes: number): IncidentSummary {
  return {
    id, tMs: b.verdict?.tMs || b.windowEndMs || b.createdMs || 0, service: b.service?.name ?? '',
    serviceId: b.service?.id ?? b.worker?.serviceId ?? '', pid: b.worker?.pid ?? 0,
    startTicks: b.worker?.startTicks ?? 0, verdictKind: b.verdict?.kind ?? 'unknown',
    summary: b.verdict?.summary ?? '', failure: b.verdict?.failure ?? false, bytes,
  };
}

export interface StoreHealth {
  dir: string;
  writes: number;
  errors: number;
  lastError: { code: StoreErrorCode; message: string; tMs: number } | null;
  bytesUsed: number;
  quotaBytes: number;
  bundles: number;
  maxBundles: number;
  retentionDays: number;
  evicted: number;
  corrupt: number;
  pendingWrites: number;
}

export interface BundleStore {
  readonly dir: string;
  /**
   * Creates the directory, deletes stale temp files, applies retention, indexes bundles
   * (read-only: checks the directory can be listed, indexes bundles). Idempotent; retried after a failure.
   */
  ready(): Promise<void>;
  /** Fills id and createdMs when absent. Rejects with StoreError. */
  write(bundle: DeepPartial<Bundle>): Promise<WriteResult>;
  /** Complete, verified bundles, newest first. */
  list(): Promise<IncidentSummary[]>;
  read(id: string): Promise<Bundle>;
  /** The protobuf Bundle bytes (no file header): what `export --format pb` writes. */
  readRaw(id: string): Promise<Uint8Array>;
  remove(id: string): Promise<boolean>;
  health(): StoreHealth;
  /** Waits for queued writes; later calls reject with PREMORTEM_ERR_STORE_CLOSED. */
  close(): Promise<void>;
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidBundleId(id: string): boolean {
  return ID_RE.test(id) && !id.includes('..');
}

/** "20251126-170003-412-4242-ab12": UTC time of death, pid, random suffix. */
export function makeBundleId(tMs: number, pid: number): string {
  const d = new Date(tMs);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const stamp = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-` +
    `${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}-${p(d.getUTCMilliseconds(), 3)}`;
  return `${stamp}-${pid}-${randomBytes(2).toString('hex')}`;
}

/** Wraps a Bundle payload in the file header (proto/bundle-file.ts). */
export function encodeBundleFile(payload: Uint8Array): Buffer {
  const digest = createHash('sha256').update(payload).digest();
  return Buffer.concat([bundleFileHeader(payload.length, digest), payload]);
}

/** The payload of a bundle file, or a StoreError PREMORTEM_ERR_BUNDLE_CORRUPT saying what is wrong. */
export function decodeBundleFile(file: Uint8Array, name = 'bundle'): Uint8Array {
  const corrupt = (why: string) => new StoreError('PREMORTEM_ERR_BUNDLE_CORRUPT', `${name} is corrupt: ${why}`);
  let parts: ReturnType<typeof splitBundleFile>;
  try {
    parts = splitBundleFile(file);
  } catch (e) {
    throw corrupt((e as Error).message);
  }
  const digest = createHash('sha256').update(parts.payload).digest();
  if (!digest.equals(parts.sha256)) throw corrupt('SHA-256 mismatch');
  return parts.payload;
}

/**
 * mkdir -p, one level at a time. Node's recursive mkdir loops forever where the
 * kernel answers ENOENT for a parent that exists (e.g. under /proc/1/); this
 * walks each component once and fails with the real errno.
 */
export async function makeDirs(dir: string, mode: number): Promise<void> {
  const parts = path.resolve(dir).split(path.sep).filter(Boolean);
  let cur: string = path.sep;
  for (const part of parts) {
    cur = path.join(cur, part);
    try {
      await fsp.mkdir(cur, { mode });
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
      const st = await fsp.stat(cur);
      if (!st.isDirectory()) throw Object.assign(new Error(`${cur} exists and is not a directory`), { code: 'ENOTDIR' });
    }
  }
}

interface IndexEntry {
  file: string;
  size: number;
  mtimeMs: number;
  summary?: IncidentSummary; // absent: corrupt
  createdMs: number;
}

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

export function createBundleStore(options: BundleStoreOptions = {}): BundleStore {
  const dir = path.resolve(options.dir ?? STORE_DEFAULTS.dir);
  const quotaBytes = options.quotaBytes ?? STORE_DEFAULTS.quotaBytes;
  const maxBundles = options.maxBundles ?? STORE_DEFAULTS.maxBundles;
  const retentionDays = options.retentionDays ?? STORE_DEFAULTS.retentionDays;
  const maxPendingWrites = options.maxPendingWrites ?? STORE_DEFAULTS.maxPendingWrites;
  const readOnly = options.readOnly === true;
  const now = options.now ?? Date.now;
  const logger = options.logger ?? defaultLogger;
  const log = (level: 'info' | 'warn' | 'error', message: string) => logger[level](message, { dir });
  for (const [name, v] of Object.entries({ quotaBytes, maxBundles, retentionDays, maxPendingWrites })) {
    if (!Number.isFinite(v) || v <= 0) throw new TypeError(`createBundleStore: ${name} must be a positive number, got ${v}`);
  }
  if (quotaBytes <= BUNDLE_HEADER_BYTES) throw new TypeError(`createBundleStore: quotaBytes ${quotaBytes} cannot hold any bundle`);
  let codecCache = options.codec;
  const codec = () => (codecCache ??= loadCodec());

  const index = new Map<string, IndexEntry>(); // by file name
  const counters = { writes: 0, errors: 0, evicted: 0 };
  let lastError: StoreHealth['lastError'] = null;
  let readyPromise: Promise<void> | null = null;
  let queue: Promise<unknown> = Promise.resolve();
  let pendingWrites = 0;
  let closed = false;

  const bytesUsed = () => { let n = 0; for (const e of index.values()) n += e.size; return n; };
  const bundleCount = () => { let n = 0; for (const e of index.values()) if (e.summary) n++; return n; };

  function fail(code: StoreErrorCode, message: string, cause?: unknown): StoreError {
    const err = new StoreError(code, message, { cause, errno: errnoOf(cause) });
    counters.errors++;
    lastError = { code, message, tMs: now() };
    log('error', message);
    return err;
  }
  function ioFailure(what: string, cause: unknown): StoreError {
    if (cause instanceof StoreError) return cause;
    const errno = errnoOf(cause);
    const detail = (cause as Error)?.message ?? String(cause);
    if (errno === 'ENOSPC' || errno === 'EDQUOT') {
      return fail('PREMORTEM_ERR_STORE_NO_SPACE', `${what}: the disk holding ${dir} is full (${errno}); free space or lower quotaBytes`, cause);
    }
    if (errno === 'EROFS' || errno === 'EACCES' || errno === 'EPERM') {
      return fail('PREMORTEM_ERR_STORE_READ_ONLY', `${what}: ${dir} is not writable (${errno}); fix its mount or permissions, or choose another --data-dir`, cause);
    }
    return fail('PREMORTEM_ERR_STORE_IO', `${what}: ${detail}`, cause);
  }

  /** Runs store mutations one at a time: quota accounting needs a single writer. */
  function serial<T>(task: () => Promise<T>): Promise<T> {
    const run = queue.then(task, task);
    queue = run.catch(() => undefined);
    return run;
  }

  async function summarize(file: string, size: number): Promise<IncidentSummary | undefined> {
    try {
      const payload = decodeBundleFile(await fsp.readFile(path.join(dir, file)), file);
      return incidentOf(codec().decodeBundle(payload), file.slice(0, -BUNDLE_FILE_EXT.length), size);
    } catch {
      return undefined;
    }
  }

  /** Brings the index in line with the directory (new, changed, vanished files). */
  async function syncIndex(): Promise<void> {
    const names = await fsp.readdir(dir);
    const seen = new Set<string>();
    for (const name of names) {
      if (!name.endsWith(BUNDLE_FILE_EXT) || name.startsWith('.')) continue;
      if (!isValidBundleId(name.slice(0, -BUNDLE_FILE_EXT.length))) continue;
      let st;
      try { st = await fsp.stat(path.join(dir, name)); } catch { continue; }
      if (!st.isFile()) continue;
      seen.add(name);
      const known = index.get(name);
      if (known && known.size === st.size && known.mtimeMs === st.mtimeMs) continue;
      const summary = await summarize(name, st.size);
      if (!summary) log('warn', `bundle ${name} is corrupt: not listed, evicted first`);
      index.set(name, { file: name, size: st.size, mtimeMs: st.mtimeMs, summary, createdMs: summary ? summary.tMs : 0 });
    }
    for (const name of [...index.keys()]) if (!seen.has(name)) index.delete(name);
  }

  async function removeStaleTemps(): Promise<void> {
    for (const name of await fsp.readdir(dir)) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const full = path.join(dir, name);
      const writer = Number(/^\.tmp-(\d+)-/.exec(name)?.[1] ?? 0);
      let writerAlive = false;
      if (writer > 0) {
        try { process.kill(writer, 0); writerAlive = true; } catch (err) { writerAlive = errnoOf(err) === 'EPERM'; }
      }
      try {
        const st = await fsp.stat(full);
        if (writerAlive && now() - st.mtimeMs < STALE_TEMP_MS) continue;
        await fsp.unlink(full);
        log('info', `removed stale temp file ${name} (a writer died mid-write)`);
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') log('warn', `cannot remove stale temp file ${name}: ${(err as Error).message}`);
      }
    }
  }

  async function fsyncDir(): Promise<void> {
    const fh = await fsp.open(dir, 'r');
    try { await fh.sync(); } finally { await fh.close(); }
  }

  async function unlinkEntry(e: IndexEntry): Promise<void> {
    try {
      await fsp.unlink(path.join(dir, e.file));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
    index.delete(e.file);
  }

  /** Oldest first, corrupt files before everything. */
  function evictionOrder(): IndexEntry[] {
    return [...index.values()].sort((a, b) =>
      (a.summary ? 1 : 0) - (b.summary ? 1 : 0) || a.createdMs - b.createdMs || (a.file < b.file ? -1 : 1));
  }

  async function applyRetention(): Promise<string[]> {
    const cutoff = now() - retentionDays * 86_400_000;
    const gone: string[] = [];
    for (const e of evictionOrder()) {
      if (e.summary && e.createdMs < cutoff) {
        await unlinkEntry(e);
        counters.evicted++;
        gone.push(e.summary.id);
      }
    }
    return gone;
  }

  /** Read-only open: the directory must exist and be listable; nothing is changed. */
  async function initReadOnly(): Promise<void> {
    try {
      const st = await fsp.stat(dir);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await syncIndex();
    } catch (err) {
      const errno = errnoOf(err);
      if (errno === 'ENOENT') {
        throw new StoreError('PREMORTEM_ERR_STORE_NOT_FOUND',
          `${dir} does not exist: no post-mortems there (the agent creates it on its first run; check --data-dir or PREMORTEM_DATA_DIR)`, { cause: err, errno });
      }
      throw new StoreError('PREMORTEM_ERR_STORE_UNREADABLE',
        `cannot read the bundle directory ${dir} (${errno ?? (err as Error).message}): ${errno === 'ENOTDIR' ? 'it is not a directory' : 'check its permissions, or run as the agent\'s user'}`, { cause: err, errno });
    }
  }

  async function init(): Promise<void> {
    if (readOnly) return initReadOnly();
    try {
      await makeDirs(dir, 0o700);
    } catch (err) {
      throw ioFailure(`cannot create the bundle directory ${dir}`, err);
    }
    try {
      const st = await fsp.stat(dir);
      if ((st.mode & 0o077) !== 0) await fsp.chmod(dir, 0o700);
    } catch (err) {
      log('warn', `cannot set ${dir} to mode 0700: ${(err as Error).message}`);
    }
    try {
      await removeStaleTemps();
      await syncIndex();
    } catch (err) {
      throw ioFailure(`cannot read the bundle directory ${dir}`, err);
    }
    try {
      await applyRetention();
    } catch (err) {
      log('warn', `retention could not delete old bundles in ${dir}: ${(err as Error).message}`);
    }
  }

  function ready(): Promise<void> {
    if (!readyPromise) {
      readyPromise = init().catch((err) => { readyPromise = null; throw err; });
    }
    return readyPromise;
  }

  async function doWrite(bundle: DeepPartial<Bundle>): Promise<WriteResult> {
    await ready();
    const createdMs = bundle.createdMs || now();
    const id = bundle.id || makeBundleId(bundle.verdict?.tMs || createdMs, bundle.worker?.pid ?? 0);
    if (!isValidBundleId(id)) throw fail('PREMORTEM_ERR_BUNDLE_BAD_ID', `bundle id '${id}' must match ${ID_RE}`);
    let payload: Uint8Array;
    try {
      payload = codec().encodeBundle({ ...bundle, id, createdMs, formatVersion: bundle.formatVersion || BUNDLE_FORMAT_VERSION });
    } catch (err) {
      throw fail('PREMORTEM_ERR_BUNDLE_INVALID', `bundle ${id} cannot be encoded: ${(err as Error).message}`, err);
    }
    const data = encodeBundleFile(payload);
    if (data.length > quotaBytes) {
      throw fail('PREMORTEM_ERR_BUNDLE_TOO_LARGE',
        `bundle ${id} is ${data.length} bytes, more than the whole quota of ${quotaBytes} bytes; raise quotaBytes or shorten the post-mortem window`);
    }
    const file = id + BUNDLE_FILE_EXT;
    const evicted: string[] = [];
    try {
      evicted.push(...await applyRetention());
      // The replaced file (same id) stays counted until the rename: the quota
      // holds at every instant, temp file included.
      for (const e of evictionOrder()) {
        if (bytesUsed() + data.length <= quotaBytes && bundleCount() + 1 <= maxBundles) break;
        await unlinkEntry(e);
        counters.evicted++;
        if (e.summary) evicted.push(e.summary.id);
      }
    } catch (err) {
      throw ioFailure(`cannot evict old bundles to make room for ${id}`, err);
    }
    const tmp = path.join(dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
    const final = path.join(dir, file);
    try {
      const fh = await fsp.open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, final);
      await fsyncDir();
    } catch (err) {
      await fsp.unlink(tmp).catch(() => undefined);
      throw ioFailure(`cannot write bundle ${id}`, err);
    }
    const st = await fsp.stat(final).catch(() => null);
    const incident = incidentOf({ ...bundle, createdMs }, id, data.length);
    index.set(file, { file, size: data.length, mtimeMs: st?.mtimeMs ?? 0, summary: incident, createdMs: incident.tMs });
    counters.writes++;
    return { id, path: final, bytes: data.length, evicted, incident };
  }

  function checkId(id: string): void {
    if (typeof id !== 'string' || !isValidBundleId(id)) {
      throw new StoreError('PREMORTEM_ERR_BUNDLE_BAD_ID', `'${String(id)}' is not a bundle id`);
    }
  }

  async function readRaw(id: string): Promise<Uint8Array> {
    checkId(id);
    let file: Buffer;
    try {
      file = await fsp.readFile(path.join(dir, id + BUNDLE_FILE_EXT));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') throw new StoreError('PREMORTEM_ERR_BUNDLE_NOT_FOUND', `no bundle ${id} in ${dir}`);
      throw new StoreError('PREMORTEM_ERR_STORE_IO', `cannot read bundle ${id}: ${(err as Error).message}`, { cause: err, errno: errnoOf(err) });
    }
    return decodeBundleFile(file, `bundle ${id}`);
  }

  return {
    dir,
    ready,
    write(bundle) {
      if (readOnly) return Promise.reject(new StoreError('PREMORTEM_ERR_STORE_READ_ONLY', `${dir} was opened read-only`));
      if (closed) return Promise.reject(new StoreError('PREMORTEM_ERR_STORE_CLOSED', 'the bundle store is closed'));
      if (pendingWrites >= maxPendingWrites) {
        return Promise.reject(fail('PREMORTEM_ERR_STORE_BUSY', `more than ${maxPendingWrites} bundle writes are waiting; bundle dropped`));
      }
      pendingWrites++;
      return serial(() => doWrite(bundle)).finally(() => { pendingWrites--; });
    },
    list() {
      return serial(async () => {
        await ready();
        try {
          await syncIndex();
        } catch (err) {
          throw new StoreError('PREMORTEM_ERR_STORE_IO', `cannot read ${dir}: ${(err as Error).message}`, { cause: err, errno: errnoOf(err) });
        }
        return [...index.values()]
          .filter((e): e is IndexEntry & { summary: IncidentSummary } => !!e.summary)
          .sort((a, b) => b.createdMs - a.createdMs || (a.file < b.file ? 1 : -1))
          .map((e) => e.summary);
      });
    },
    readRaw,
    async read(id) {
      const payload = await readRaw(id);
      const r = codec().tryDecodeBundle(payload);
      if (!r.ok) throw new StoreError('PREMORTEM_ERR_BUNDLE_CORRUPT', `bundle ${id}: ${r.error.message}`, { cause: r.error });
      return r.value;
    },
    remove(id) {
      checkId(id);
      if (readOnly) return Promise.reject(new StoreError('PREMORTEM_ERR_STORE_READ_ONLY', `${dir} was opened read-only`));
      return serial(async () => {
        await ready();
        const e = index.get(id + BUNDLE_FILE_EXT) ?? { file: id + BUNDLE_FILE_EXT, size: 0, mtimeMs: 0, createdMs: 0 };
        try {
          await fsp.access(path.join(dir, e.file));
        } catch {
          index.delete(e.file);
          return false;
        }
        try {
          await unlinkEntry(e);
        } catch (err) {
          throw ioFailure(`cannot remove bundle ${id}`, err);
        }
        return true;
      });
    },
    health() {
      let corrupt = 0;
      for (const e of index.values()) if (!e.summary) corrupt++;
      return {
        dir, writes: counters.writes, errors: counters.errors, lastError, bytesUsed: bytesUsed(), quotaBytes,
        bundles: bundleCount(), maxBundles, retentionDays, evicted: counters.evicted, corrupt, pendingWrites,
      };
    },
    async close() {
      closed = true;
      await queue;
    },
  };
}
