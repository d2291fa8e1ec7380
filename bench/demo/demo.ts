#!/usr/bin/env node
/**
 * `npm run demo`: the agent and a small fleet in trouble, on 127.0.0.1 only.
 *
 *   demo-api     gunicorn + Flask, 3 sync workers pinned to CPU 0, --timeout 4
 *                - two CPU hogs pinned to the same CPU starve the workers
 *                  (slow wakeups with the hog named as culprit, runqueue p99)
 *                - GET /slow blocks past the timeout: the master kills the
 *                  worker (killed-by-master)
 *                - a listener on a second port accepts and never closes:
 *                  the load generator's connections pile up in CLOSE_WAIT
 *   demo-ingest  gunicorn + Flask, 2 workers inside a v1 memory cgroup with a
 *                limit; GET /leak keeps 2 MiB per request (memory-near-limit,
 *                then oom-killed)
 *
 * A bounded load generator (rate, concurrency and total time capped) drives
 * both. Everything this demo starts is stopped by pid and every cgroup it
 * made is removed, on Ctrl-C, SIGTERM, --duration expiry and process exit.
 *
 *   node dist/bench/demo/demo.js [--port 7070] [--duration S] [--data-dir DIR]
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { cgroupMounts } from '../../agent/cgroup/memory';
import { createLogger } from '../../agent/log';
import { projectRoot } from '../../agent/native';
import { freePort, sleep } from '../lib';
import { runPremortem, type Running } from '../../agent/run';

/** Limits of the demo (all bounded: the demo must never hurt the host). */
const DEMO = {
  ingestMemoryLimitBytes: 192 * 1024 * 1024,
  leakPerRequestBytes: 2 * 1024 * 1024,
  leakRequestsPerSec: 4,
  workRequestsPerSec: 25,
  closeWaitPerSec: 3,
  /** Connections the CLOSE_WAIT listener keeps before it starts closing the oldest. */
  closeWaitKeep: 400,
  maxInFlight: 24,
  requestTimeoutMs: 10_000,
  gunicornTimeoutS: 4,
  cpuHogs: 2,
  /** /slow requests, at these seconds after start (each ends in a killed worker). */
  slowAtS: [10, 34],
  /** The load generator stops after this long whatever --duration says. */
  maxLoadS: 600,
} as const;

const PYTHON = '/usr/bin/python3';
const GUNICORN = '/usr/bin/gunicorn';

interface Args { port: number; durationS?: number; dataDir: string }

function parseArgs(argv: string[]): Args {
  const out: Args = { port: 7070, dataDir: '/tmp/premortem-demo' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new TypeError(`${a} needs a value`);
      return v;
    };
    if (a === '--port') out.port = Number(val());
    else if (a === '--duration') out.durationS = Number(val());
    else if (a === '--data-dir') out.dataDir = val();
    else if (a === '--help' || a === '-h') {
      process.stdout.write('usage: npm run demo -- [--port 7070] [--duration SECONDS] [--data-dir DIR]\n');
      process.exit(0);
    } else throw new TypeError(`unknown option ${a} (try --help)`);
  }
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) throw new TypeError(`--port must be a TCP port, got ${out.port}`);
  if (out.durationS !== undefined && !(out.durationS > 0)) throw new TypeError(`--duration must be a positive number of seconds, got ${out.durationS}`);
  return out;
}

// ---------------------------------------------------------------- the fleet's code

/** The fleet's Python code (bench/demo/*.py), copied into the demo's own directory. */
const FLEET_FILES = ['api.py', 'ingest.py', 'api_conf.py', 'hog.py'];
const fleetSource = (file: string) => path.join(projectRoot(), 'bench', 'demo', file);

// ---------------------------------------------------------------- helpers

function say(line: string): void {
  process.stdout.write(`[demo] ${line}\n`);
}

interface DemoCgroup { dir: string; name: string }

function makeCgroup(name: string, limitBytes?: number): DemoCgroup {
  const mount = cgroupMounts().v1Memory;
  if (!mount) throw new Error('the demo needs the v1 memory controller (/sys/fs/cgroup/memory); this host has none');
  const dir = path.join(mount, name);
  fs.mkdirSync(dir);
  if (limitBytes) fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  return { dir, name };
}

function cgroupPids(cg: DemoCgroup): number[] {
  try {
    return fs.readFileSync(path.join(cg.dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- the demo

export interface DemoHandle {
  url: string;
  running: Running;
  /** Every pid the demo started (masters, hogs) and what is in its cgroups. */
  pids(): number[];
  cgroups: string[];
  stop(): Promise<void>;
}

export async function startDemo(args: Args): Promise<DemoHandle> {
  if (process.getuid?.() !== 0) throw new Error('the demo loads eBPF programs and makes a memory cgroup: run it as root');
  for (const f of [PYTHON, GUNICORN]) if (!fs.existsSync(f)) throw new Error(`${f} is missing: run npm run setup -- --test (Debian gunicorn, python3-flask)`);
  const tag = `premortem-demo-${process.pid}`;
  const appDir = fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
  const children: ChildProcess[] = [];
  const cgroups: DemoCgroup[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let stopping: Promise<void> | undefined;
  let running: Running | undefined;
  const loadAbort = new AbortController();

  const stop = () => (stopping ??= (async () => {
    loadAbort.abort();
    for (const t of timers) clearTimeout(t);
    // Masters first (SIGTERM lets gunicorn stop its workers), then whatever is left, by pid.
    for (const c of children) if (c.pid && c.exitCode === null && c.signalCode === null) { try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ } }
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline && children.some((c) => c.pid && alive(c.pid) && c.exitCode === null && c.signalCode === null)) await sleep(50);
    killEverything();
    for (const cg of cgroups) {
      for (let i = 0; i < 100; i++) {
        for (const pid of cgroupPids(cg)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
        try { fs.rmdirSync(cg.dir); break; } catch { await sleep(30); }
      }
    }
    await running?.stop();
    fs.rmSync(appDir, { recursive: true, force: true });
  })());

  /** Synchronous last resort (process 'exit'): kill by pid, remove the cgroups. */
  const killEverything = () => {
    for (const c of children) if (c.pid) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const cg of cgroups) for (const pid of cgroupPids(cg)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  };
  process.once('exit', () => {
    killEverything();
    for (const cg of cgroups) { try { fs.rmdirSync(cg.dir); } catch { /* tasks still exiting */ } }
    try { fs.rmSync(appDir, { recursive: true, force: true }); } catch { /* best effort */ }
  });

  try {
    const [apiPort, leakPort, ingestPort] = [await freePort(), await freePort(), await freePort()];
    for (const f of FLEET_FILES) fs.copyFileSync(fleetSource(f), path.join(appDir, f));
    const env = { ...process.env, DEMO_LEAK_BYTES: String(DEMO.leakPerRequestBytes), DEMO_TIMEOUT_S: String(DEMO.gunicornTimeoutS),
      DEMO_LEAK_PORT: String(leakPort), DEMO_CLOSE_WAIT_KEEP: String(DEMO.closeWaitKeep) };

    // Cgroups: the ingest service gets the memory limit; the api one none (it is there to find every pid at cleanup).
    cgroups.push(makeCgroup(`${tag}-ingest`, DEMO.ingestMemoryLimitBytes));
    cgroups.push(makeCgroup(`${tag}-api`));
    const [ingestCg, apiCg] = cgroups;

    const logger = createLogger({ level: (process.env.PREMORTEM_LOG as 'info') || 'warn' });
    running = await runPremortem({
      port: args.port, dataDir: args.dataDir, match: new RegExp(appDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), autoDiscover: false,
      intervalMs: 1000, windowMs: 600_000, bundleWindowMs: 120_000, discoveryIntervalMs: 1000,
    }, { logger });

    // `sh` joins the cgroup and pins the CPU, then becomes gunicorn: workers inherit both.
    const launch = (cg: DemoCgroup, cpuList: string | null, gunicornArgs: string[], name: string) => {
      const pin = cpuList ? `exec taskset -c ${cpuList} "$@"` : 'exec "$@"';
      const child = spawn('/bin/sh', ['-c', `echo $$ > ${cg.dir}/cgroup.procs && ${pin}`, 'sh', GUNICORN, ...gunicornArgs],
        { cwd: appDir, env, stdio: ['ignore', 'ignore', 'pipe'] });
      let errTail = '';
      child.stderr?.on('data', (d: Buffer) => { errTail = (errTail + d.toString()).slice(-2000); });
      child.once('exit', (code, sig) => { if (!stopping) say(`${name} master exited (${code ?? sig}); last output: ${errTail.trim().split('\n').slice(-3).join(' | ')}`); });
      children.push(child);
      return child;
    };
    launch(apiCg, '0', ['-c', path.join(appDir, 'api_conf.py'), '-w', '3', '-b', `127.0.0.1:${apiPort}`, '--chdir', appDir, 'api:app'], 'demo-api');
    launch(ingestCg, null, ['-w', '2', '--timeout', '30', '-b', `127.0.0.1:${ingestPort}`, '--chdir', appDir, 'ingest:app'], 'demo-ingest');
    const hogSeconds = Math.min(DEMO.maxLoadS, (args.durationS ?? DEMO.maxLoadS) + 5);
    for (let i = 0; i < DEMO.cpuHogs; i++) {
      // The hogs live in the api cgroup too, so that cleanup finds them even if their pid is lost.
      const hog = spawn('/bin/sh', ['-c', `echo $$ > ${apiCg.dir}/cgroup.procs && exec taskset -c 0 ${PYTHON} "$@"`, 'sh', path.join(appDir, 'hog.py'), String(hogSeconds)], { stdio: 'ignore' });
      children.push(hog);
    }

    await waitForHttp(apiPort, 15_000);
    await waitForHttp(ingestPort, 15_000);
    const url = running.url ?? `http://127.0.0.1:${args.port}/`;
    say(`viewer: ${url}`);
    say(`demo-api    http://127.0.0.1:${apiPort}/  (3 workers on CPU 0 with ${DEMO.cpuHogs} CPU hogs; /slow blocks past --timeout ${DEMO.gunicornTimeoutS}s; CLOSE_WAIT leak on :${leakPort})`);
    say(`demo-ingest http://127.0.0.1:${ingestPort}/  (2 workers in memory cgroup ${ingestCg.name}, limit ${DEMO.ingestMemoryLimitBytes >> 20} MiB; /leak keeps ${DEMO.leakPerRequestBytes >> 20} MiB per request)`);
    say('expect within a minute: slow wakeups and runqueue p99 on demo-api, CLOSE_WAIT growing, memory-near-limit then an OOM kill on demo-ingest, a worker killed by its master after /slow');

    runLoad({ apiPort, leakPort, ingestPort, signal: loadAbort.signal, seconds: Math.min(DEMO.maxLoadS, args.durationS ?? DEMO.maxLoadS), timers });

    return {
      url,
      running,
      pids: () => [...new Set([...children.map((c) => c.pid!).filter(Boolean), ...cgroups.flatMap(cgroupPids)])],
      cgroups: cgroups.map((c) => c.dir),
      stop,
    };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}

async function waitForHttp(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 1000 }, (res) => { res.resume(); resolve(res.statusCode === 200); });
      req.on('error', () => resolve(false));
      req.on('timeout', () => { req.destroy(); resolve(false); });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`demo service on 127.0.0.1:${port} did not answer within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** The bounded load generator: fixed rates, at most DEMO.maxInFlight requests at once, 127.0.0.1 only. */
function runLoad(o: { apiPort: number; leakPort: number; ingestPort: number; signal: AbortSignal; seconds: number; timers: Set<NodeJS.Timeout> }): void {
  const endAt = Date.now() + o.seconds * 1000;
  let inFlight = 0;
  const agent = new http.Agent({ keepAlive: false, maxSockets: DEMO.maxInFlight });
  const get = (port: number, p: string) => {
    if (o.signal.aborted || inFlight >= DEMO.maxInFlight || Date.now() > endAt) return;
    inFlight++;
    const req = http.get({ host: '127.0.0.1', port, path: p, agent, timeout: DEMO.requestTimeoutMs, signal: o.signal }, (res) => {
      res.resume();
      res.on('end', () => { inFlight--; });
    });
    req.on('error', () => { inFlight--; });
    req.on('timeout', () => req.destroy());
  };
  const every = (perSec: number, fn: () => void, startAfterMs = 0) => {
    const tick = () => {
      if (o.signal.aborted || Date.now() > endAt) return;
      fn();
      const t = setTimeout(tick, 1000 / perSec);
      o.timers.add(t);
    };
    const t = setTimeout(tick, startAfterMs);
    o.timers.add(t);
  };
  every(DEMO.workRequestsPerSec, () => get(o.apiPort, '/work'));
  every(DEMO.leakRequestsPerSec, () => get(o.ingestPort, '/leak'), 2000);
  every(DEMO.closeWaitPerSec, () => {
    // Connect, say something, close our side: the server never closes its side.
    const s = net.connect({ host: '127.0.0.1', port: o.leakPort }, () => { s.end('hello\n'); });
    s.on('error', () => s.destroy());
    s.setTimeout(5000, () => s.destroy());
  }, 3000);
  for (const at of DEMO.slowAtS) {
    const t = setTimeout(() => { say(`t+${at}s: GET /slow on demo-api (blocks past --timeout ${DEMO.gunicornTimeoutS}s)`); get(o.apiPort, '/slow'); }, at * 1000);
    o.timers.add(t);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const demo = await startDemo(args);
  say(`pids: ${demo.pids().join(' ')}; cgroups: ${demo.cgroups.join(' ')}`);
  const counts = new Map<string, number>();
  demo.running.agent.on('bundle', (inc: { verdictKind: string; pid: number; summary: string }) => {
    counts.set(inc.verdictKind, (counts.get(inc.verdictKind) ?? 0) + 1);
    say(`post-mortem: ${inc.verdictKind} pid ${inc.pid}: ${inc.summary}`);
  });
  let done = false;
  const finish = async (why: string) => {
    if (done) return;
    done = true;
    say(`stopping (${why}); post-mortems written: ${[...counts].map(([k, n]) => `${k} ×${n}`).join(', ') || 'none'}`);
    await demo.stop();
    say('cleaned up: demo processes stopped, cgroups removed');
    process.exit(0);
  };
  process.once('SIGINT', () => void finish('Ctrl-C'));
  process.once('SIGTERM', () => void finish('SIGTERM'));
  if (args.durationS) setTimeout(() => void finish(`--duration ${args.durationS}s`), args.durationS * 1000);
  else say('press Ctrl-C to stop and clean up');
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`[demo] failed: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
