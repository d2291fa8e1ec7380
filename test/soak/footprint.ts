/**
 * The footprint soak (issue 16): `premortem run` (tracer + its server process)
 * watching a gunicorn whose workers recycle under light load (--max-requests),
 * with a worker SIGKILLed every so often (a death, a bundle) and viewers that
 * come and go. Sampled every few seconds: RSS of both processes, their fds,
 * and the entries of the per-process BPF maps. The curve is written as a
 * picture (SVG) and the verdict as JSON next to it in docs/, where the
 * benchmark's report reads it (bench/targets.ts SOAK_RESULT).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { killGroup, sleep, waitForAsync } from '../helpers/procs';
import { appDir, freePort, get, gunicorn, ready } from '../helpers/services';
import { perProcessEntries } from './churn';
import { childPids, connect, fdCount, healthOf, MiB, rssBytes, startCliAgent, type CliAgent, type Viewer } from './harness';

export interface FootprintSample { tS: number; tracerMiB: number; serverMiB: number; fds: number; pidsEntries: number; tracked: number }
export interface FootprintPlan { minutes: number; warmupS: number; windowS: number; deathEveryS: number; viewerEveryS: number; sampleEveryS: number }

/**
 * 30 min: warm-up 5 min, full 10-min windows, a death a minute. Shorter runs scale down (a harness check, not the
 * target): windows of a third of the run, the warm-up until they are full.
 */
export function planFor(minutes: number): FootprintPlan {
  const s = minutes * 60;
  return {
    minutes, warmupS: Math.min(300, Math.round(Math.min(600, s / 3))), windowS: Math.round(Math.min(600, s / 3)), deathEveryS: Math.max(15, Math.min(60, s / 10)),
    viewerEveryS: Math.max(10, Math.min(45, s / 20)), sampleEveryS: Math.max(2, Math.min(10, s / 120)),
  };
}

function sampleOf(agent: CliAgent, t0: number, tracked: number): FootprintSample {
  const pid = agent.child.pid!;
  const server = childPids(pid)[0];
  return {
    tS: (Date.now() - t0) / 1000, tracerMiB: rssBytes(pid) / MiB, serverMiB: server ? rssBytes(server) / MiB : 0,
    fds: fdCount(pid) + (server ? fdCount(server) : 0), pidsEntries: perProcessEntries(pid).pids ?? 0, tracked,
  };
}

export interface FootprintRun { plan: FootprintPlan; samples: FootprintSample[]; start: FootprintSample; end: FootprintSample; requests: number; deaths: number; viewers: number; incidents: number }

/** Runs the soak; the caller judges and records. */
export async function runFootprintSoak(plan: FootprintPlan): Promise<FootprintRun> {
  const app = appDir('footprint');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-footprint-'));
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '4', '--max-requests', '150', '--max-requests-jitter', '50']);
  // Drained: every recycle logs, and a full pipe would block the master (no more workers) and its workers.
  let gunicornLog = '';
  const keep = (d: Buffer) => { gunicornLog = (gunicornLog + d.toString()).slice(-4000); };
  master.stdout?.on('data', keep);
  master.stderr?.on('data', keep);
  let agent: CliAgent | undefined;
  let stop = false;
  const open: Viewer[] = [];
  const closers = new Set<NodeJS.Timeout>();
  try {
    await ready(port);
    agent = await startCliAgent(['--no-auto', '--match', app.dir, '--window-s', String(plan.windowS), '--bundle-window-s', String(Math.min(300, plan.windowS / 2)),
      '--data-dir', dataDir]);
    const a = agent;
    const tracked = async () => (await healthOf(a.url)).trackedWorkersAlive as number;
    await waitForAsync(async () => (await tracked()) >= 5, 30_000, 'the gunicorn master and its 4 workers to be tracked');
    await sleep(3000);
    const t0 = Date.now();
    const start = sampleOf(a, t0, await tracked());
    let requests = 0, deaths = 0, viewers = 0;
    // Light load (a worker recycles every ~150 requests), deaths, viewers that come and go.
    const load = Promise.all([0, 1].map(async () => {
      while (!stop) {
        try { if ((await get(port, '/', 5000)).status === 200) requests++; } catch { /* a recycling worker */ }
        await sleep(20);
      }
    }));
    const timers = [
      setInterval(() => {
        const w = childPids(master.pid!);
        if (!w.length) return;
        deaths++;
        try { process.kill(w[deaths % w.length], 'SIGKILL'); } catch { /* gone */ }
      }, plan.deathEveryS * 1000),
      setInterval(() => {
        viewers++;
        void connect(a.url.replace(/^http/, 'ws').replace(/\/?$/, '/ws')).then((v) => {
          v.collect = false;
          v.send({ subscribe: { all: true } });
          open.push(v);
          const t = setTimeout(() => { closers.delete(t); v.ws.terminate(); open.splice(open.indexOf(v), 1); }, (plan.viewerEveryS * 1000) / 2);
          closers.add(t);
        }).catch(() => undefined);
      }, plan.viewerEveryS * 1000),
    ];
    const samples: FootprintSample[] = [start];
    try {
      while (Date.now() - t0 < plan.minutes * 60_000) {
        await sleep(plan.sampleEveryS * 1000);
        samples.push(sampleOf(a, t0, await tracked()));
      }
    } finally {
      for (const t of timers) clearInterval(t);
      stop = true;
      await load;
      for (const v of [...open]) v.ws.terminate();
    }
    // Back to where it began: the same 5 processes alive, their entries, no fds left over.
    await waitForAsync(async () => {
      const s = sampleOf(a, t0, await tracked());
      return s.tracked === start.tracked && s.pidsEntries === start.pidsEntries && s.fds <= start.fds + 2;
    }, 30_000, 'tracked processes, pid filter entries and fds back to their values at the start').catch(() => undefined);
    const end = sampleOf(a, t0, await tracked());
    if (end.tracked < start.tracked) console.log(`footprint soak: gunicorn has ${end.tracked - 1} of 4 workers at the end; its log:\n${gunicornLog}`);
    const incidents = (JSON.parse((await get(Number(new URL(a.url).port), '/api/incidents')).body).incidents as unknown[]).length;
    return { plan, samples, start, end, requests, deaths, viewers, incidents };
  } finally {
    for (const t of closers) clearTimeout(t);
    for (const v of open) v.ws.terminate();
    if (agent) await killGroup(agent.child, 'SIGTERM');
    await killGroup(master);
    app.remove();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** RSS (tracer + server) at the end of the warm-up and its largest value after it. */
export function flatness(r: FootprintRun): { atWarmupMiB: number; maxAfterMiB: number; withinPct: number } {
  const total = (s: FootprintSample) => s.tracerMiB + s.serverMiB;
  const at = r.samples.find((s) => s.tS >= r.plan.warmupS) ?? r.samples[r.samples.length - 1];
  const after = r.samples.filter((s) => s.tS >= at.tS).map(total);
  const maxAfterMiB = Math.max(...after);
  return { atWarmupMiB: total(at), maxAfterMiB, withinPct: ((maxAfterMiB - total(at)) / total(at)) * 100 };
}
