/**
 * Real processes for kernel tests: started here, stopped by pid, never left
 * behind (every spawned child is killed in afterAll via stopAll()).
 */
import { ChildProcess, spawn, SpawnOptions } from 'child_process';
import * as fs from 'fs';

const started = new Set<ChildProcess>();

/**
 * Starts a process in its own process group, so that stopping it also stops
 * what it forked (a gunicorn master's workers would otherwise outlive it and
 * hold the test's pipes open).
 */
export function start(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, ...opts });
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

/** A Python one-liner on Debian's python3.11 (which carries USDT probes). */
export function python(code: string, opts: SpawnOptions = {}): ChildProcess {
  return start('/usr/bin/python3.11', ['-c', code], opts);
}

export function exited(child: ChildProcess, timeoutMs = 10000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`pid ${child.pid} did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal });
    });
  });
}

/** Kills a started process and everything in its process group. */
export async function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try { process.kill(child.pid, signal); } catch { /* already gone */ }
  }
  await exited(child, 5000).catch(() => undefined);
}

/** Kills every process this test file started, with their process groups (and waits for them). */
export async function stopAll(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of started) {
    if (child.pid) waits.push(killGroup(child));
  }
  await Promise.all(waits);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function waitFor<T>(check: () => T | undefined | null | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** waitFor for a check that must await (an HTTP call, a file read). */
export async function waitForAsync<T>(check: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves once the child printed a line matching `re` on stdout or stderr. */
export function printed(child: ChildProcess, re: RegExp, timeoutMs = 15000): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`no output matching ${re} within ${timeoutMs} ms; got: ${buf.slice(-500)}`)), timeoutMs);
    const on = (d: Buffer) => {
      buf += d.toString();
      const m = buf.match(re);
      if (m) {
        clearTimeout(t);
        resolve(m[0]);
      }
    };
    child.stdout?.on('data', on);
    child.stderr?.on('data', on);
  });
}

/** start_time of a process in clock ticks since boot (/proc/PID/stat field 22). */
export function procStartTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19]);
}

/**
 * Python for a master whose children die one after another: a long-lived child (so the
 * master counts as a pre-fork server), then a child every `everyS` that lives `lifeS` and
 * exits 1 — a steady stream of failure post-mortems. Prints "ready".
 */
export function dyingChildrenMaster(lifeS: number, everyS: number): string {
  return `
import os, sys, time
keeper = os.fork()
if keeper == 0:
    time.sleep(3600); os._exit(0)
print("ready", flush=True)
while True:
    if os.fork() == 0:
        time.sleep(${lifeS}); os._exit(1)
    time.sleep(${everyS})
    try:
        while os.waitpid(-1, os.WNOHANG)[0]: pass
    except ChildProcessError: pass
`;
}
