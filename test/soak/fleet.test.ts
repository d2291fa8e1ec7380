/**
 * Soak, reliability 11: the demo fleet (bench/demo/demo.ts: two gunicorn services in
 * trouble, CPU hogs, a memory leak that ends in OOM kills, a master timeout)
 * runs for PREMORTEM_SOAK_MINUTES (default 30) as its own process, and on top:
 *   - every FLOOD_EVERY_S a burst of up to 2,000 forks/s (half of what this
 *     machine forks, measured first) for 5 s from a master the
 *     demo's agent tracks (its argv carries the demo's app dir, which the demo
 *     matches), i.e. a flood of fork/exit records and planned deaths;
 *   - every KILL_EVERY_S a SIGKILL of one demo-api worker (killed-by-other).
 * Asserted: the demo process's RSS, fd count and BPF link count are flat
 * (median of the last fifth vs the second fifth), and every failure death seen
 * on the viewer stream has exactly one bundle, listed by /api/incidents,
 * downloadable, with the same pid, start ticks and verdict; no bundle without
 * a death.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Death } from '../../proto/codec';
import { linkIdsOf } from '../helpers/bpf';
import { killGroup, printed, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { freePort } from '../helpers/services';
import { calibrateForks, startForkMaster } from '../helpers/forker';
import { childPids, codec, connect, fdCount, httpGet, median, MiB, ROOT, rssBytes, soakMinutes } from './harness';

const MINUTES = soakMinutes(30);
/** Floods and kills at least 4 times per run, at most every 2 min / 90 s. */
const FLOOD_EVERY_S = Math.max(30, Math.min(120, (MINUTES * 60) / 5));
const KILL_EVERY_S = Math.max(20, Math.min(90, (MINUTES * 60) / 6));
afterAll(stopAll);

test(`demo fleet for ${MINUTES} min with floods and deaths: flat RSS, fds, links; one correct bundle per death`, async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-fleet-'));
  const port = await freePort();
  const durationS = Math.round(MINUTES * 60) + 60;
  const demo = start(process.execPath, [path.join(ROOT, 'dist', 'bench', 'demo', 'demo.js'), '--duration', String(durationS), '--port', String(port), '--data-dir', dataDir],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PREMORTEM_LOG: 'warn' } });
  const samples: Array<{ tS: number; rssMiB: number; fds: number; links: number }> = [];
  const timers: NodeJS.Timeout[] = [];
  try {
    await printed(demo, /\[demo\] viewer: http/, 60_000);
    const base = `http://127.0.0.1:${port}/`;
    const viewer = await connect(`ws://127.0.0.1:${port}/ws`);
    viewer.send({ subscribe: { all: true } });
    // The demo's app dir: gunicorn's --chdir of its masters.
    const apiMaster = await waitFor(() => childPids(demo.pid!).find((p) => /api:app/.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'))), 20_000, 'demo-api master');
    const appDirArg = fs.readFileSync(`/proc/${apiMaster}/cmdline`, 'utf8').split('\0');
    const appDir = appDirArg[appDirArg.indexOf('--chdir') + 1];
    const t0 = Date.now();
    let floods = 0, kills = 0;
    const forkRate = Math.min(2000, Math.floor(calibrateForks(1000).perSec / 2));
    timers.push(setInterval(() => {
      floods++;
      const m = startForkMaster(forkRate, 5, appDir, 'ignore');
      void printed(m, /ready/).then(async () => { await sleep(2500); m.stdin!.write('go\n'); await printed(m, /forks/, 30_000); m.stdin!.write('bye\n'); })
        .catch(() => undefined).finally(() => setTimeout(() => void killGroup(m), 2000));
    }, FLOOD_EVERY_S * 1000));
    timers.push(setInterval(() => {
      const workers = childPids(apiMaster);
      if (!workers.length) return;
      kills++;
      try { process.kill(workers[0], 'SIGKILL'); } catch { /* gone */ }
    }, KILL_EVERY_S * 1000));
    while (Date.now() - t0 < MINUTES * 60_000) {
      samples.push({ tS: (Date.now() - t0) / 1000, rssMiB: rssBytes(demo.pid!) / MiB, fds: fdCount(demo.pid!), links: linkIdsOf(demo.pid!).length });
      await sleep(Math.min(10_000, MINUTES * 60_000 / 40));
    }
    for (const t of timers) clearInterval(t);
    await sleep(5000); // the last deaths' bundles
    // Flat: once warm (after the first flood), the first fifth vs the last fifth.
    const warm = samples.filter((x) => x.tS >= FLOOD_EVERY_S + 30);
    const fifth = Math.max(1, Math.floor(warm.length / 5));
    const early = warm.slice(0, fifth), late = warm.slice(-fifth);
    const m = (xs: typeof samples, k: 'rssMiB' | 'fds' | 'links') => median(xs.map((x) => x[k]));
    const report = { minutes: MINUTES, forkRate, floods, kills, rssMiB: [m(early, 'rssMiB'), m(late, 'rssMiB')], fds: [m(early, 'fds'), m(late, 'fds')], links: [m(early, 'links'), m(late, 'links')] };
    console.log(`fleet soak (flatness): ${JSON.stringify(report)}\nRSS MiB: ${samples.map((x) => `${x.tS.toFixed(0)}:${x.rssMiB.toFixed(0)}`).join(' ')}`);
    expect(warm.length).toBeGreaterThanOrEqual(5);
    expect(m(late, 'rssMiB')).toBeLessThan(m(early, 'rssMiB') * 1.2 + 30);
    expect(m(late, 'fds')).toBeLessThanOrEqual(m(early, 'fds') + 5);
    expect(m(late, 'links')).toBeLessThanOrEqual(m(early, 'links') + 2);
    // One correct bundle per failure death.
    const deaths = viewer.messages.filter((x) => x.body === 'death').map((x) => x.death as Death);
    const failures = deaths.filter((d) => d.verdict?.failure);
    const incidents = JSON.parse((await httpGet(base + 'api/incidents')).body.toString()).incidents as Array<{ id: string; pid: number; startTicks: number; verdictKind: string }>;
    for (const d of failures) {
      const mine = incidents.filter((i) => i.id === d.bundleId);
      expect([d.identity!.pid, mine.length]).toEqual([d.identity!.pid, 1]);
      expect(mine[0]).toMatchObject({ pid: d.identity!.pid, startTicks: d.identity!.startTicks, verdictKind: d.verdict!.kind });
      // 503 + Retry-After: the agent was busy (the answer is refused, never lost): ask again, a few times.
      let pb = await httpGet(`${base}api/incidents/${d.bundleId}.pb`);
      for (let i = 0; i < 5 && pb.status === 503; i++) {
        await new Promise((r) => setTimeout(r, 1000));
        pb = await httpGet(`${base}api/incidents/${d.bundleId}.pb`);
      }
      expect(pb.status).toBe(200);
      const b = codec.decodeBundle(pb.body);
      expect([b.worker!.pid, b.verdict!.kind]).toEqual([d.identity!.pid, d.verdict!.kind]);
    }
    const deathIds = new Set(failures.map((d) => d.bundleId));
    expect(incidents.filter((i) => !deathIds.has(i.id))).toEqual([]);
    expect(failures.length).toBeGreaterThan(0);
    const kinds: Record<string, number> = {};
    for (const d of failures) kinds[d.verdict!.kind] = (kinds[d.verdict!.kind] ?? 0) + 1;
    console.log(`fleet soak: ${JSON.stringify({ ...report, deaths: deaths.length, failures: failures.length, bundles: incidents.length, kinds })}\nRSS MiB: ${samples.map((s) => s.rssMiB.toFixed(0)).join(' ')}`);
    viewer.ws.terminate();
  } finally {
    for (const t of timers) clearInterval(t);
    await killGroup(demo, 'SIGTERM');
    await sleep(3000);
    await killGroup(demo);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}, soakMinutes(30) * 60_000 + 300_000);
