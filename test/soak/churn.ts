/**
 * Process churn (reliability item 3), shared by the short runs in npm test and
 * the soak. The agent runs as a real CLI child (`premortem run --pid MASTER`),
 * so that its RSS, fds and BPF maps are its own. A tracked master forks
 * short-lived children at `rate`/s (followed by the kernel, registered by the
 * agent as workers, judged at exit, retired); a gunicorn --max-requests 1
 * under load recycles a worker per request.
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
import { exited, killGroup, printed, sleep, start } from '../helpers/procs';
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

export const FORK_MASTER = (rate: number, seconds: number) => `
import os, sys, time
# One long-lived child first: discovery then sees a master with a worker and
# tracks it with follow-forks (a childless process is tracked as standalone).
keeper = os.fork()
if keeper == 0:
    sys.stdin.close(); time.sleep(3600); os._exit(0)
print("ready", flush=True)
sys.stdin.readline()
per_ms, end, n = ${rate} / 1000.0, time.monotonic() + ${seconds}, 0
credit, t = 0.0, time.monotonic()
def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0]: pass
    except ChildProcessError: pass
while t < end:
    credit += per_ms
    while credit >= 1:
        if os.fork() == 0: os._exit(0)
        n += 1; credit -= 1
    reap()
    t += 0.001
    d = t - time.monotonic()
    if d > 0: time.sleep(d)
time.sleep(0.2); reap()
print("forks", n, flush=True)
sys.stdin.readline()
os.kill(keeper, 9)
`;

export interface ChurnSample { tS: number; rssMiB: number; tracked: number; alive: number; pids: number; fds: number }
export interface ChurnResult {
  forks: number; forksPerSec: number; baseline: { rssMiB: number; entries: Record<string, number>; tracked: number; mapBytes: number; fds: number };
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

export async function runForkChurn(opts: { rate: number; seconds: number }): Promise<ChurnResult & { samples: ChurnSample[] }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-churn-'));
  const tag = `pm-churn-master-${process.pid}-${Date.now()}`;
  const master = start('/usr/bin/python3.11', ['-c', FORK_MASTER(opts.rate, opts.seconds), tag], { stdio: ['pipe', 'pipe', 'inherit'] });
  let agent: CliAgent | undefined;
  try {
    await printed(master, /ready/);
    agent = await startCliAgent(['--no-auto', '--match', tag, '--interval-ms', '500', '--window-s', '60', '--bundle-window-s', '30', '--data-dir', dataDir]);
    for (let i = 0; (await healthOf(agent.url)).trackedWorkersAlive < 2; i++) {
      if (i > 100) throw new Error('the fork master and its keeper child not tracked within 10 s');
      await sleep(100);
    }
    await sleep(1000);
    const baseline = await baselineOf(agent);
    const t0 = Date.now();
    master.stdin!.write('go\n');
    const samples: ChurnSample[] = [];
    const forksLine = printed(master, /forks \d+/, opts.seconds * 1000 + 30_000);
    try {
      await sampleWhile(agent, t0, forksLine, samples);
    } catch (e) {
      throw new Error(`${(e as Error).message}\nagent output: ${agent.output().split("\n").filter((l) => !l.startsWith("!!")).join("\n").slice(-3000)}`);
    }
    const forks = Number((await forksLine).split(' ')[1]);
    const elapsed = (Date.now() - t0) / 1000;
    // Back to baseline: every child judged and retired, its map entries deleted.
    let after = await baselineOf(agent);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (after.entries.pids !== baseline.entries.pids || after.alive !== baseline.alive)) {
      await sleep(500);
      after = await baselineOf(agent);
    }
    const h = await healthOf(agent.url);
    const peak = {
      rssMiB: Math.max(...samples.map((s) => s.rssMiB)), tracked: Math.max(...samples.map((s) => s.tracked)),
      pidsEntries: Math.max(...samples.map((s) => s.pids)), fds: Math.max(...samples.map((s) => s.fds)),
    };
    // Bounds.
    expect(forks / opts.seconds).toBeGreaterThanOrEqual(opts.rate * 0.8);
    expect(peak.rssMiB).toBeLessThan(RSS_CAP_MIB);
    expect(after.rssMiB).toBeLessThan(RSS_CAP_MIB);
    expect(peak.tracked).toBeLessThanOrEqual(512 + MAX_DEAD_WORKERS + 1);
    expect(peak.pidsEntries).toBeLessThanOrEqual(8192); // the kernel filter's bound
    checkBaseline(baseline.entries, after.entries);
    expect(after.alive).toBe(baseline.alive);
    expect(after.mapBytes).toBe(baseline.mapBytes); // preallocated: kernel memory does not grow with churn
    expect(after.fds).toBeLessThanOrEqual(baseline.fds + 2);
    // Past maxTrackedProcesses alive (workers waiting deathSettleMs for their verdict count too)
    // new children are refused by design; counted, never silent.
    if (h.refusedOverCap) expect(agent.output()).toMatch(/tracked-process cap reached \(512\)/);
    master.stdin!.write('bye\n');
    await exited(master, 5000);
    return { forks, forksPerSec: Math.round(forks / Math.min(elapsed, opts.seconds)), baseline, peak, after, refusedOverCap: h.refusedOverCap, errors: h.errors, samples };
  } finally {
    if (agent) await killGroup(agent.child, 'SIGTERM');
    await killGroup(master);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** gunicorn -w 2 --max-requests 1 under `concurrency` clients for `seconds`: a worker recycled per request. */
export async function runGunicornRecycling(opts: { seconds: number; concurrency: number }) {
  const app = appDir('churn');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-gchurn-'));
  let agent: CliAgent | undefined;
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '2', '--max-requests', '1']);
  try {
    await ready(port);
    agent = await startCliAgent(['--no-auto', '--match', app.dir, '--interval-ms', '500', '--window-s', '60', '--bundle-window-s', '30', '--data-dir', dataDir]);
    for (let i = 0; (await healthOf(agent.url)).trackedWorkersAlive < 3; i++) {
      if (i > 100) throw new Error('gunicorn master and workers not tracked within 10 s');
      await sleep(100);
    }
    await sleep(1000);
    const baseline = await baselineOf(agent);
    const t0 = Date.now();
    let ok = 0, failed = 0;
    const load = (async () => {
      const end = Date.now() + opts.seconds * 1000;
      await Promise.all(Array.from({ length: opts.concurrency }, async () => {
        while (Date.now() < end) {
          try { if ((await get(port, '/', 5000)).status === 200) ok++; else failed++; } catch { failed++; await sleep(20); }
        }
      }));
    })();
    const samples: ChurnSample[] = [];
    await sampleWhile(agent, t0, load, samples);
    let after = await baselineOf(agent);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && (after.entries.pids !== baseline.entries.pids || after.alive !== baseline.alive)) {
      await sleep(500);
      after = await baselineOf(agent);
    }
    const h = await healthOf(agent.url);
    const incidents = JSON.parse((await get(Number(new URL(agent.url).port), '/api/incidents')).body).incidents as unknown[];
    expect(ok).toBeGreaterThanOrEqual(opts.seconds * 2); // each request boots a new worker (Flask import): a few per second
    expect(Math.max(...samples.map((s) => s.rssMiB))).toBeLessThan(RSS_CAP_MIB);
    checkBaseline(baseline.entries, after.entries);
    expect(after.alive).toBe(baseline.alive);
    expect(after.mapBytes).toBe(baseline.mapBytes);
    expect(incidents).toHaveLength(0); // recycling is planned: no post-mortem
    return { requests: ok, failed, recycledPerSec: Math.round(ok / opts.seconds), baseline, after, peakRssMiB: Math.max(...samples.map((s) => s.rssMiB)),
      peakTracked: Math.max(...samples.map((s) => s.tracked)), errors: h.errors };
  } finally {
    if (agent) await killGroup(agent.child, 'SIGTERM');
    await killGroup(master);
    app.remove();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
