/**
 * Agent CPU while it only watches (`--only scaling`): `premortem run` at its
 * default 1 s tick tracking 0, 16, 256 and 1,024 idle python3.11 workers, no
 * viewer. CPU of the tracer and its server process from the threads'
 * schedstat (ns). The cost per worker per tick is the CPU above the 0-worker
 * run divided by the workers (and, between two counts, the marginal cost):
 * everything that grows with workers — the tick's reads, discovery's /proc
 * scan, timelines — counted together. The time is cut into windows, each
 * measured on its own: on a shared machine they disagree, and a target that
 * some windows meet and others miss is judged inconclusive (bench/targets.ts).
 */
import * as fs from 'fs';
import { startAgent, waitTracked } from './agentproc';
import { childrenOf, log, preciseCpuMeter, round, sleep, treeMemory } from './lib';
import { AppDir, idlePool, Service } from './services';

export interface ScalingPoint {
  workers: number;
  trackedAlive: number;
  seconds: number;
  /** Tracer + server process, % of one core. */
  cpuPct: number;
  tracerPct: number;
  serverPct: number | null;
  /** (cpu - cpu at 0 workers) / workers, µs per worker per 1 s tick. */
  usPerWorkerTick: number | null;
  /** The same CPU, window by window (WINDOWS of seconds / WINDOWS each). */
  windowsPct: number[];
  /** The whole host's busy CPU over the measurement, % of all its CPUs (other work on a shared machine). */
  hostBusyPct: number | null;
  /** Both processes' resident memory, each page once (not full windows: see the memory step). */
  togetherMiB: number;
}

export interface ScalingResult {
  intervalMs: number;
  points: ScalingPoint[];
  /** Marginal cost between consecutive counts, µs per added worker per tick. */
  marginal: Array<{ from: number; to: number; usPerWorkerTick: number }>;
}

const WINDOWS = 6;

/** Busy and total jiffies of the whole host (/proc/stat cpu line). */
function hostJiffies(): { busy: number; total: number } {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - (f[4] ?? 0), total };
}

/** Tracer + server CPU, % of one core, per window and over them all. */
async function measure(pid: number, seconds: number): Promise<{ per: Map<number, number>; windowsPct: number[]; hostBusyPct: number | null }> {
  const whole = preciseCpuMeter(pid);
  const h0 = hostJiffies();
  const windowsPct: number[] = [];
  for (let i = 0; i < WINDOWS; i++) {
    const w = preciseCpuMeter(pid);
    await sleep((seconds * 1000) / WINDOWS);
    windowsPct.push(round([...w.perProcess().values()].reduce((a, b) => a + b, 0), 3)!);
  }
  const h1 = hostJiffies();
  const hostBusyPct = h1.total > h0.total ? round(((h1.busy - h0.busy) / (h1.total - h0.total)) * 100, 1) : null;
  return { per: whole.perProcess(), windowsPct, hostBusyPct };
}

export async function runScaling(app: AppDir, o: { counts: number[]; seconds: number; settleSeconds: number }): Promise<ScalingResult> {
  const points: ScalingPoint[] = [];
  const intervalMs = 1000;
  for (const n of o.counts) {
    let pool: Service | undefined;
    let agent;
    try {
      if (n > 0) pool = await idlePool(app, n);
      agent = await startAgent({ match: app.match, extra: ['--max-tracked', String(Math.max(512, 2 * n))] });
      if (n > 0) await waitTracked(agent, n + 1, 120_000);
      await sleep(o.settleSeconds * 1000); // discovery and the first ticks settle
      const h = await agent.health();
      log(`scaling: ${n} idle workers (${h.trackedWorkersAlive} tracked), measuring ${o.seconds} s`);
      const { per, windowsPct, hostBusyPct } = await measure(agent.pid, o.seconds);
      const server = childrenOf(agent.pid)[0];
      const tracerPct = per.get(agent.pid) ?? 0, serverPct = server !== undefined ? per.get(server) ?? 0 : null;
      const cpuPct = [...per.values()].reduce((a, b) => a + b, 0);
      const base = points.find((p) => p.workers === 0);
      points.push({
        workers: n, trackedAlive: h.trackedWorkersAlive, seconds: o.seconds, cpuPct: round(cpuPct, 3)!, tracerPct: round(tracerPct, 3)!,
        serverPct: serverPct === null ? null : round(serverPct, 3), windowsPct, hostBusyPct, togetherMiB: round(treeMemory(agent.pid).uniqueBytes / 2 ** 20, 1)!,
        // 1 % of one core = 10,000 µs per second = per 1 s tick.
        usPerWorkerTick: n > 0 && base ? round(((cpuPct - base.cpuPct) * 1e4) / n, 1) : null,
      });
      log(`scaling: ${n} workers: ${cpuPct.toFixed(3)} % of a core (tracer ${tracerPct.toFixed(3)}, server ${serverPct?.toFixed(3)}); windows ${windowsPct.join(' ')}; host busy ${hostBusyPct} %`);
    } finally {
      await agent?.stop();
      await pool?.stop();
    }
  }
  const marginal: ScalingResult['marginal'] = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1], b = points[i];
    if (b.workers > a.workers) marginal.push({ from: a.workers, to: b.workers, usPerWorkerTick: round(((b.cpuPct - a.cpuPct) * 1e4) / (b.workers - a.workers), 1)! });
  }
  return { intervalMs, points, marginal };
}
