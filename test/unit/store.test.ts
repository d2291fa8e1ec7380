import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  createBundleStore, encodeBundleFile, decodeBundleFile, StoreError,
  BUNDLE_HEADER_BYTES, type BundleStore,
} from '../../agent/store';
import { bundleToJson } from '../../agent/export/json';
import type { Bundle, DeepPartial } from '../../proto/codec';
import { loadCodec } from '../../proto/node';

const DAY = 86_400_000;
const quiet = { info() {}, warn() {}, error() {} };
const T0 = Date.UTC(2025, 10, 26, 12, 0, 0);

let tmpRoot: string;
const mounts: string[] = [];
const stores: BundleStore[] = [];

beforeEach(() => { tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-store-')); });
afterEach(async () => {
  await Promise.allSettled(stores.splice(0).map((s) => s.close()));
  for (const m of mounts.splice(0)) spawnSync('umount', [m]);
  fs.rmSync(tmpRoot, { recursive: true, force: true });
});

function open(opts: Parameters<typeof createBundleStore>[0] = {}): BundleStore {
  const s = createBundleStore({ dir: path.join(tmpRoot, 'data'), logger: quiet, ...opts });
  stores.push(s);
  return s;
}

function makeBundle(i: number, padBytes = 0, over: DeepPartial<Bundle> = {}): DeepPartial<Bundle> {
  return {
    id: `b${String(i).padStart(4, '0')}`,
    createdMs: T0 + i * 1000,
    host: 'h',
    worker: { pid: 1000 + i, startTicks: 77, serviceId: 'svc', role: 'worker' },
    service: { id: 'svc', name: 'app:app', kind: 'gunicorn' },
    verdict: { kind: 'oom-killed', tMs: T0 + i * 1000, summary: `worker ${1000 + i} OOM-killed`, failure: true },
    markers: padBytes ? [{ kind: 'pad', message: 'x'.repeat(padBytes) }] : [],
    ...over,
  };
}

/** Bytes of every regular file in dir (temp files included): what the quota bounds. */
function diskBytes(dir: string): number {
  return fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
}

function mountTmpfs(dir: string, size: string): void {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir]);
  mounts.push(dir);
}

async function rejection(p: Promise<unknown>): Promise<StoreError> {
  try { await p; } catch (err) { return err as StoreError; }
  throw new Error('expected a rejection');
}

test('a write is atomic, 0600 in a 0700 directory, and reads back', async () => {
  const store = open({ now: () => T0 + 10_000 });
  const r = await store.write(makeBundle(1));
  expect(r.id).toBe('b0001');
  expect(path.basename(r.path)).toBe('b0001.pmb');
  expect(fs.statSync(r.path).mode & 0o777).toBe(0o600);
  expect(fs.statSync(store.dir).mode & 0o777).toBe(0o700);
  expect(fs.readdirSync(store.dir)).toEqual(['b0001.pmb']); // no temp file left
  const file = fs.readFileSync(r.path);
  expect(file.toString('latin1', 0, 4)).toBe('PMB1');
  expect(file.readUInt32LE(4)).toBe(file.length - BUNDLE_HEADER_BYTES);

  const back = await store.read('b0001');
  expect(back.verdict!.kind).toBe('oom-killed');
  expect(back.worker!.pid).toBe(1001);
  expect(back.formatVersion).toBe(1);
  expect(loadCodec().decodeBundle(await store.readRaw('b0001')).id).toBe('b0001');
  expect(await store.list()).toEqual([expect.objectContaining({
    id: 'b0001', pid: 1001, verdictKind: 'oom-killed', service: 'app:app', serviceId: 'svc', failure: true, bytes: file.length,
  })]);
  expect(store.health()).toMatchObject({ writes: 1, errors: 0, lastError: null, bundles: 1, bytesUsed: file.length });

  // A bundle without id or time gets both.
  const anon = await store.write({ worker: { pid: 4242 } });
  expect(anon.id).toMatch(/^\d{8}-\d{6}-\d{3}-4242-[0-9a-f]{4}$/);
});

test('a bundle cut mid-write or with a bad checksum is never listed; stale temp files go at start', async () => {
  const dir = path.join(tmpRoot, 'data');
  fs.mkdirSync(dir, { mode: 0o700 });
  const codec = loadCodec();
  const good = encodeBundleFile(codec.encodeBundle(makeBundle(1)));
  fs.writeFileSync(path.join(dir, 'b0001.pmb'), good);
  fs.writeFileSync(path.join(dir, 'b0002.pmb'), encodeBundleFile(codec.encodeBundle(makeBundle(2))).subarray(0, 60)); // truncated
  const flipped = Buffer.from(encodeBundleFile(codec.encodeBundle(makeBundle(3))));
  flipped[flipped.length - 3] ^= 0x40; // payload byte changed: checksum mismatch
  fs.writeFileSync(path.join(dir, 'b0003.pmb'), flipped);
  const badMagic = Buffer.from(good); badMagic.write('XXXX', 0, 'latin1');
  fs.writeFileSync(path.join(dir, 'b0004.pmb'), badMagic);
  fs.writeFileSync(path.join(dir, 'b0005.pmb'), Buffer.alloc(0)); // an empty file from a crash without fsync
  const deadPid = spawnSync('true').pid!;
  fs.writeFileSync(path.join(dir, `.tmp-${deadPid}-aaaaaa`), good.subarray(0, 100)); // a writer killed mid-write
  fs.writeFileSync(path.join(dir, `.tmp-${process.pid}-bbbbbb`), good.subarray(0, 100)); // a live writer's file

  const store = open({ now: () => T0 + 10_000 });
  const listed = await store.list();
  expect(listed.map((b) => b.id)).toEqual(['b0001']);
  const names = fs.readdirSync(dir);
  expect(names).not.toContain(`.tmp-${deadPid}-aaaaaa`);
  expect(names).toContain(`.tmp-${process.pid}-bbbbbb`);
  expect(store.health().corrupt).toBe(4);
  for (const id of ['b0002', 'b0003', 'b0004', 'b0005']) {
    expect((await rejection(store.read(id))).code).toBe('PREMORTEM_ERR_BUNDLE_CORRUPT');
  }
  expect((await rejection(store.read('nope'))).code).toBe('PREMORTEM_ERR_BUNDLE_NOT_FOUND');
  expect((await rejection(store.read('../etc/passwd'))).code).toBe('PREMORTEM_ERR_BUNDLE_BAD_ID');
  expect(() => decodeBundleFile(flipped)).toThrow(/SHA-256/);

  // Corruption after start is caught too: list() re-verifies changed files.
  const p = path.join(dir, 'b0001.pmb');
  const bytes = fs.readFileSync(p); bytes[bytes.length - 1] ^= 1;
  fs.writeFileSync(p, bytes);
  fs.utimesSync(p, new Date(), new Date(Date.now() + 5000));
  expect(await store.list()).toEqual([]);
});

test('the quota and the bundle cap are never exceeded; oldest go first; too large is refused', async () => {
  const one = encodeBundleFile(loadCodec().encodeBundle(makeBundle(0, 20_000))).length;
  const quotaBytes = Math.floor(one * 3.5);
  const store = open({ quotaBytes, now: () => T0 + DAY });
  for (let i = 0; i < 12; i++) {
    const r = await store.write(makeBundle(i, 20_000));
    expect(diskBytes(store.dir)).toBeLessThanOrEqual(quotaBytes);
    expect(store.health().bytesUsed).toBe(diskBytes(store.dir));
    if (i >= 3) expect(r.evicted).toEqual([`b${String(i - 3).padStart(4, '0')}`]);
  }
  expect((await store.list()).map((b) => b.id)).toEqual(['b0011', 'b0010', 'b0009']);
  expect(store.health()).toMatchObject({ evicted: 9, bundles: 3, errors: 0 });

  const err = await rejection(store.write(makeBundle(99, quotaBytes)));
  expect(err).toBeInstanceOf(StoreError);
  expect(err.code).toBe('PREMORTEM_ERR_BUNDLE_TOO_LARGE');
  expect(err.message).toMatch(/more than the whole quota/);
  expect(store.health()).toMatchObject({ errors: 1, bundles: 3, lastError: { code: 'PREMORTEM_ERR_BUNDLE_TOO_LARGE' } });
  expect((await store.list()).map((b) => b.id)).toEqual(['b0011', 'b0010', 'b0009']); // nothing evicted for it

  const capped = open({ dir: path.join(tmpRoot, 'capped'), maxBundles: 3, now: () => T0 + DAY });
  // Concurrent writes are serialised: the cap holds at every step.
  await Promise.all([0, 1, 2, 3, 4].map((i) => capped.write(makeBundle(i))));
  expect((await capped.list()).map((b) => b.id)).toEqual(['b0004', 'b0003', 'b0002']);
  expect(fs.readdirSync(capped.dir).length).toBe(3);

  const busy = open({ dir: path.join(tmpRoot, 'busy'), maxPendingWrites: 2, now: () => T0 + DAY });
  const results = await Promise.allSettled([0, 1, 2, 3].map((i) => busy.write(makeBundle(i))));
  expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code))
    .toEqual(['PREMORTEM_ERR_STORE_BUSY', 'PREMORTEM_ERR_STORE_BUSY']);
});

test('retention: bundles older than retentionDays are deleted at start and before writes', async () => {
  let now = T0;
  const dir = path.join(tmpRoot, 'data');
  const first = open({ dir, retentionDays: 14, now: () => now });
  await first.write(makeBundle(1, 0, { createdMs: T0 - 20 * DAY, verdict: { kind: 'crashed', tMs: T0 - 20 * DAY } }));
  await first.write(makeBundle(2, 0, { createdMs: T0 - 10 * DAY, verdict: { kind: 'crashed', tMs: T0 - 10 * DAY } }));
  expect((await first.list()).map((b) => b.id)).toEqual(['b0002']); // b0001 was already too old at its write

  now = T0 + 5 * DAY; // b0002 is now 15 days old
  const restarted = open({ dir, retentionDays: 14, now: () => now });
  expect(await restarted.list()).toEqual([]);
  expect(restarted.health().evicted).toBe(1);
});

test('a full disk (ENOSPC on a 1 MiB tmpfs) fails the write with a stable code, and nothing else breaks', async () => {
  const dir = path.join(tmpRoot, 'full');
  mountTmpfs(dir, '1m');
  const store = open({ dir, quotaBytes: 64 * 2 ** 20, now: () => T0 + DAY });
  await store.write(makeBundle(1, 600_000));
  const err = await rejection(store.write(makeBundle(2, 600_000)));
  expect(err.code).toBe('PREMORTEM_ERR_STORE_NO_SPACE');
  expect(err.errno).toBe('ENOSPC');
  const h = store.health();
  expect(h).toMatchObject({ writes: 1, errors: 1, bundles: 1, lastError: { code: 'PREMORTEM_ERR_STORE_NO_SPACE' } });
  expect(h.lastError!.message).toMatch(/full/);
  expect(fs.readdirSync(dir)).toEqual(['b0001.pmb']); // the failed temp file is gone
  expect((await store.list()).map((b) => b.id)).toEqual(['b0001']);
  expect((await store.read('b0001')).worker!.pid).toBe(1001);
  await store.write(makeBundle(3, 1000)); // the store goes on once space allows
  expect(store.health()).toMatchObject({ writes: 2, errors: 1, bundles: 2 });
});

test('a read-only directory fails writes with a stable code; listing and reading go on', async () => {
  const dir = path.join(tmpRoot, 'ro');
  mountTmpfs(dir, '4m');
  const store = open({ dir, now: () => T0 + DAY });
  await store.write(makeBundle(1));
  execFileSync('mount', ['-o', 'remount,ro', dir]);

  const err = await rejection(store.write(makeBundle(2)));
  expect(err.code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
  expect(err.errno).toBe('EROFS');
  expect(store.health()).toMatchObject({ errors: 1, lastError: { code: 'PREMORTEM_ERR_STORE_READ_ONLY' } });
  expect((await store.list()).map((b) => b.id)).toEqual(['b0001']);

  // A fresh agent on the read-only directory starts, lists, and reports its write errors.
  const fresh = open({ dir, now: () => T0 + DAY });
  expect((await fresh.list()).map((b) => b.id)).toEqual(['b0001']);
  expect((await rejection(fresh.write(makeBundle(3)))).code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
  expect((await rejection(fresh.remove('b0001'))).code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
  expect(fresh.health().errors).toBe(2);

  // A data directory that cannot even be created.
  const nowhere = open({ dir: path.join(dir, 'sub'), now: () => T0 });
  expect((await rejection(nowhere.write(makeBundle(4)))).code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
  expect((await rejection(nowhere.ready())).code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
});

test('remove, close, and invalid options', async () => {
  const store = open({ now: () => T0 + DAY });
  await store.write(makeBundle(1));
  expect(await store.remove('b0001')).toBe(true);
  expect(await store.remove('b0001')).toBe(false);
  expect(await store.list()).toEqual([]);
  await store.close();
  expect((await rejection(store.write(makeBundle(2)))).code).toBe('PREMORTEM_ERR_STORE_CLOSED');
  expect(() => createBundleStore({ quotaBytes: 0 })).toThrow(TypeError);
  expect(() => createBundleStore({ maxBundles: -1 })).toThrow(/maxBundles/);
  const bad = open({ dir: path.join(tmpRoot, 'bad'), now: () => T0 });
  expect((await rejection(bad.write({ id: '../escape' }))).code).toBe('PREMORTEM_ERR_BUNDLE_BAD_ID');
  expect((await rejection(bad.write({ worker: { pid: -5 } }))).code).toBe('PREMORTEM_ERR_BUNDLE_INVALID');
});

test('bundleToJson: documented field names, every field present, enums as words', () => {
  const json = bundleToJson(makeBundle(1));
  const text = JSON.stringify(json);
  const back = JSON.parse(text);
  expect(Object.keys(back)).toEqual(['format', 'formatVersion', 'id', 'createdMs', 'host', 'agentVersion', 'worker', 'service',
    'verdict', 'timelines', 'serviceBuckets', 'hostBuckets', 'markers', 'cgroupLimits', 'windowStartMs', 'windowEndMs', 'lostRecords',
    'intervalMs', 'kernel', 'stacks', 'stackSampling']);
  expect(back.format).toBe('premortem-bundle');
  expect(back.verdict.kind).toBe('oom-killed');
  expect(back.verdict.oomScope).toBe('none');
  expect(back.worker).toMatchObject({ pid: 1001, startTicks: 77, role: 'worker' });
  expect(back.service.kind).toBe('gunicorn');
  expect(back.cgroupLimits).toBeNull();
});

describe('read-only (what list, show and export use): the directory is only read', () => {
  /** Names, modes, sizes and mtimes of dir and its entries. */
  const snapshot = (dir: string) => [dir, ...fs.readdirSync(dir).sort().map((f) => path.join(dir, f))]
    .map((f) => { const st = fs.statSync(f); return `${path.basename(f)} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.mtimeMs}`; }).join('\n');

  test('no chmod, no temp-file cleanup, no retention; writes and removes refused', async () => {
    const dir = path.join(tmpRoot, 'shared');
    fs.mkdirSync(dir);
    fs.chmodSync(dir, 0o755);
    const codec = loadCodec();
    fs.writeFileSync(path.join(dir, 'b0001.pmb'), encodeBundleFile(codec.encodeBundle(makeBundle(1))));
    fs.writeFileSync(path.join(dir, 'b0002.pmb'), encodeBundleFile(codec.encodeBundle(makeBundle(2))).subarray(0, 50)); // corrupt
    const deadPid = spawnSync('true').pid!;
    fs.writeFileSync(path.join(dir, `.tmp-${deadPid}-aaaaaa`), 'half');
    const before = snapshot(dir);
    // Far past retention (and a quota the bundles exceed): a writable store would delete them.
    const store = open({ dir, readOnly: true, now: () => T0 + 400 * DAY, retentionDays: 1, quotaBytes: 100 });
    await store.ready();
    expect((await store.list()).map((b) => b.id)).toEqual(['b0001']);
    expect((await store.read('b0001')).worker!.pid).toBe(1001);
    expect((await rejection(store.write(makeBundle(3)))).code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
    expect((await rejection(store.remove('b0001'))).code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
    expect(snapshot(dir)).toBe(before);
    expect((fs.statSync(dir).mode & 0o777).toString(8)).toBe('755');
  });

  test('a missing directory: PREMORTEM_ERR_STORE_NOT_FOUND, and nothing is created', async () => {
    const dir = path.join(tmpRoot, 'missing', 'data');
    const err = await rejection(open({ dir, readOnly: true }).ready());
    expect(err).toBeInstanceOf(StoreError);
    expect(err.code).toBe('PREMORTEM_ERR_STORE_NOT_FOUND');
    expect(err.message).toContain(dir);
    expect(fs.existsSync(path.join(tmpRoot, 'missing'))).toBe(false);
    expect((await rejection(open({ dir: '/proc/1/nope', readOnly: true }).list())).code).toBe('PREMORTEM_ERR_STORE_NOT_FOUND');
  });

  test('not a directory, or one this user cannot list: PREMORTEM_ERR_STORE_UNREADABLE', async () => {
    const file = path.join(tmpRoot, 'file');
    fs.writeFileSync(file, 'x');
    const err = await rejection(open({ dir: file, readOnly: true }).ready());
    expect(err.code).toBe('PREMORTEM_ERR_STORE_UNREADABLE');
    expect(err.message).toMatch(/not a directory/);
    // A directory only root may list, opened by nobody (a real permission check, not a simulated one).
    const secret = path.join(tmpRoot, 'secret');
    fs.mkdirSync(secret, { mode: 0o700 });
    fs.chmodSync(tmpRoot, 0o755);
    const script = `require(${JSON.stringify(path.resolve(__dirname, '..', '..', 'dist', 'agent', 'store.js'))}).createBundleStore({ dir: ${JSON.stringify(secret)}, readOnly: true })`
      + '.ready().then(() => console.log("ok"), (e) => console.log(e.code))';
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, '-e', script], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('PREMORTEM_ERR_STORE_UNREADABLE');
  });
});

test('a writable store under /proc fails at once with the real errno instead of spinning in mkdir', async () => {
  const t0 = Date.now();
  const err = await rejection(open({ dir: '/proc/1/nope/data' }).ready());
  expect(err).toBeInstanceOf(StoreError);
  expect(err.message).toMatch(/cannot create the bundle directory \/proc\/1\/nope\/data/);
  expect(Date.now() - t0).toBeLessThan(5000);
});
