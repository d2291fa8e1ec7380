/**
 * Where the agent's CPU and memory go (`--only profile`): the agent runs under
 * `node --cpu-prof` (its server process too, through NODE_OPTIONS) in the
 * situations the footprint targets name, and its heap is snapshotted at the end:
 *   w1-viewer:  W1 (gunicorn + Flask, 2 sync workers, wrk -c32 Connection: close), one viewer;
 *   idle-256:   256 idle python3.11 workers tracked, 1 s ticks, no viewer;
 *   idle-0:     nothing to track.
 * Reported per process: busy % of one core, the top functions by self and by
 * inclusive time; for the agent, the heap's largest kinds of objects.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { AgentProc, connectViewer, startAgent, Viewer, waitTracked } from './agentproc';
import { CpuProfile, CpuSummary, HeapKind, HeapSnapshot, summarizeCpuProfile, summarizeHeapSnapshot } from './cpuprofile';
import { childrenOf, cpuMeter, exited, log, round, sleep, waitFor, wrk } from './lib';
import { AppDir, gunicornFlask, idlePool, Service } from './services';

export const PROFILE_SCENARIOS = ['w1-viewer', 'idle-256', 'idle-0'] as const;
export type ProfileScenario = (typeof PROFILE_SCENARIOS)[number];

export interface ProfileOptions {
  seconds: number;
  scenarios: ProfileScenario[];
  /** Extra `premortem run` arguments (e.g. --disable). */
  agentArgs?: string[];
}

export interface ProcessProfile {
  role: 'agent' | 'server';
  /** utime + stime over the window from /proc (the profile's busy share, measured by the kernel), % of one core. */
  procCpuPct: number | null;
  cpu: CpuSummary;
}

export interface ScenarioProfile {
  scenario: ProfileScenario;
  seconds: number;
  processes: ProcessProfile[];
  heap: { totalMiB: number; kinds: Array<HeapKind & { mib: number }> } | null;
}

async function setup(app: AppDir, s: ProfileScenario): Promise<{ svc?: Service; tracked: number }> {
  if (s === 'w1-viewer') return { svc: await gunicornFlask(app, { workers: 2 }), tracked: 3 };
  if (s === 'idle-256') return { svc: await idlePool(app, 256), tracked: 257 };
  return { tracked: 0 };
}

function newestFile(dir: string, suffix: string): string | undefined {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith(suffix)).map((f) => path.join(dir, f));
  return files.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}

/** Asks the agent for a heap snapshot (SIGUSR2) and summarizes it. */
async function heapOf(agent: AgentProc, dir: string): Promise<ScenarioProfile['heap']> {
  process.kill(agent.pid, 'SIGUSR2');
  const file = await waitFor(() => {
    const f = newestFile(dir, '.heapsnapshot');
    if (!f) return undefined;
    const size = fs.statSync(f).size;
    return size > 0 && Date.now() - fs.statSync(f).mtimeMs > 1500 ? f : undefined; // written and settled
  }, 120_000, 'the heap snapshot', 500);
  const h = summarizeHeapSnapshot(JSON.parse(fs.readFileSync(file, 'utf8')) as HeapSnapshot, 12);
  return { totalMiB: round(h.totalBytes / 2 ** 20, 1)!, kinds: h.kinds.map((k) => ({ ...k, mib: round(k.bytes / 2 ** 20, 2)! })) };
}

async function profileOne(app: AppDir, s: ProfileScenario, o: ProfileOptions): Promise<ScenarioProfile> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-bench-prof-'));
  fs.chmodSync(dir, 0o777); // the server process runs as nobody
  const { svc, tracked } = await setup(app, s);
  let agent: AgentProc | undefined;
  let viewer: Viewer | undefined;
  try {
    agent = await startAgent({
      match: app.match, extra: [...(o.agentArgs ?? []), '--max-tracked', '2048'],
      nodeArgs: [`--cpu-prof`, `--cpu-prof-dir=${dir}`, '--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`],
      env: { PREMORTEM_SERVER_NODE_ARGS: `--cpu-prof --cpu-prof-dir=${dir}` },
    });
    if (tracked) await waitTracked(agent, tracked, 60_000);
    if (s === 'w1-viewer') viewer = await connectViewer(agent.wsUrl!);
    await sleep(2000); // start-up work (discovery, first ticks) out of the picture... mostly
    log(`profile ${s}: ${o.seconds} s`);
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    const meters = [agent.pid, ...childrenOf(agent.pid)].map((pid) => ({ pid, meter: cpuMeter([pid]) }));
    if (s === 'w1-viewer') await wrk(svc!.port, o.seconds, { close: true });
    else await sleep(o.seconds * 1000);
    const window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) };
    const procCpu = new Map(meters.map((m) => [m.pid, m.meter.pct()]));
    const heap = await heapOf(agent, dir);
    const serverPid = childrenOf(agent.pid)[0];
    viewer?.close();
    // SIGTERM to the agent alone: it closes its server process, which exits by itself (a signal to
    // the whole group would kill the server before --cpu-prof writes its file at exit).
    process.kill(agent.pid, 'SIGTERM');
    await exited(agent.child, 15_000);
    await waitFor(() => !fs.existsSync(`/proc/${serverPid}`), 10_000, 'the server process to exit').catch(() => undefined);
    await agent.stop();
    agent = undefined;
    const processes: ProcessProfile[] = [];
    for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
      const pid = Number(/^CPU\.\d+\.\d+\.(\d+)\./.exec(f)?.[1]); // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile
      const role = pid === serverPid ? 'server' : 'agent';
      processes.push({ role, procCpuPct: round(procCpu.get(pid) ?? NaN, 2), cpu: summarizeCpuProfile(JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CpuProfile, 12, window) });
    }
    processes.sort((a, b) => a.role.localeCompare(b.role));
    return { scenario: s, seconds: o.seconds, processes, heap };
  } finally {
    viewer?.close();
    await agent?.stop();
    await svc?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function runProfile(app: AppDir, o: ProfileOptions): Promise<ScenarioProfile[]> {
  const out: ScenarioProfile[] = [];
  for (const s of o.scenarios) out.push(await profileOne(app, s, o));
  return out;
}
