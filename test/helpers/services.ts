/**
 * Real Python services for agent tests: a Flask app written to a temp dir and
 * served by Debian's gunicorn (or uvicorn) on 127.0.0.1. The temp dir's path
 * is in every process's command line, so the agent can be told to track only
 * this test's services (match: RegExp of the dir).
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, SpawnOptions } from 'child_process';
import { start, waitFor } from './procs';

/** The Flask and ASGI apps every service test serves (the benchmarks serve the same Flask app). */
export const APPS_DIR = path.resolve(__dirname, '..', 'fixtures', 'apps');
export const FLASK_APP = fs.readFileSync(path.join(APPS_DIR, 'app.py'), 'utf8');

export const ASGI_APP = fs.readFileSync(path.join(APPS_DIR, 'asgi.py'), 'utf8');

export interface AppDir {
  dir: string;
  /** Matches the command lines of processes started in this dir. */
  match: RegExp;
  remove(): void;
}

export function appDir(prefix: string): AppDir {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pm-${prefix}-`));
  fs.writeFileSync(path.join(dir, 'app.py'), FLASK_APP);
  fs.writeFileSync(path.join(dir, 'asgi.py'), ASGI_APP);
  return {
    dir,
    match: new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')),
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** gunicorn with Debian's python3 (it carries the USDT probes). `prefix` runs it through e.g. a cgroup shim. */
export function gunicorn(app: AppDir, port: number, args: string[] = [], opts: SpawnOptions & { prefix?: string[] } = {}): ChildProcess {
  const argv = ['/usr/bin/python3', '/usr/bin/gunicorn', '--chdir', app.dir, '-b', `127.0.0.1:${port}`, ...args, 'app:app'];
  const [cmd, ...rest] = [...(opts.prefix ?? []), ...argv];
  return start(cmd, rest, { cwd: app.dir, ...opts });
}

export function uvicorn(app: AppDir, port: number, args: string[] = []): ChildProcess {
  return start('/usr/bin/python3', ['-m', 'uvicorn', '--app-dir', app.dir, '--host', '127.0.0.1', '--port', String(port), ...args, 'asgi:app'], { cwd: app.dir });
}

export interface HttpResult {
  status: number;
  body: string;
}

export function get(port: number, urlPath: string, timeoutMs = 10000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** Waits until the port answers HTTP. */
export async function ready(port: number, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await get(port, '/', 2000);
      if (r.status === 200) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`nothing answered on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Child pids of a process (from /proc/PID/task/PID/children). */
export function childrenOf(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function workersOf(master: ChildProcess, n: number, timeoutMs = 20000): Promise<number[]> {
  return waitFor(() => {
    const kids = childrenOf(master.pid!);
    return kids.length >= n ? kids : undefined;
  }, timeoutMs, `${n} workers of pid ${master.pid}`);
}
