/**
 * Process churn (reliability item 3), shared by the short runs in npm test and
 * the soak. The agent runs as a real CLI child (`premortem run --pid MASTER`),
 * so that its RSS, fds and BPF maps are its own. A tracked master (a small C
 * forker, test/helpers/forker.c) forks short-lived children at a pace scaled to
 * what this machine can do (followed by the kernel, registered by the agent as
 * workers, judged at exit, retired); a gunicorn --max-requests 1 under load
 * recycles a worker per request, as many as the machine manages.
 *
 * Measured: agent RSS (cap asserted), the agent's tracked-process table
 * (/api/health trackedProcesses, bounded by maxTrackedProcesses + the dead-worker
 * bound), entries of every per-process BPF map (bpftool map dump of the agent's
 * maps) and their kernel memory (bytes_memlock), before, during and after.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { calibrateForks, forksDone, startForkMaster } from '../helpers/forker';
import { exited, killGroup, printed, sleep, waitForAsync } from '../helpers/procs';
import { appDir, freePort, get, gunicorn, ready } from '../helpers/services';
import { bpfMapBytes, bpfObjectsOf, fdCount, healthOf, MiB, rssBytes, startCliAgent, type CliAgent } from './harness';

/** Maps holding one entry per tracked process (bpf/lib/common.bpf.h pids + agent.ts PER_PROCESS_MAPS). */
export const PER_PROCESS_MAP_NAMES = ['pids', 'runq_hist', 'cpu_stats', 'faults', 'rss_last', 'disk_proc', 'dstate_hist', 'gc_hist', 'gc_stats'];
/** Dead workers the agent keeps for context (agent.ts MAX_DEAD_WORKERS). */
const MAX_DEAD_WORKERS = 256;

/** Entries of the agent's per-process BPF maps, by map name. */
export function perProcessEntries(agentPid: number): Record<string, number> {
  const ids = new Set(bpfObjectsOf(agentPid).maps);
  const maps = JSON.parse(execFileSync('bpftool', ['map', 'show', '-j']).toString()) as Array<{ id: number; name: string }>;
  const out: Record<string, number> = {};
  for (const m of maps) {
    if (!ids.has(m.id) || !PER_PROCESS_MAP_NAMES.includes(m.name)) continue;
    const dump = JSON.parse(execFileSync('bpftool', ['map', 'dump', 'id', String(m.id), '-j'], { maxBuffer: 256 * MiB }).toString()) as unknown[];
    out[m.name] = (out[m.name] ?? 0) + dump.length;
  }
  return out;
}

/** `tracked`/`alive` are absent when the agent was too busy to answer and its server process said so (partial health). */
export interface ChurnSample { tS: number; rssMiB: number; tracked?: number; alive?: number; pids: number; fds: number }

/** The largest tracked-set size among the samples the agent itself answered (at least one must be). */
function peakTracked(samples: ChurnSample[]): number {
  const answered = samples.flatMap((s) => (s.tracked === undefined ? [] : [s.tracked]));
  if (!answered.length) throw new Error(`the agent answered none of ${samples.length} health samples itself (all partial: busy)`);
  return Math.max(...answered);
}
export interface ChurnResult {
  /** What the machine did before the run: one fork and reap at a time, untraced, flat out. */
  calibratedForksPerSec: number;
  /** The pace asked of the master: min(maxRate, half the calibrated rate). */
  rate: number; seconds: number;
  forks: number; forksPerSec: number; forkRecords: number; baseline: { rssMiB: number; entries: Record<string, number>; tracked: number; mapBytes: number; fds: number };
  peak: { rssMiB: number; tracked: number; pidsEntries: number; fds: number }; after: { rssMiB: number; entries: Record<string, number>; tracked: number; alive: number; mapBytes: number; fds: number };
  refusedOverCap: number; errors: Record<string, number>;
}

/**
 * The pid filter and the tracked set must be back to baseline. Residue in the
 * other per-process maps (faults, rss_last, runq_hist, cpu_stats...): entries of
 * children refused over maxTrackedProcesses are not deleted by anyone; the maps
 * are LRU (dead processes age out) and preallocated, so kernel memory does not
 * grow. The residue is printed; PREMORTEM_STRICT_MAPS=1 makes it a failure.
 */
function checkBaseline(before: Record<string, number>, after: Record<string, number>): void {
  const residues: Record<string, number> = {};
  expect(['pids', after.pids]).toEqual(['pids', before.pids]);
  for (const name of Object.keys(before)) {
    const extra = (after[name] ?? 0) - before[name];
    if (extra) residues[name] = extra;
    if (process.env.PREMORTEM_STRICT_MAPS === '1') expect([name, after[name]]).toEqual([name, before[name]]);
  }
  if (Object.keys(residues).length) console.log(`per-process BPF map residue after churn (LRU, ages out): ${JSON.stringify(residues)}`);
}

const RSS_CAP_MIB = Number(process.env.PREMORTEM_RSS_CAP_MIB) || 300;

/** Samples the agent while `during` runs. */
async function sampleWhile(agent: CliAgent, t0: number, during: Promise<unknown>, samples: ChurnSample[]): Promise<void> {
  let done = false;
  void during.finally(() => { done = true; });
  while (!done) {
    const h = await healthOf(agent.url);
    samples.push({ tS: (Date.now() - t0) / 1000, rssMiB: rssBytes(agent.child.pid!) / MiB, tracked: h.trackedProcesses, alive: h.trackedWorkersAlive,
      pids: perProcessEntries(agent.child.pid!).pids ?? 0, fds: fdCount(agent.child.pid!) });
    await sleep(500);
  }
  await during;
}

async function baselineOf(agent: CliAgent) {
  const h = await healthOf(agent.url);
  return { rssMiB: rssBytes(agent.child.pid!) / MiB, entries: perProcessEntries(agent.child.pid!), tracked: h.trackedProcesses as number,
    alive: h.trackedWorkersAlive as number, mapBytes: bpfMapBytes(agent.child.pid!).bytes, fds: fdCount(agent.child.pid!) };
}

/** Fewer forks than this would not push the tracked set past its own bounds (512 alive + 256 dead). */
const MIN_FORKS = 2000;

/**
 * The fork churn, scaled to this machine: the forker's flat-out rate is measured
 * first, the master is paced at min(maxRate, half of it) (the agent needs the
 * other half), and the run lasts at least `seconds` and long enough for
 * MIN_FORKS forks at that pace (at most 60 s). The bounds are asserted against
 * the churn achieved, which is reported.
 */
export async function runForkChurn(opts: { maxRate: number; seconds: number }): Promise<ChurnResult & { samples: ChurnSample[] }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-churn-'));
  const tag = `pm-churn-master-${process.pid}-${Date.now()}`;
  const calibrated = calibrateForks(1000).perSec;
  const rate = Math.max(1, Math.min(opts.maxRate, Math.floor(calibrated / 2)));
  const seconds = Math.max(opts.seconds, Math.min(60, Math.ceil(MIN_FORKS / rate)));
  const master = startForkMaster(rate, seconds, tag);
  let agent: CliAgent | undefined;
  try {
    await printed(master, /ready/);
    agent = await startCliAgent(['--no-auto', '--match', tag, '--interval-ms', '500', '--window-s', '60', '--bundle-window-s', '30', '--data-dir', dataDir]);
    await waitForAsync(async () => (await healthOf(agent!.url)).trackedWorkersAlive >= 2, 20_000, 'the fork master and its keeper child to be tracked');
    await sleep(1000);
    const baseline = await baselineOf(agent);
    const forkRecords0 = forkRecordsOf(await healthOf(agent.url));
    const t0 = Date.now();
    master.stdin!.write('go\n');
    const samples: ChurnSample[] = [];
    const forksLine = printed(master, /forks \d+ seconds [\d.]+/, seconds * 1000 + 30_000);
    try {
      await sampleWhile(agent, t0, forksLine, samples);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nagent output: ${agent.output().split("\n").filter((l) => !l.startsWith("!!")).join("\n").slice(-3000)}`);
    }
    const { forks, seconds: forkSeconds } = forksDone(await forksLine);
    // Back to baseline: every child judged and retired, its map entries deleted.
    const after = await backToBaseline(agent, baseline);
    const h = await healthOf(agent.url);
    const forkRecords = forkRecordsOf(h) - forkRecords0;
    const peak = {
      rssMiB: Math.max(...samples.map((s) => s.rssMiB)), tracked: peakTracked(samples),
      pidsEntries: Math.max(...samples.map((s) => s.pids)), fds: Math.max(...samples.map((s) => s.fds)),
    };
    const result = { calibratedForksPerSec: calibrated, rate, seconds, forks, forksPerSec: Math.round(forks / forkSeconds), forkRecords,
      baseline, peak, after, refusedOverCap: h.refusedOverCap, errors: h.errors, samples };
    console.log(`fork churn: ${forks} forks in ${forkSeconds.toFixed(1)} s = ${result.forksPerSec}/s (asked ${rate}/s; this machine forks ${calibrated}/s untraced)`);
    // Enough churn to exercise the bounds, and every fork seen by the agent (or counted as lost).
    expect(forks).toBeGreaterThanOrEqual(MIN_FORKS / 2);
    expect(forkRecords).toBe(forks);
    // Bounds, against the churn achieved.
    expect(peak.rssMiB).toBeLessThan(RSS_CAP_MIB);
    expect(after.rssMiB).toBeLessThan(RSS_CAP_MIB);
    expect(peak.tracked).toBeLessThanOrEqual(Math.min(512 + MAX_DEAD_WORKERS + 1, baseline.tracked + forks));
    expect(peak.pidsEntries).toBeLessThanOrEqual(Math.min(8192, baseline.entries.pids + forks)); // the kernel filter's bound
    checkBaseline(baseline.entries, after.entries);
    expect(after.alive).toBe(baseline.alive);
    expect(after.mapBytes).toBe(baseline.mapBytes); // preallocated: kernel memory does not grow with churn
    expect(after.fds).toBeLessThanOrEqual(baseline.fds + 2);
    // Past maxTrackedProcesses alive (workers waiting deathSettleMs for their verdict count too)
    // new children are refused by design; counted, never silent.
    if (h.refusedOverCap) expect(agent.output()).toMatch(/tracked-process cap reached \(512\)/);
    master.stdin!.write('bye\n');
    await exited(master, 5000);
    return result;
  } finally {
    if (agent) await killGroup(agent.child, 'SIGTERM');
    await killGroup(master);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Fork records the agent read or the kernel counted as lost. */
function forkRecordsOf(h: Record<string, any>): number {
  return (h.records.delivered.fork ?? 0) + (h.records.dropped.fork ?? 0);
}

/** Waits (up to 20 s) until the pid filter and the live workers are back to the baseline; returns the last reading. */
async function backToBaseline(agent: CliAgent, baseline: Awaited<ReturnType<typeof baselineOf>>) {
  let after = await baselineOf(agent);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && (after.entries.pids !== baseline.entries.pids || after.alive !== baseline.alive)) {
    await sleep(500);
    after = await baselineOf(agent);
  }
  return after;
}

/** Recycles that exercise the agent's retire path enough to see a leak or a residue. */
const MIN_RECYCLES = 10;

/**
 * gunicorn -w 2 --max-requests 1 under `concurrency` clients for `seconds`: a worker
 * recycled per request. Each recycle boots a worker (fork + Flask import): a few per
 * second here, fewer on a slow machine, so the load goes on (up to 4 x `seconds`)
 * until MIN_RECYCLES requests were served; the rate reached is reported.
 */
export async function runGunicornRecycling(opts: { seconds: number; concurrency: number }) {
  const app = appDir('churn');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-gchurn-'));
  let agent: CliAgent | undefined;
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '2', '--max-requests', '1']);
  try {
    await ready(port);
    agent = await startCliAgent(['--no-auto', '--match', app.dir, '--interval-ms', '500', '--window-s', '60', '--bundle-window-s', '30', '--data-dir', dataDir]);
    await waitForAsync(async () => (await healthOf(agent!.url)).trackedWorkersAlive >= 3, 20_000, 'gunicorn master and workers to be tracked');
    await sleep(1000);
    const baseline = await baselineOf(agent);
    const t0 = Date.now();
    let ok = 0, failed = 0;
    const load = (async () => {
      const end = Date.now() + opts.seconds * 1000, giveUp = Date.now() + 4 * opts.seconds * 1000;
      await Promise.all(Array.from({ length: opts.concurrency }, async () => {
        while ((Date.now() < end || ok < MIN_RECYCLES) && Date.now() < giveUp) {
          try { if ((await get(port, '/', 5000)).status === 200) ok++; else failed++; } catch { failed++; await sleep(20); }
        }
      }));
    })();
    const samples: ChurnSample[] = [];
    await sampleWhile(agent, t0, load, samples);
    const loadSeconds = (Date.now() - t0) / 1000;
    const after = await backToBaseline(agent, baseline);
    const h = await healthOf(agent.url);
    const incidents = JSON.parse((await get(Number(new URL(agent.url).port), '/api/incidents')).body).incidents as unknown[];
    console.log(`gunicorn recycling: ${ok} workers recycled in ${loadSeconds.toFixed(1)} s = ${(ok / loadSeconds).toFixed(1)}/s (${failed} failed requests)`);
    expect(ok).toBeGreaterThanOrEqual(MIN_RECYCLES);
    expect(Math.max(...samples.map((s) => s.rssMiB))).toBeLessThan(RSS_CAP_MIB);
    checkBaseline(baseline.entries, after.entries);
    expect(after.alive).toBe(baseline.alive);
    expect(after.mapBytes).toBe(baseline.mapBytes);
    expect(incidents).toHaveLength(0); // recycling is planned: no post-mortem
    return { requests: ok, failed, recycledPerSec: Math.round((ok / loadSeconds) * 10) / 10, loadSeconds, baseline, after, peakRssMiB: Math.max(...samples.map((s) => s.rssMiB)),
      peakTracked: peakTracked(samples), errors: h.errors };
  } finally {
    if (agent) await killGroup(agent.child, 'SIGTERM');
    await killGroup(master);
    app.remove();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
