/**
 * Cost of reading Python stacks from outside (agent/python/stacks.ts) at
 * 256 workers sampled once a second each, as issue 15 §3 asks: µs per sample
 * and the sampler's CPU (share of one core, per worker). The workers are
 * forked by one python master (Debian's python3.11 by default, or PYTHON=...),
 * each ~20 frames deep like a web worker in its request loop, in two regimes:
 *   idle     every worker sleeps: no thread ran since the last sample, so the
 *            answer comes from the last sample (a /proc check, no memory read);
 *   ticking  every worker wakes each 200 ms and runs a little Python: each
 *            sample walks the stack again (the worst case for the sampler).
 * Times are wall time per sample (on a loaded machine they include waiting for
 * a CPU); cpu_pct_of_core is the sampler's process CPU over the run (getrusage).
 *
 * Then the agent path (agent/sampling/stacks.ts): the real agent (real BPF)
 * tracks the same 256 workers, once with stack sampling off and once at its
 * default rate, in both regimes: the agent's CPU (this process) and RSS, and
 * what the stack watch reports (samples/s, µs per sample, its own CPU, samples
 * deferred by the pass bounds, the longest pass).
 * RSS is the whole bench process's (it only grows across the runs); heap_used
 * is measured after a full GC when node runs with --expose-gc.
 * Not a test: `node --expose-gc dist/bench/pystack.js` as root after `npm run build`.
 * AGENT=0 skips the agent path.
 */
import { createAgent } from '../agent/agent';
import { createLogger } from '../agent/log';
import { DEFAULTS } from '../agent/config';
import { createStackSampler } from '../agent/python/stacks';
import { cleanupAll, installSignalCleanup, killGroup, log, percentile, round, sleep, start, waitFor, childrenOf } from './lib';

const WORKERS = Number(process.env.WORKERS ?? 256);
const SECONDS = Number(process.env.SECONDS ?? 10);
const PYTHON = process.env.PYTHON ?? '/usr/bin/python3.11';
const DEPTH = 18;
/** In the bench master's command line: the agent tracks it by this (and nothing else on the host). */
const MARK = `pm-bench-pystack-${process.pid}`;

const MASTER = `
import os, sys, time
def work():
    s = 0
    for i in range(200): s += i
    return s
def request_loop(tick):
    while True:
        if tick:
            work(); time.sleep(0.2)
        else:
            time.sleep(3600)
def layer(n, tick):
    return layer(n - 1, tick) if n else request_loop(tick)
tick = sys.argv[1] == 'ticking'
for _ in range(${WORKERS}):
    if os.fork() == 0:
        layer(${DEPTH}, tick)
print('ready', flush=True)
while True: time.sleep(3600)
`;

interface Result {
  regime: string;
  workers: number;
  samples: number;
  walked: number;
  errors: number;
  us_per_sample_p50: number | null;
  us_per_sample_p99: number | null;
  us_per_walked_sample: number | null;
  memory_reads_per_walk: number | null;
  cpu_us_per_unchanged_sample: number | null;
  cpu_us_per_walked_sample: number | null;
  /** CPU inside sample() only. */
  sampler_cpu_pct_of_core: number | null;
  /** The whole bench process (timers, bookkeeping included). */
  cpu_pct_of_core: number | null;
  cpu_us_per_worker_per_s: number | null;
}

async function startWorkers(name: 'idle' | 'ticking') {
  const master = start(PYTHON, ['-c', MASTER, name, MARK], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  master.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('ready'), 60_000, 'the workers');
  const workers = await waitFor(() => { const k = childrenOf(master.pid!); return k.length >= WORKERS && k; }, 30_000, `${WORKERS} workers`);
  await sleep(500); // every worker in its loop
  return { master, workers };
}

async function regime(name: 'idle' | 'ticking'): Promise<Result> {
  const { master, workers } = await startWorkers(name);
  const sampler = createStackSampler();
  const times: number[] = [];
  const walkedTimes: number[] = [];
  const sampleCpuUs = [0, 0]; // CPU inside sample(): answered from the last sample, walked
  // A sample answered from the previous one shares its thread list.
  const lastThreads = new Map<number, unknown>();
  for (const pid of workers) lastThreads.set(pid, sampler.sample(pid).threads); // warm: contexts, code objects
  const warm = sampler.stats();
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  // One sample per worker per second, as an agent would take them: a tick every
  // 100 ms samples a tenth of the workers.
  const TICKS = 10;
  const perTick = Math.ceil(workers.length / TICKS);
  for (let tick = 0; tick < SECONDS * TICKS; tick++) {
    const from = (tick % TICKS) * perTick;
    for (const pid of workers.slice(from, from + perTick)) {
      const c = process.cpuUsage();
      const t = process.hrtime.bigint();
      const r = sampler.sample(pid);
      const us = Number(process.hrtime.bigint() - t) / 1000;
      const cu = process.cpuUsage(c);
      times.push(us);
      const walkedNow = r.threads !== lastThreads.get(pid);
      if (walkedNow) walkedTimes.push(us);
      sampleCpuUs[walkedNow ? 1 : 0] += cu.user + cu.system;
      lastThreads.set(pid, r.threads);
      if (r.error) log(`pid ${pid}: ${r.error}`);
    }
    const wait = t0 + (tick + 1) * (1000 / TICKS) - Date.now();
    if (wait > 0) await sleep(wait);
  }
  const cpu = process.cpuUsage(cpu0);
  const wallS = (Date.now() - t0) / 1000;
  const st = sampler.stats();
  const walked = walkedTimes.length;
  const cpuUs = cpu.user + cpu.system;
  sampler.close();
  await killGroup(master); // the workers are in the master's process group
  return {
    regime: name, workers: workers.length, samples: times.length, walked, errors: st.errors - warm.errors,
    us_per_sample_p50: round(percentile(times, 50), 1), us_per_sample_p99: round(percentile(times, 99), 1),
    us_per_walked_sample: walked ? round(percentile(walkedTimes, 50), 1) : null,
    memory_reads_per_walk: walked ? round((st.memoryReads - warm.memoryReads) / walked, 1) : null,
    cpu_us_per_unchanged_sample: times.length > walked ? round(sampleCpuUs[0] / (times.length - walked), 1) : null,
    cpu_us_per_walked_sample: walked ? round(sampleCpuUs[1] / walked, 1) : null,
    sampler_cpu_pct_of_core: round(((sampleCpuUs[0] + sampleCpuUs[1]) / 1e6 / wallS) * 100, 2),
    cpu_pct_of_core: round((cpuUs / 1e6 / wallS) * 100, 2),
    cpu_us_per_worker_per_s: round(cpuUs / wallS / workers.length, 1),
  };
}

interface AgentRun {
  regime: string;
  stacks: 'off' | 'on';
  tracked: number;
  agent_cpu_pct_of_core: number | null;
  agent_rss_mib: number | null;
  /** JS heap in use after a full GC (node --expose-gc), at the end of the run. */
  heap_used_mib: number | null;
  samples_per_s: number | null;
  us_per_sample: number | null;
  stack_cpu_pct_of_core: number | null;
  deferred: number;
  bursts: number;
  bursts_refused: number;
  longest_pass_ms: number;
}

/** The agent tracking the bench's workers for SECONDS, stacks on or off: its CPU and what the stack watch did. */
async function agentRun(regimeName: string, stackIntervalMs: number): Promise<AgentRun> {
  const agent = createAgent({ port: null, match: new RegExp(MARK), autoDiscover: false, stackIntervalMs, discoveryIntervalMs: 2000 },
    { logger: createLogger({ level: 'error' }) });
  await agent.start();
  try {
    const alive = () => agent.snapshot().workers.filter((w) => w.state === 'alive' && w.identity?.role === 'worker').length;
    await waitFor(() => alive() >= WORKERS, 60_000, `the agent tracking ${WORKERS} workers`);
    await sleep(Math.max(2000, stackIntervalMs * 2)); // every worker sampled (walked) once: contexts and code objects warm
    const s0 = agent.stackStats();
    const cpu0 = process.cpuUsage();
    const t0 = Date.now();
    await sleep(SECONDS * 1000);
    const cpu = process.cpuUsage(cpu0);
    const wallS = (Date.now() - t0) / 1000;
    const s1 = agent.stackStats();
    const samples = s0 && s1 ? s1.samples - s0.samples : 0;
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    return {
      regime: regimeName, stacks: stackIntervalMs ? 'on' : 'off', tracked: alive(),
      agent_cpu_pct_of_core: round(((cpu.user + cpu.system) / 1e6 / wallS) * 100, 2),
      agent_rss_mib: round(process.memoryUsage().rss / 2 ** 20, 1),
      heap_used_mib: gc ? round(process.memoryUsage().heapUsed / 2 ** 20, 1) : null,
      samples_per_s: s0 && s1 ? round(samples / wallS, 1) : null,
      us_per_sample: s0 && s1 && samples ? round((s1.sampleUs - s0.sampleUs) / samples, 1) : null,
      stack_cpu_pct_of_core: s0 && s1 ? round((s1.cpuUs - s0.cpuUs) / 1e6 / wallS * 100, 2) : null,
      deferred: s0 && s1 ? s1.deferred - s0.deferred : 0,
      bursts: s0 && s1 ? s1.bursts - s0.bursts : 0,
      bursts_refused: s0 && s1 ? s1.burstsRefused - s0.burstsRefused : 0,
      longest_pass_ms: s1?.longestPassMs ?? 0,
    };
  } finally {
    await agent.stop();
  }
}

async function agentRegime(name: 'idle' | 'ticking'): Promise<AgentRun[]> {
  const { master } = await startWorkers(name);
  try {
    return [await agentRun(name, 0), await agentRun(name, DEFAULTS.stackIntervalMs)];
  } finally {
    await killGroup(master); // the workers are in the master's process group
  }
}

async function main(): Promise<void> {
  installSignalCleanup();
  try {
    const rows = [await regime('idle'), await regime('ticking')];
    log(`Python stacks, ${WORKERS} workers of ${PYTHON}, each sampled 1/s for ${SECONDS} s:`);
    console.table(rows);
    const agentRows = process.env.AGENT === '0' ? [] : [...await agentRegime('idle'), ...await agentRegime('ticking')];
    if (agentRows.length) {
      log(`The agent tracking them, stacks off and at ${DEFAULTS.stackIntervalMs} ms per worker, ${SECONDS} s each:`);
      console.table(agentRows);
    }
    process.stdout.write(JSON.stringify({ pystack: rows, agent: agentRows }) + '\n');
  } finally {
    await cleanupAll();
  }
}

main().catch(async (e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  await cleanupAll();
  process.exit(1);
});
