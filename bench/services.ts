/**
 * The Python services the benchmark loads, all on 127.0.0.1, written to a
 * temporary directory whose path is in every process's command line (the
 * agent is told to track exactly those with --match):
 *   gunicorn + Flask (sync workers: a connection per request),
 *   uvicorn + Starlette (keep-alive),
 * optionally inside a v1 memory cgroup (for the OOM kill of W3).
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { childrenOf, freePort, killGroup, onCleanup, output, sleep, start, waitFor } from './lib';
import { projectRoot } from '../agent/native';

/** The Flask app the tests serve too (test/fixtures/apps/app.py). */
const FLASK_APP = fs.readFileSync(path.join(projectRoot(), 'test', 'fixtures', 'apps', 'app.py'), 'utf8');

const STARLETTE_APP = `
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def index(request):
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/", index)])
`;

const IDLE_POOL = `
import os, signal, sys, time
n = int(sys.argv[1])
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children reaped by the kernel
kids = []
for _ in range(n):
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGUSR1, lambda *a: None)
        while True:
            time.sleep(3600)
    kids.append(pid)
print("pool ready", flush=True)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    time.sleep(3600)
`;

export interface AppDir {
  dir: string;
  /** Regex source matching the command lines of processes started from this dir. */
  match: string;
}

export function appDir(): AppDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-bench-app-'));
  fs.writeFileSync(path.join(dir, 'app.py'), FLASK_APP);
  fs.writeFileSync(path.join(dir, 'sapp.py'), STARLETTE_APP);
  fs.writeFileSync(path.join(dir, 'idle_pool.py'), IDLE_POOL);
  onCleanup(`rm ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir, match: dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') };
}

export function httpGet(port: number, urlPath: string, timeoutMs = 10000): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

export interface Service {
  child: ChildProcess;
  port: number;
  masterPid: number;
  log: () => string;
  workers(): number[];
  stop(): Promise<void>;
}

async function ready(s: Service, n: number): Promise<void> {
  await waitFor(async () => (await httpGet(s.port, '/', 2000).catch(() => 0)) === 200, 30000, `HTTP on 127.0.0.1:${s.port}`, 100);
  await waitFor(() => s.workers().length >= n, 20000, `${n} workers of pid ${s.masterPid}`);
}

function service(child: ChildProcess, port: number): Service {
  const out = output(child);
  return {
    child, port, masterPid: child.pid!, log: out.text,
    workers: () => childrenOf(child.pid!),
    stop: () => killGroup(child, 'SIGTERM', 5000),
  };
}

/** gunicorn + Flask sync workers. `cgroupProcs`: a cgroup.procs file to start in. */
export async function gunicornFlask(app: AppDir, opts: { workers?: number; args?: string[]; cgroupProcs?: string } = {}): Promise<Service> {
  const port = await freePort();
  const workers = opts.workers ?? 2;
  const argv = ['/usr/bin/python3', '/usr/bin/gunicorn', '--chdir', app.dir, '-b', `127.0.0.1:${port}`, '-w', String(workers),
    '--log-level', 'info', ...(opts.args ?? []), 'app:app'];
  const child = opts.cgroupProcs
    ? start('/bin/sh', ['-c', `echo $$ > ${opts.cgroupProcs} && exec "$@"`, 'sh', ...argv], { cwd: app.dir })
    : start(argv[0], argv.slice(1), { cwd: app.dir });
  const s = service(child, port);
  await ready(s, workers);
  return s;
}

/**
 * uvicorn + Starlette, keep-alive, 2 uvicorn workers under gunicorn (-k uvicorn.workers.UvicornWorker,
 * the usual production setup). Not `uvicorn --workers 2`: Debian's uvicorn 0.17.6 hands the listening
 * socket to its spawned workers in a form (proto 0) for which asyncio skips TCP_NODELAY, so every
 * response (headers and body written apart) waits ~40 ms for a delayed ACK: ~22 req/s per connection,
 * a latency-bound load that no tracer could slow down.
 */
export async function uvicornStarlette(app: AppDir, opts: { workers?: number } = {}): Promise<Service> {
  const port = await freePort();
  const workers = opts.workers ?? 2;
  const child = start('/usr/bin/python3', ['/usr/bin/gunicorn', '-k', 'uvicorn.workers.UvicornWorker', '--chdir', app.dir,
    '-b', `127.0.0.1:${port}`, '-w', String(workers), '--log-level', 'warning', 'sapp:app'], { cwd: app.dir });
  const s = service(child, port);
  await ready(s, workers);
  return s;
}

/** A python3.11 master with n idle forked children (SIGUSR1 ignored by a handler). */
export async function idlePool(app: AppDir, n: number): Promise<Service> {
  const child = start('/usr/bin/python3.11', [path.join(app.dir, 'idle_pool.py'), String(n)], { cwd: app.dir });
  const s = service(child, 0);
  await output(child).wait(/pool ready/, 60000);
  await waitFor(() => s.workers().length >= n, 20000, `${n} idle workers`);
  await sleep(100);
  return s;
}

/** A v1 memory cgroup with a limit; killed (by pid) and removed at cleanup. */
export function memoryCgroup(name: string, limitBytes: number) {
  const dir = `/sys/fs/cgroup/memory/${name}`;
  fs.mkdirSync(dir);
  const remove = async () => {
    for (let i = 0; i < 100; i++) {
      let pids: number[];
      try {
        pids = fs.readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
      } catch {
        return;
      }
      for (const p of pids) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      try {
        fs.rmdirSync(dir);
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`could not remove ${dir}`);
  };
  const drop = onCleanup(`rmdir ${dir}`, remove);
  fs.writeFileSync(`${dir}/memory.limit_in_bytes`, String(limitBytes));
  return {
    dir,
    procs: `${dir}/cgroup.procs`,
    oomKills: () => Number(/^oom_kill (\d+)/m.exec(fs.readFileSync(`${dir}/memory.oom_control`, 'utf8'))?.[1] ?? 0),
    async remove() {
      await remove();
      drop();
    },
  };
}
