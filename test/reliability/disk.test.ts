/**
 * Reliability 6: disk trouble. The data directory is on a 2 MiB tmpfs; a
 * tracked master's workers die (exit 1) every 300 ms, each a post-mortem.
 * Phase 1: the quota (100 KiB) holds at every sample. Phase 2: the tmpfs is
 * filled by another file (ENOSPC). Phase 3: it is remounted read-only (EROFS).
 * Through both: tracing continues (ticks keep coming), the store's error
 * counter rises, /api/health and the viewer's Hello (feature "store") show the
 * error with its code, and the quota is never exceeded.
 * Existing coverage: test/unit/store.test.ts checks ENOSPC/EROFS on the bare store.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../../agent/run';
import { dyingChildrenMaster, printed, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { connect, healthOf, quietLogger } from '../soak/harness';

const QUOTA = 100 * 1024; // ~10 bundles: eviction runs all through phase 1
const TAG = `pm-disk-${process.pid}`;
const MASTER = dyingChildrenMaster(0.05, 0.3);

let mnt: string;
let running: Running | undefined;
let mounted = false;
afterAll(async () => {
  await running?.stop();
  await stopAll();
  if (mounted) execFileSync('umount', [mnt]);
  fs.rmSync(mnt, { recursive: true, force: true });
});

function dirBytes(dir: string): number {
  let n = 0;
  for (const f of fs.readdirSync(dir)) { try { n += fs.statSync(path.join(dir, f)).size; } catch { /* renamed meanwhile */ } }
  return n;
}

test('full and read-only data directory: tracing goes on, errors counted and shown in health and Hello, quota never exceeded', async () => {
  mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', mnt]);
  mounted = true;
  const dataDir = path.join(mnt, 'data');
  const master = start('/usr/bin/python3.11', ['-c', MASTER, TAG], { stdio: ['ignore', 'pipe', 'inherit'] });
  await printed(master, /ready/);
  running = await runPremortem({ port: 0, dataDir, quotaBytes: QUOTA, match: new RegExp(TAG), autoDiscover: false, intervalMs: 500,
    windowMs: 30_000, bundleWindowMs: 5_000, discoveryIntervalMs: 500 }, { logger: quietLogger() });
  let ticks = 0;
  running.agent.on('tick', () => ticks++);
  let maxBytes = 0;
  const sampler = setInterval(() => { maxBytes = Math.max(maxBytes, dirBytes(dataDir)); }, 50);
  try {
    // Phase 1: bundles written, evicted under the quota.
    await waitFor(() => running!.store.health().writes >= 15, 20_000, '15 bundles written');
    const written = running.store.health();
    expect(written.errors).toBe(0);
    expect(written.evicted).toBeGreaterThan(0);

    // Phase 2: the disk fills up (another file takes what is left).
    // (and keeps taking what eviction frees: another writer on the same disk)
    const chunk = Buffer.alloc(4096);
    const fill = () => { try { for (;;) fs.appendFileSync(path.join(mnt, 'filler'), chunk); } catch { /* ENOSPC: full */ } };
    fill();
    const filler = setInterval(fill, 20);
    const e0 = running.store.health().errors;
    const ticks0 = ticks;
    await waitFor(() => running!.store.health().errors >= e0 + 3, 10_000, 'write errors on a full disk');
    let h = await healthOf(running.url!);
    expect(h.store.lastError.code).toBe('PREMORTEM_ERR_STORE_NO_SPACE');
    expect(h.features.find((f: { name: string }) => f.name === 'store')).toMatchObject({ enabled: false });
    let v = await connect(running.url!.replace(/^http/, 'ws') + 'ws');
    let hello = await waitFor(() => v.messages.find((m) => m.body === 'hello'), 3000, 'Hello');
    expect(hello.hello!.features.find((f) => f.name === 'store')!.reason).toMatch(/PREMORTEM_ERR_STORE_NO_SPACE/);
    v.ws.terminate();
    const noSpaceErrors = running.store.health().errors - e0;

    // Phase 3: read-only.
    clearInterval(filler);
    fs.rmSync(path.join(mnt, 'filler'));
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    const e1 = running.store.health().errors;
    await waitFor(() => running!.store.health().errors >= e1 + 3, 10_000, 'write errors on a read-only disk');
    h = await healthOf(running.url!);
    expect(h.store.lastError.code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
    v = await connect(running.url!.replace(/^http/, 'ws') + 'ws');
    hello = await waitFor(() => v.messages.find((m) => m.body === 'hello'), 3000, 'Hello');
    expect(hello.hello!.features.find((f) => f.name === 'store')).toMatchObject({ enabled: false });
    expect(hello.hello!.features.find((f) => f.name === 'store')!.reason).toMatch(/READ_ONLY/);
    // A viewer already connected hears of the next failed write at once, as an Error frame.
    const err = await waitFor(() => v.messages.find((m) => m.body === 'error'), 8000, 'an Error frame for a failed write');
    expect(err.error!.code).toBe('PREMORTEM_ERR_STORE_READ_ONLY');
    expect(err.error!.message).toMatch(/post-mortem of pid \d+ not written/);
    v.ws.terminate();
    // Tracing went on all along: one tick per 500 ms, deaths still judged.
    const elapsedTicks = ticks - ticks0;
    expect(elapsedTicks).toBeGreaterThanOrEqual(3);
    expect(h.trackedWorkersAlive).toBeGreaterThanOrEqual(2);
    expect(h.errors['bundle-write']).toBeGreaterThanOrEqual(6);
    execFileSync('mount', ['-o', 'remount,rw', mnt]);
    await sleep(600);
    console.log(`disk: ${written.writes} bundles written under a ${QUOTA} B quota (max seen on disk ${maxBytes} B); ${noSpaceErrors} ENOSPC and ${running.store.health().errors - e1} EROFS errors counted; ${elapsedTicks} ticks during the trouble`);
  } finally {
    clearInterval(sampler);
  }
  expect(maxBytes).toBeLessThanOrEqual(QUOTA);
}, 60_000);
