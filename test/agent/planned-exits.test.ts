/**
 * No false post-mortems: every supported server, started for real under light
 * load, loses one worker to a real failure (SIGKILL from the test: one failure
 * post-mortem), then is reloaded the server's own way where it has one and
 * stopped the ordinary way. The reload and the stop are planned: every other
 * death is `exited`, not a failure, and writes no bundle.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ChildProcess } from 'child_process';
import { exited, sleep, start, waitFor } from '../helpers/procs';
import { freePort, get, ready } from '../helpers/services';
import { useTestAgent } from '../helpers/agent';

const PY = '/usr/bin/python3';
const t = useTestAgent('planned', { windowMs: 60_000, bundleWindowMs: 30_000 });
const { deaths, bundles } = t;

const CELERY_APP = (dir: string) => `
from celery import Celery
app = Celery('tasks', broker='filesystem://')
app.conf.broker_transport_options = {'data_folder_in': '${dir}/q', 'data_folder_out': '${dir}/q', 'data_folder_processed': '${dir}/done'}
app.conf.worker_hijack_root_logger = False
app.conf.worker_lost_wait = 1  # a warm shutdown waits this long for a pool child lost to a crash

@app.task
def add(x, y):
    return x + y

@app.task
def crash():
    import ctypes
    ctypes.string_at(0)  # SIGSEGV in the pool child: WorkerLostError in the main process
`;

interface ServerCase {
  name: string;
  /** The app dir appears in every command line: the agent's --match selects this test's servers. */
  argv: (port: number, dir: string) => string[];
  workers: number;
  /** The server's own graceful reload, when it has one. */
  reload?: NodeJS.Signals;
  /** How an operator stops it (systemd's default is SIGTERM). */
  stop: NodeJS.Signals;
  http: boolean;
  /**
   * The real failure: a worker SIGKILLed from outside, or (celery) a task that crashes its pool
   * child — celery 5.2's pool wedges after a SIGKILLed child: its warm shutdown never ends.
   */
  failure: 'sigkill' | 'crash-task';
}

const CASES: ServerCase[] = [
  { name: 'gunicorn sync', argv: (p, d) => [PY, '/usr/bin/gunicorn', '--chdir', d, '-b', `127.0.0.1:${p}`, '-w', '2', 'app:app'], workers: 2, reload: 'SIGHUP', stop: 'SIGTERM', http: true, failure: 'sigkill' },
  { name: 'gunicorn gthread', argv: (p, d) => [PY, '/usr/bin/gunicorn', '--chdir', d, '-b', `127.0.0.1:${p}`, '-w', '2', '-k', 'gthread', '--threads', '4', 'app:app'], workers: 2, reload: 'SIGHUP', stop: 'SIGTERM', http: true, failure: 'sigkill' },
  { name: 'gunicorn with uvicorn workers', argv: (p, d) => [PY, '/usr/bin/gunicorn', '--chdir', d, '-b', `127.0.0.1:${p}`, '-w', '2', '-k', 'uvicorn.workers.UvicornWorker', 'asgi:app'], workers: 2, reload: 'SIGHUP', stop: 'SIGTERM', http: true, failure: 'sigkill' },
  { name: 'uvicorn --workers', argv: (p, d) => [PY, '-m', 'uvicorn', '--app-dir', d, '--host', '127.0.0.1', '--port', String(p), '--workers', '2', 'asgi:app'], workers: 2, stop: 'SIGTERM', http: true, failure: 'sigkill' },
  { name: 'uwsgi', argv: (p, d) => ['/usr/bin/uwsgi', '--plugin', 'python3', '--master', '--processes', '2', '--http-socket', `127.0.0.1:${p}`, '--chdir', d, '--wsgi-file', 'app.py', '--callable', 'app', '--disable-logging'], workers: 2, reload: 'SIGHUP', stop: 'SIGINT', http: true, failure: 'sigkill' },
  { name: 'hypercorn --workers', argv: (p, d) => [PY, '/usr/bin/hypercorn', '--workers', '2', '-b', `127.0.0.1:${p}`, '--root-path', d, 'asgi:app'], workers: 2, stop: 'SIGTERM', http: true, failure: 'sigkill' },
  { name: 'daphne', argv: (p, d) => [PY, '/usr/bin/daphne', '-b', '127.0.0.1', '-p', String(p), '--root-path', d, 'asgi:app'], workers: 0, stop: 'SIGTERM', http: true, failure: 'sigkill' },
  { name: 'celery prefork', argv: (_p, d) => [PY, '-m', 'celery', '-A', 'tasks', '--workdir', d, 'worker', '--pool', 'prefork', '-c', '2', '--loglevel', 'warning', '--without-heartbeat', '--without-mingle', '--without-gossip'], workers: 2, stop: 'SIGTERM', http: false, failure: 'crash-task' },
];

beforeAll(() => {
  fs.writeFileSync(path.join(t.app.dir, 'tasks.py'), CELERY_APP(t.app.dir));
  for (const d of ['q', 'done']) fs.mkdirSync(path.join(t.app.dir, d));
});

/** Tracked, live processes of the service whose master is `masterPid`. */
function trackedWorkers(masterPid: number): number[] {
  const snap = t.agent.snapshot();
  const svc = snap.services.find((s) => s.masterPid === masterPid);
  if (!svc) return [];
  return snap.workers.filter((w) => w.state === 'alive' && w.identity?.serviceId === svc.id && w.identity.role === 'worker')
    .map((w) => w.identity!.pid);
}

/** Light load: one request every 50 ms until stopped (errors ignored: the server may be restarting). */
function lightLoad(c: ServerCase, port: number): () => Promise<void> {
  let on = true;
  const loop = (async () => {
    while (on) {
      if (c.http) await get(port, '/', 5000).catch(() => undefined);
      else await sendTask().catch(() => undefined);
      await sleep(50);
    }
  })();
  return async () => { on = false; await loop; };
}

async function sendTask(name = 'add', args = '1, 2'): Promise<void> {
  const p = start(PY, ['-c', `from tasks import ${name}; ${name}.delay(${args})`], { cwd: t.app.dir, stdio: 'ignore' });
  await exited(p, 10_000);
}

describe.each(CASES)('$name', (c) => {
  test('a real failure is caught; the reload and the stop write no post-mortem', async () => {
    const port = await freePort();
    const [cmd, ...args] = c.argv(port, t.app.dir);
    const master: ChildProcess = start(cmd, args, { cwd: t.app.dir });
    if (c.http) await ready(port, 30_000); // celery: ready once its pool is tracked, below
    const masterPid = master.pid!;
    // Workers alive across two looks a second apart: a server may fork short-lived helpers at start.
    const settled = async () => {
      const a = await waitFor(() => { const w = trackedWorkers(masterPid); return w.length >= c.workers && w; }, 20_000, `${c.workers} tracked workers`);
      await sleep(1000);
      return trackedWorkers(masterPid).filter((p) => a.includes(p));
    };
    const first = c.workers ? await settled() : [];
    if (c.workers) expect(first.length).toBeGreaterThanOrEqual(1);
    if (!c.workers) await waitFor(() => t.agent.snapshot().workers.some((w) => w.identity?.pid === masterPid && w.state === 'alive'), 20_000, 'the server tracked');
    const stopLoad = lightLoad(c, port);
    try {
      await failReloadStop(c, master, masterPid, first, stopLoad);
    } finally {
      await stopLoad();
    }
  }, 120_000);
});

async function failReloadStop(c: ServerCase, master: ChildProcess, masterPid: number, first: number[], stopLoad: () => Promise<void>) {
  {
    const deathsBefore = deaths.length;
    const failuresBefore = bundles.length;

    // A real failure (the only server without workers loses nothing here).
    let victim = 0;
    if (c.failure === 'sigkill' && c.workers) {
      victim = first[0];
      process.kill(victim, 'SIGKILL');
      const d = await waitFor(() => deaths.slice(deathsBefore).find((x) => x.identity?.pid === victim), 15_000, 'the killed worker judged');
      expect(d.verdict).toMatchObject({ kind: 'killed-by-other', failure: true });
    } else if (c.failure === 'crash-task') {
      await sendTask('crash', '');
      const d = await waitFor(() => deaths.slice(deathsBefore).find((x) => x.verdict?.signal === 11), 15_000, 'the crashed pool child judged');
      expect(d.identity?.role).toBe('worker');
      victim = d.identity!.pid;
      expect(d.verdict).toMatchObject({ kind: 'crashed', failure: true, signal: 11 });
    }
    if (victim) await waitFor(() => bundles.find((b) => b.incident.pid === victim), 10_000, 'its post-mortem');

    if (c.reload) {
      const before = c.workers ? await waitFor(() => { const w = trackedWorkers(masterPid); return w.length >= c.workers && w; }, 20_000, 'the pool full again') : [];
      process.kill(masterPid, c.reload);
      // Every worker of before the reload is replaced.
      await waitFor(() => before.every((pid) => deaths.slice(deathsBefore).some((x) => x.identity?.pid === pid)), 30_000, 'the old workers gone after the reload');
      await waitFor(() => trackedWorkers(masterPid).filter((p) => !before.includes(p)).length >= c.workers && true, 30_000, 'new workers after the reload');
    }
    await sleep(500);
    await stopLoad();
    process.kill(masterPid, c.stop);
    await exited(master, 30_000);
    await waitFor(() => deaths.slice(deathsBefore).some((x) => x.identity?.pid === masterPid), 15_000, 'the master judged');
    await sleep(500); // trailing judgements

    const judged = deaths.slice(deathsBefore);
    const planned = judged.filter((d) => d.identity?.pid !== victim);
    for (const d of planned) {
      const seen = { pid: d.identity?.pid, role: d.identity?.role, kind: d.verdict?.kind, failure: d.verdict?.failure, summary: d.verdict?.summary };
      // A worker slow to go may be ended by its master during the stop (celery, gunicorn past graceful_timeout): still planned.
      if (seen.kind === 'killed-by-master') expect(seen.summary).toMatch(/during the (shutdown|reload): a planned stop/);
      else expect(seen).toMatchObject({ kind: 'exited' });
      expect(seen.failure).toBe(false);
    }
    expect(planned.length).toBeGreaterThanOrEqual(1 + (c.reload ? c.workers : 0));
    expect(bundles.slice(failuresBefore).map((b) => b.incident.pid)).toEqual(victim ? [victim] : []);
  }
}

describe('a plain python server (no master), stopped the ordinary way or killed', () => {
  const serve = async () => {
    const port = await freePort();
    const p = start(PY, ['-m', 'http.server', '--bind', '127.0.0.1', '--directory', t.app.dir, String(port)], { cwd: t.app.dir });
    await ready(port);
    await t.tracked(p.pid!, 20_000);
    return p;
  };

  test.each(['SIGTERM', 'SIGINT'] as const)('%s from a shell or systemd is a planned stop: exited, no post-mortem', async (sig) => {
    const p = await serve();
    const before = bundles.length;
    process.kill(p.pid!, sig);
    const d = await t.deathOf(p.pid!);
    expect(d.verdict).toMatchObject({ kind: 'exited', failure: false });
    // SIGTERM's default action ends it; http.server handles SIGINT (KeyboardInterrupt) and exits 0.
    expect(d.verdict!.summary).toMatch(new RegExp(`(stopped|asked to stop) with ${sig} by pid ${process.pid} \\(node\\)`));
    await sleep(500);
    expect(bundles.length).toBe(before);
  }, 60_000);

  test('SIGKILL stays a failure: killed-by-other, sender named, a post-mortem', async () => {
    const p = await serve();
    process.kill(p.pid!, 'SIGKILL');
    const d = await t.deathOf(p.pid!);
    expect(d.verdict).toMatchObject({ kind: 'killed-by-other', failure: true, senderPid: process.pid });
    await t.bundleOf(p.pid!);
  }, 60_000);
});
