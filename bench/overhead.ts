/**
 * Overhead on real Python services (item 1 of the benchmark).
 *
 *   W1 connection churn: gunicorn + Flask, 2 sync workers, wrk -t2 -c32 with
 *      `Connection: close` (a new connection per request, as sync workers do anyway);
 *   W2 keep-alive: uvicorn + Starlette, 2 workers, wrk -t2 -c32 keep-alive;
 *   W3 lifecycle: W1 with --max-requests recycling, inside a v1 memory cgroup,
 *      plus one OOM kill per run (a request that allocates past the limit).
 *      In the premortem runs, the workers the agent judged dead (exits and OOM
 *      kills) must equal an independent count: gunicorn's own log of booted
 *      workers and /proc (children of the master before and after), and the
 *      cgroup's oom_kill counter.
 *
 * Each round runs every tracer condition once, in a shuffled order, each one
 * bracketed by no-tracer runs: none T1 none T2 none ... none. A tracer run's
 * baseline is the mean of the two no-tracer runs around it (paired ratios);
 * the figure reported is the median of those ratios over the rounds.
 */
import * as fs from 'fs';
import type { ServerMessage } from '../proto/codec';
import { connectViewer } from './agentproc';
import { Condition, ConditionContext, describe, Running, startCondition, TRACERS } from './conditions';
import { ablationOf, Feature } from './features';
import { cpuMeter, ctxtNow, cv, log, mean, median, rng, round, shuffle, sleep, wrk, WrkResult } from './lib';
import { AppDir, gunicornFlask, httpGet, memoryCgroup, Service, uvicornStarlette } from './services';

export type WorkloadName = 'W1' | 'W2' | 'W3';

export interface OverheadOptions {
  rounds: number;
  seconds: number;
  warmupSeconds: number;
  seed: number;
  workloads: WorkloadName[];
  tracers: Condition[];
  /** Features whose cost is measured on its own (premortem-no-<feature>), on the workloads of `ablateOn`. */
  features: Feature[];
  ablateOn: WorkloadName[];
  /** Inconclusive when the no-tracer runs' coefficient of variation exceeds this. */
  maxBaselineCv: number;
}

export interface LifecycleCheck {
  /** Workers that died during the run, by gunicorn's log + /proc. */
  independentExits: number;
  /** ... of which OOM kills, by the cgroup's oom_kill counter. */
  independentOomKills: number;
  /** Workers the agent reported dead (death verdicts), and how many of them oom-killed. */
  agentExits: number;
  agentOomKills: number;
  agentVerdicts: Record<string, number>;
  /** Exit / OOM records the agent's tracer delivered (all tracked processes, threads included). */
  exitRecords: number;
  oomRecords: number;
  droppedRecords: number;
  missing: number[];
  extra: number[];
  exact: boolean;
}

export interface RunRecord {
  workload: WorkloadName;
  round: number;
  seq: number;
  condition: Condition;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  ctxtPerSec: number;
  ctxtPerRequest: number;
  /** CPU of the tracer's processes, % of one core (null for none). */
  tracerCpuPct: number | null;
  viewerFrames?: number;
  /** Lines of /proc/net/tcp when the run started (TIME_WAIT sockets of earlier runs included): what the agent parses each tick. */
  tcpSockets: number;
  lifecycle?: LifecycleCheck;
}

export interface ConditionSummary {
  condition: Condition;
  description: string;
  pairs: number;
  rpsRatio: number | null;
  rpsRatios: Array<number | null>;
  p99Ratio: number | null;
  tracerCpuPct: number | null;
  /** Median paired ratio of context switches per request, minus 1. */
  ctxtInflationPerRequest: number | null;
  /** Same, per second. */
  ctxtInflationPerSec: number | null;
  lifecycleExact?: { runs: number; exact: number };
  /** Median /proc/net/tcp{,6} entries at the start of this condition's runs. */
  tcpSockets: number | null;
}

/** One feature's cost: premortem with everything on vs premortem without it (both paired with none). */
export interface FeatureCost {
  feature: string;
  how: string;
  /** req/s ratio without the feature minus with it: the throughput share the feature costs. */
  rpsCost: number | null;
  /** p99 ratio with it minus without it. */
  p99Cost: number | null;
  /** Agent CPU with it minus without it, % of one core. */
  cpuCostPct: number | null;
}

export interface WorkloadResult {
  name: WorkloadName;
  description: string;
  baseline: { runs: number; rpsMedian: number | null; rpsMin: number | null; rpsMax: number | null; rpsCv: number | null; p99MsMedian: number | null };
  inconclusive: boolean;
  inconclusiveReason?: string;
  conditions: ConditionSummary[];
  featureCosts: FeatureCost[];
  runs: RunRecord[];
}

const DESCRIBE: Record<WorkloadName, string> = {
  W1: 'connection churn: gunicorn + Flask, 2 sync workers, wrk -t2 -c32, Connection: close',
  W2: 'keep-alive: uvicorn + Starlette, 2 uvicorn workers (gunicorn -k uvicorn.workers.UvicornWorker), wrk -t2 -c32',
  W3: 'lifecycle: W1 with --max-requests 1000 (jitter 100) in a 256 MiB v1 memory cgroup + one OOM kill per run',
};

const W3_LIMIT = 256 << 20;
const W3_LEAK_MB = 320;

interface Workload {
  svc: Service;
  close: boolean;
  expectTracked: number;
  oomKills?: () => number;
  teardown(): Promise<void>;
}

async function setupWorkload(name: WorkloadName, app: AppDir): Promise<Workload> {
  if (name === 'W1') {
    const svc = await gunicornFlask(app, { workers: 2 });
    return { svc, close: true, expectTracked: 3, teardown: () => svc.stop() };
  }
  if (name === 'W2') {
    const svc = await uvicornStarlette(app, { workers: 2 });
    await sleep(1000);
    return { svc, close: false, expectTracked: 3, teardown: () => svc.stop() };
  }
  const cg = memoryCgroup(`pm-bench-${process.pid}`, W3_LIMIT);
  const svc = await gunicornFlask(app, { workers: 2, args: ['--max-requests', '1000', '--max-requests-jitter', '100'], cgroupProcs: cg.procs });
  return {
    svc, close: true, expectTracked: 3, oomKills: cg.oomKills,
    async teardown() {
      await svc.stop();
      await cg.remove();
    },
  };
}

/** The agent's view at the end of a W3 run: a fresh viewer's first snapshot. */
async function agentDeaths(r: Running): Promise<{ dead: Map<number, string>; health: Awaited<ReturnType<NonNullable<Running['agent']>['health']>> }> {
  const agent = r.agent!;
  let resolveSnap: (m: ServerMessage) => void;
  const snap = new Promise<ServerMessage>((res) => (resolveSnap = res));
  const v = await connectViewer(agent.wsUrl!, (m) => { if (m.body === 'snapshot') resolveSnap(m); });
  try {
    const m = await Promise.race([snap, sleep(5000).then(() => { throw new Error('no snapshot from the agent within 5 s'); })]);
    const dead = new Map<number, string>();
    for (const w of m.snapshot!.workers)
      if (w.state === 'dead' && w.identity?.role === 'worker') dead.set(w.identity.pid, w.lastVerdict?.kind ?? 'unknown');
    return { dead, health: await agent.health() };
  } finally {
    v.close();
  }
}

/**
 * The W3 criterion: the set of workers the agent judged dead equals the set that died (gunicorn's
 * log + /proc), and its oom-killed verdicts equal the cgroup's oom_kill count. Raw record counts are
 * kept beside it: exit records include every tracked process and thread, and the kernel may mark
 * more OOM victims (mark_victim) than it counts kills.
 */
export function lifecycleExact(l: LifecycleCheck): boolean {
  return !l.missing.length && !l.extra.length && l.agentOomKills === l.independentOomKills;
}

function countTcpSockets(): number {
  let n = 0;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      const t = fs.readFileSync(f, 'latin1');
      for (let i = t.indexOf('\n'); i >= 0; i = t.indexOf('\n', i + 1)) n++;
      n--; // header
    } catch { /* no IPv6 */ }
  }
  return Math.max(0, n);
}

async function measure(wl: Workload, name: WorkloadName, condition: Condition, seconds: number, ctx: ConditionContext): Promise<Omit<RunRecord, 'round' | 'seq'>> {
  const running = await startCondition(condition, ctx);
  try {
    await sleep(500); // let start-up work (discovery, first tick) pass
    const w3 = name === 'W3';
    const workers0 = wl.svc.workers();
    const logAt = wl.svc.log().length;
    const oom0 = wl.oomKills?.() ?? 0;
    const frames0 = running.viewer?.frames ?? 0;
    const tcpSockets = countTcpSockets();
    const c0 = ctxtNow();
    const meter = cpuMeter(running.pids);
    let leak: Promise<unknown> | undefined;
    const leakTimer = w3 ? setTimeout(() => { leak = httpGet(wl.svc.port, `/leak/${W3_LEAK_MB}`, 20000).catch(() => 0); }, (seconds * 1000) / 2) : undefined;
    let res: WrkResult;
    try {
      res = await wrk(wl.svc.port, seconds, { close: wl.close });
    } finally {
      clearTimeout(leakTimer);
    }
    const cpu = meter.pct();
    const ctxt = ctxtNow() - c0;
    const rec: Omit<RunRecord, 'round' | 'seq'> = {
      workload: name, condition, rps: res.rps, p50Ms: res.p50Ms, p99Ms: res.p99Ms, errors: res.errors, non2xx: res.non2xx,
      ctxtPerSec: ctxt / seconds, ctxtPerRequest: ctxt / Math.max(1, res.requests),
      tracerCpuPct: condition === 'none' ? null : cpu,
      viewerFrames: running.viewer ? running.viewer.frames - frames0 : undefined, tcpSockets,
    };
    if (w3) {
      await leak;
      await sleep(1500); // replacements booted, the agent's verdicts settled
      const booted = [...wl.svc.log().slice(logAt).matchAll(/Booting worker with pid: (\d+)/g)].map((m) => Number(m[1]));
      const alive = new Set(wl.svc.workers());
      const died = new Set([...workers0, ...booted].filter((p) => !alive.has(p)));
      const oomKills = (wl.oomKills?.() ?? 0) - oom0;
      if (running.agent) {
        const { dead, health } = await agentDeaths(running);
        const verdicts: Record<string, number> = {};
        for (const k of dead.values()) verdicts[k] = (verdicts[k] ?? 0) + 1;
        const missing = [...died].filter((p) => !dead.has(p));
        const extra = [...dead.keys()].filter((p) => !died.has(p));
        const agentOom = verdicts['oom-killed'] ?? 0;
        rec.lifecycle = {
          independentExits: died.size, independentOomKills: oomKills, agentExits: dead.size, agentOomKills: agentOom, agentVerdicts: verdicts,
          exitRecords: health.records.delivered.exit ?? 0, oomRecords: health.records.delivered.oom ?? 0, droppedRecords: health.records.droppedTotal,
          missing, extra, exact: false,
        };
        rec.lifecycle.exact = lifecycleExact(rec.lifecycle);
        if (!rec.lifecycle.exact) log(`W3 ${condition}: MISMATCH ${JSON.stringify(rec.lifecycle)}`);
      } else {
        rec.lifecycle = {
          independentExits: died.size, independentOomKills: oomKills, agentExits: 0, agentOomKills: 0, agentVerdicts: {},
          exitRecords: 0, oomRecords: 0, droppedRecords: 0, missing: [], extra: [], exact: true,
        };
      }
    }
    return rec;
  } finally {
    await running.stop();
  }
}

function summarize(name: WorkloadName, runs: RunRecord[], tracers: Condition[], maxCv: number, features: Feature[]): WorkloadResult {
  const none = runs.filter((r) => r.condition === 'none');
  const rpsNone = none.map((r) => r.rps);
  const baselineCv = cv(rpsNone);
  const conditions: ConditionSummary[] = [];
  for (const c of tracers) {
    const rps: number[] = [], p99: number[] = [], cpu: number[] = [], perReq: number[] = [], perSec: number[] = [], socks: number[] = [];
    let lifeRuns = 0, lifeExact = 0;
    for (const r of runs.filter((x) => x.condition === c)) {
      // The no-tracer runs right before and after this one (same round: seq ± 1).
      const around = runs.filter((x) => x.round === r.round && x.condition === 'none' && Math.abs(x.seq - r.seq) === 1);
      if (!around.length) continue;
      rps.push(r.rps / mean(around.map((x) => x.rps)));
      p99.push(r.p99Ms / mean(around.map((x) => x.p99Ms)));
      perReq.push(r.ctxtPerRequest / mean(around.map((x) => x.ctxtPerRequest)));
      perSec.push(r.ctxtPerSec / mean(around.map((x) => x.ctxtPerSec)));
      if (r.tracerCpuPct !== null) cpu.push(r.tracerCpuPct);
      socks.push(r.tcpSockets);
      if (r.lifecycle && r.condition.startsWith('premortem')) {
        lifeRuns++;
        if (r.lifecycle.exact) lifeExact++;
      }
    }
    conditions.push({
      condition: c, description: describe(c, features), pairs: rps.length,
      rpsRatio: round(median(rps)), rpsRatios: rps.map((x) => round(x)), p99Ratio: round(median(p99)), tracerCpuPct: round(median(cpu), 2),
      ctxtInflationPerRequest: round(median(perReq) - 1), ctxtInflationPerSec: round(median(perSec) - 1), tcpSockets: round(median(socks), 0),
      ...(name === 'W3' && c.startsWith('premortem') ? { lifecycleExact: { runs: lifeRuns, exact: lifeExact } } : {}),
    });
  }
  const inconclusive = baselineCv > maxCv;
  const all = conditions.find((c) => c.condition === 'premortem');
  const diff = (a: number | null | undefined, b: number | null | undefined, d = 3) => (a === null || a === undefined || b === null || b === undefined ? null : round(a - b, d));
  const featureCosts: FeatureCost[] = features.flatMap((f) => {
    const without = conditions.find((c) => c.condition === ablationOf(f));
    return without ? [{
      feature: f.name, how: f.how, rpsCost: diff(without.rpsRatio, all?.rpsRatio), p99Cost: diff(all?.p99Ratio, without.p99Ratio),
      cpuCostPct: diff(all?.tracerCpuPct, without.tracerCpuPct, 2),
    }] : [];
  });
  return {
    name, description: DESCRIBE[name],
    baseline: {
      runs: none.length, rpsMedian: round(median(rpsNone), 1), rpsMin: round(Math.min(...rpsNone), 1), rpsMax: round(Math.max(...rpsNone), 1),
      rpsCv: round(baselineCv), p99MsMedian: round(median(none.map((r) => r.p99Ms)), 2),
    },
    inconclusive,
    inconclusiveReason: inconclusive ? `the no-tracer runs vary by ${(baselineCv * 100).toFixed(1)} % (coefficient of variation > ${maxCv * 100} %)` : undefined,
    conditions, featureCosts, runs,
  };
}

export async function runOverhead(app: AppDir, o: OverheadOptions): Promise<WorkloadResult[]> {
  const results: WorkloadResult[] = [];
  const rand = rng(o.seed);
  for (const name of o.workloads) {
    log(`${name}: ${DESCRIBE[name]}`);
    const wl = await setupWorkload(name, app);
    const runs: RunRecord[] = [];
    const tracers: Condition[] = [...o.tracers, ...(o.ablateOn.includes(name) ? o.features.map(ablationOf) as Condition[] : [])];
    try {
      const ctx: ConditionContext = { match: app.match, expectTracked: wl.expectTracked, features: o.features };
      if (o.warmupSeconds > 0) await wrk(wl.svc.port, o.warmupSeconds, { close: wl.close }); // first runs are slower whatever is attached
      for (let round = 0; round < o.rounds; round++) {
        const order = shuffle(tracers, rand);
        log(`${name} round ${round + 1}/${o.rounds}: none, ${order.join(', none, ')}, none`);
        let seq = 0;
        const push = (r: Omit<RunRecord, 'round' | 'seq'>) => {
          runs.push({ ...r, round, seq: seq++ });
          log(`  ${r.condition.padEnd(18)} ${r.rps.toFixed(0).padStart(6)} req/s  p99 ${r.p99Ms.toFixed(2)} ms  ctxt/req ${r.ctxtPerRequest.toFixed(2)}${r.tracerCpuPct !== null ? `  cpu ${r.tracerCpuPct.toFixed(1)} %` : ''}${r.lifecycle ? `  exits ${r.lifecycle.independentExits}/${r.lifecycle.agentExits} oom ${r.lifecycle.independentOomKills}/${r.lifecycle.agentOomKills}` : ''}`);
        };
        push(await measure(wl, name, 'none', o.seconds, ctx));
        for (const c of order) {
          push(await measure(wl, name, c, o.seconds, ctx));
          push(await measure(wl, name, 'none', o.seconds, ctx));
        }
      }
    } finally {
      await wl.teardown();
    }
    results.push(summarize(name, runs, tracers, o.maxBaselineCv, o.features));
  }
  return results;
}

export { TRACERS };
