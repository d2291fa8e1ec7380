/**
 * Shared pieces of `npm run bench`: processes started and stopped by pid,
 * cleanup of everything the benchmark changed (processes, cgroups, sysctls,
 * a tracefs mount), /proc readers (CPU of a process tree, context switches),
 * wrk, statistics, a seeded shuffle.
 */
import { ChildProcess, execFileSync, spawn, SpawnOptions } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const CLK_TCK = 100; // sysconf(_SC_CLK_TCK) on Linux x86_64

// ------------------------------------------------------------------ cleanup

type Undo = { what: string; fn: () => void | Promise<void> };
const undo: Undo[] = [];
const children = new Set<ChildProcess>();

/** Registers a step that puts the machine back (run in reverse order by cleanupAll). */
export function onCleanup(what: string, fn: () => void | Promise<void>): () => void {
  const u = { what, fn };
  undo.push(u);
  return () => {
    const i = undo.indexOf(u);
    if (i >= 0) undo.splice(i, 1);
  };
}

/** Kills every process this benchmark started (by pid, their process groups), then undoes the rest. */
export async function cleanupAll(): Promise<void> {
  await Promise.all([...children].map((c) => killGroup(c)));
  while (undo.length) {
    const u = undo.pop()!;
    try {
      await u.fn();
    } catch (e) {
      process.stderr.write(`[bench] cleanup "${u.what}" failed: ${(e as Error).message}\n`);
    }
  }
}

let exiting = false;
/** SIGINT/SIGTERM: clean up, then exit. */
export function installSignalCleanup(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      if (exiting) return;
      exiting = true;
      process.stderr.write(`\n[bench] ${sig}: cleaning up\n`);
      cleanupAll().finally(() => process.exit(130));
    });
  // A bug must not leave processes, cgroups or sysctls behind.
  for (const ev of ['uncaughtException', 'unhandledRejection'] as const)
    process.on(ev, (e: unknown) => {
      process.stderr.write(`[bench] ${ev}: ${(e as Error)?.stack ?? e}\n`);
      if (exiting) return;
      exiting = true;
      cleanupAll().finally(() => process.exit(1));
    });
}

// ------------------------------------------------------------------ processes

/** Starts a process in its own process group (so its forks die with it), remembered for cleanup. */
export function start(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
  children.add(c);
  c.once('exit', () => children.delete(c));
  c.on('error', () => undefined);
  return c;
}

export function exited(c: ChildProcess, ms = 10000): Promise<boolean> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    c.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Sends `signal` to the process group, waits, then SIGKILLs what is left. */
export async function killGroup(c: ChildProcess, signal: NodeJS.Signals = 'SIGKILL', graceMs = 5000): Promise<void> {
  if (!c.pid || c.exitCode !== null || c.signalCode !== null) return;
  const send = (s: NodeJS.Signals) => {
    try {
      process.kill(-c.pid!, s);
    } catch {
      try { process.kill(c.pid!, s); } catch { /* gone */ }
    }
  };
  send(signal);
  if (await exited(c, signal === 'SIGKILL' ? 5000 : graceMs)) {
    if (signal !== 'SIGKILL') send('SIGKILL'); // leftovers in the group (e.g. workers)
    return;
  }
  send('SIGKILL');
  await exited(c, 5000);
}

/** Runs a command to completion; rejects on a non-zero exit. */
export function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = start(cmd, args);
    let out = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (out += d));
    const t = setTimeout(() => killGroup(c), timeoutMs);
    c.once('error', reject);
    c.once('exit', (code) => {
      clearTimeout(t);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out.slice(-400)}`));
    });
  });
}

/** Collects a child's stdout+stderr; `wait(re)` resolves once it matched. */
export function output(c: ChildProcess) {
  let buf = '';
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpMatchArray) => void }> = [];
  const on = (d: Buffer) => {
    buf += d.toString();
    if (buf.length > 4 << 20) buf = buf.slice(-(2 << 20)); // bounded
    for (const w of [...waiters]) {
      const m = buf.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  c.stdout?.on('data', on);
  c.stderr?.on('data', on);
  return {
    text: () => buf,
    wait(re: RegExp, ms = 20000): Promise<RegExpMatchArray> {
      const m = buf.match(re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        const w = { re, resolve: (x: RegExpMatchArray) => { clearTimeout(t); resolve(x); } };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no ${re} within ${ms} ms; output: ${buf.slice(-600)}`));
        }, ms);
        waiters.push(w);
      });
    },
  };
}

export async function waitFor<T>(check: () => T | undefined | null | false | Promise<T | undefined | null | false>, ms: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

// ------------------------------------------------------------------ /proc

export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`))
      out.push(...fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch { /* gone */ }
  return out;
}

/** The pid and all its descendants. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]));
  return out;
}

/** utime+stime (clock ticks) of one process, threads included; 0 when gone. */
export function cpuTicks(pid: number): number {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** CPU of a set of process trees: call once at the start, `.pct()` at the end (% of one core). */
export function cpuMeter(pids: number[]) {
  const t0 = process.hrtime.bigint();
  const start = new Map<number, number>();
  for (const root of pids) for (const p of processTree(root)) start.set(p, cpuTicks(p));
  return {
    pct(): number {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      let ticks = 0;
      for (const root of pids) for (const p of processTree(root)) ticks += cpuTicks(p) - (start.get(p) ?? 0);
      return (ticks / CLK_TCK / secs) * 100;
    },
  };
}

/** CPU time of every thread of a process, ns (/proc/PID/task/TID/schedstat: nanoseconds, not 10 ms ticks). */
function threadCpuNs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      out.set(Number(tid), Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]));
    } catch { /* thread gone */ }
  }
  return out;
}

/**
 * CPU of a process tree with nanosecond resolution (threads' schedstat), per process: the
 * figures for idle agents are fractions of a percent, below what clock ticks resolve in a minute.
 */
export function preciseCpuMeter(root: number) {
  const t0 = process.hrtime.bigint();
  const start = new Map<number, Map<number, number>>();
  for (const p of processTree(root)) start.set(p, threadCpuNs(p));
  return {
    /** % of one core per process of the tree (threads that appeared since count in full). */
    perProcess(): Map<number, number> {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const out = new Map<number, number>();
      for (const p of processTree(root)) {
        const before = start.get(p) ?? new Map<number, number>();
        let ns = 0;
        for (const [tid, v] of threadCpuNs(p)) ns += v - (before.get(tid) ?? 0);
        out.set(p, (ns / 1e9 / secs) * 100);
      }
      return out;
    },
  };
}

export function ctxtNow(): number {
  const m = /^ctxt (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'utf8'));
  return m ? Number(m[1]) : 0;
}

export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export interface TreeMemory {
  /** Each process's VmRSS, as `ps` shows it. */
  perProcess: Array<{ pid: number; rssBytes: number }>;
  /** Sum of the processes' VmRSS: shared text counted once per process, the ring buffer twice. */
  rssSumBytes: number;
  /**
   * The resident pages of the processes together, each once: private pages of every process plus,
   * per shared file, the most any of them has resident. BPF map mappings (the ring buffer, mapped
   * twice) are left out: they are kernel memory, counted in the BPF map memlock figure.
   */
  uniqueBytes: number;
  /** Resident BPF map mappings (in the processes' RSS, not in uniqueBytes). */
  bpfMappedBytes: number;
  pssBytes: number;
}

/** Memory of a process and its descendants (the agent and its server process). */
export function treeMemory(root: number): TreeMemory {
  const perProcess: TreeMemory['perProcess'] = [];
  const sharedByFile = new Map<string, number>();
  let priv = 0, bpf = 0, pss = 0, rssSum = 0;
  for (const pid of processTree(root)) {
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
    } catch {
      continue; // gone
    }
    const shared = new Map<string, number>();
    let name = '', rss = 0;
    for (const line of text.split('\n')) {
      if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
        name = line.split(/\s+/)[5] ?? '';
        continue;
      }
      const m = /^(\w+):\s+(\d+) kB/.exec(line);
      if (!m) continue;
      const kb = Number(m[2]) * 1024;
      if (m[1] === 'Rss') rss += kb;
      else if (m[1] === 'Pss') pss += kb;
      if (name === 'anon_inode:bpf-map') {
        if (m[1] === 'Rss') bpf += kb;
      } else if (m[1] === 'Private_Clean' || m[1] === 'Private_Dirty') priv += kb;
      else if (m[1] === 'Shared_Clean' || m[1] === 'Shared_Dirty') shared.set(name, (shared.get(name) ?? 0) + kb);
    }
    for (const [f, b] of shared) sharedByFile.set(f, Math.max(sharedByFile.get(f) ?? 0, b));
    perProcess.push({ pid, rssBytes: rss });
    rssSum += rss;
  }
  const sharedOnce = [...sharedByFile.values()].reduce((a, b) => a + b, 0);
  return { perProcess, rssSumBytes: rssSum, uniqueBytes: priv + sharedOnce, bpfMappedBytes: bpf, pssBytes: pss };
}

/** BPF objects a process holds, from /proc/PID/fd + fdinfo: map ids with memlock bytes, prog ids. */
export function bpfObjectsOf(pid: number): { maps: Map<number, number>; progs: Set<number>; links: number } {
  const maps = new Map<number, number>();
  const progs = new Set<number>();
  let links = 0;
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return { maps, progs, links };
  }
  for (const fd of fds) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target === 'anon_inode:bpf_link') links++;
      else if (target === 'anon_inode:bpf-map') {
        const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
        const id = /^map_id:\s+(\d+)/m.exec(info), mem = /^memlock:\s+(\d+)/m.exec(info);
        if (id) maps.set(Number(id[1]), mem ? Number(mem[1]) : 0);
      } else if (target === 'anon_inode:bpf-prog') {
        const id = /^prog_id:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (id) progs.add(Number(id[1]));
      }
    } catch { /* fd closed meanwhile */ }
  }
  return { maps, progs, links };
}

// ------------------------------------------------------------------ sysctl, tracefs

/** Writes a /proc/sys file and restores the previous value at cleanup (or when the returned function runs). */
export function setSysctl(file: string, value: string): () => void {
  const prev = fs.readFileSync(file, 'utf8').trim();
  fs.writeFileSync(file, value);
  let done = false;
  const restore = () => {
    if (done) return;
    done = true;
    fs.writeFileSync(file, prev);
  };
  const drop = onCleanup(`restore ${file}=${prev}`, restore);
  return () => {
    restore();
    drop();
  };
}

/** Classic tracepoints (tcpstates, exitsnoop) need tracefs: mount it when absent, unmount at cleanup. */
export function ensureTracefs(): void {
  if (fs.existsSync('/sys/kernel/tracing/events')) return;
  execFileSync('mount', ['-t', 'tracefs', 'nodev', '/sys/kernel/tracing']);
  onCleanup('umount tracefs', () => { execFileSync('umount', ['/sys/kernel/tracing']); });
}

// ------------------------------------------------------------------ wrk

export interface WrkResult {
  rps: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  seconds: number;
}

function toMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === 'us' ? n / 1000 : unit === 's' ? n * 1000 : unit === 'm' ? n * 60000 : n;
}

export function parseWrk(out: string, seconds: number): WrkResult {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const lat = (q: string) => {
    const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(out);
    return m ? toMs(m[1], m[2]) : NaN;
  };
  const se = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = se ? se.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  return { rps, requests, p50Ms: lat('50'), p99Ms: lat('99'), errors, non2xx, seconds };
}

/** wrk for a fixed time on 127.0.0.1, with latency percentiles. */
export async function wrk(port: number, seconds: number, opts: { threads?: number; conns?: number; close?: boolean; path?: string } = {}): Promise<WrkResult> {
  const args = [`-t${opts.threads ?? 2}`, `-c${opts.conns ?? 32}`, `-d${seconds}s`, '--latency', '--timeout', '5s'];
  if (opts.close) args.push('-H', 'Connection: close');
  args.push(`http://127.0.0.1:${port}${opts.path ?? '/'}`);
  const out = await run('wrk', args, (seconds + 30) * 1000);
  const r = parseWrk(out, seconds);
  if (!Number.isFinite(r.rps)) throw new Error(`could not parse wrk output: ${out.slice(-400)}`);
  return r;
}

// ------------------------------------------------------------------ statistics

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function percentile(xs: number[], p: number): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Coefficient of variation (stdev / mean). */
export function cv(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1)) / m;
}

/** Deterministic PRNG (mulberry32), so a run's order can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function shuffle<T>(xs: T[], rand: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

export const round = (x: number, d = 3) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : null);

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}
