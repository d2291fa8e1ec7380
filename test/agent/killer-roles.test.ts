/**
 * Who the killer really was, end to end through the agent (real BPF, real
 * processes), for every sender role this machine can produce:
 *   - the kernel OOM killer (a real v1 memory cgroup at its limit);
 *   - a supervisor: Debian's supervisord stopping a program that ignores
 *     SIGTERM (SIGTERM, then SIGKILL after stopwaitsecs);
 *   - a script: a real bash with no terminal, its parent gone (under pid 1);
 *   - a container runtime: `podman kill` of a real container (runc, see
 *     test/helpers/podman.ts): runc sends the signal and is gone at once, so
 *     its name alone says who it was;
 * and the verdict's correctness when the record reader is behind: a death
 * found by the /proc sweep while the reader is paused waits for the records
 * (one sync per batch) instead of being judged "unknown".
 * The master (timeout) and an operator's shell on a pty are in
 * killer-stack.test.ts. systemd (stopping a unit), systemd-oomd and the
 * kubelet cannot run here: systemd is not PID 1 on this machine (pid 1 is the
 * sandbox's own init), so they are covered by the pure tests (roles.test.ts).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createAgent, Agent } from '../../agent/agent';
import { createBundleStore, BundleStore } from '../../agent/store';
import { createLogger } from '../../agent/log';
import type { Death } from '../../proto/codec';
import { exited, killGroup, printed, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { createMemoryCgroup, TestCgroup } from '../helpers/cgroup';
import { PODMAN, runContainer } from '../helpers/podman';
import { execFileSync } from 'child_process';

const MiB = 1024 * 1024;
let app: AppDir;
let dataDir: string;
let confDir: string;
let store: BundleStore;
let agent: Agent;
const deaths: Death[] = [];
const cgroups: TestCgroup[] = [];

/** A plain server that ignores SIGTERM (a supervisor has to kill it) and prints its pid when it listens. */
const STUBBORN = `
import os, signal, sys
from http.server import HTTPServer, BaseHTTPRequestHandler
signal.signal(signal.SIGTERM, signal.SIG_IGN)
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args): pass
server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", os.getpid(), flush=True)
server.serve_forever()
`;

beforeAll(async () => {
  app = appDir('killer-roles');
  fs.writeFileSync(path.join(app.dir, 'stubborn.py'), STUBBORN);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-killer-roles-data-'));
  confDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-killer-roles-conf-')); // outside the match: supervisord is not tracked
  store = createBundleStore({ dir: dataDir, logger: createLogger({ level: 'error' }) });
  await store.ready();
  agent = createAgent(
    { port: null, dataDir, intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, match: app.match, autoDiscover: false, discoveryIntervalMs: 200 },
    { store, logger: createLogger({ level: 'error' }) },
  );
  agent.on('death', (d: Death) => deaths.push(d));
  await agent.start();
});

afterAll(async () => {
  agent?.nativeTracer()?.resume();
  await agent?.stop();
  await store?.close();
  await stopAll();
  for (const cg of cgroups.reverse()) await cg.remove();
  app?.remove();
  for (const d of [dataDir, confDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

const tracked = (pid: number) => waitFor(() => agent.snapshot().workers.some((w) => w.identity?.pid === pid && w.state === 'alive'), 15_000, `pid ${pid} tracked`);
const deathOf = (pid: number, timeoutMs = 30_000) => waitFor(() => deaths.find((x) => x.identity?.pid === pid), timeoutMs, `the death of ${pid}`);

async function stubborn(port: number): Promise<number> {
  const server = start('/usr/bin/python3.11', [path.join(app.dir, 'stubborn.py'), String(port)]);
  await printed(server, /listening/);
  await tracked(server.pid!);
  return server.pid!;
}

/** A bash with no terminal whose parent is gone (setsid -f: it ends up under pid 1), running `cmd`. */
async function orphanBash(cmd: string): Promise<void> {
  const setsid = start('setsid', ['-f', 'bash', '-c', cmd], { stdio: 'ignore' });
  await exited(setsid);
}

test('the kernel OOM killer: a gunicorn worker at its memory cgroup limit; role kernel-oom, scope and cgroup', async () => {
  const limit = 160 * MiB;
  const cg = createMemoryCgroup(`pm-killer-oom-${process.pid}`, limit);
  cgroups.push(cg);
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '1', '--timeout', '60'], { prefix: cg.prefix });
  await ready(port);
  const [worker] = await workersOf(master, 1);
  await tracked(worker);
  for (let i = 0; i < 80; i++) {
    const r = await get(port, '/leak/8').catch(() => undefined);
    if (!r || r.status !== 200) break;
    await sleep(50);
  }
  const d = await deathOf(worker);
  expect(d.verdict).toMatchObject({ kind: 'oom-killed', sender: { role: 'kernel-oom', reason: 'cgroup memory limit', description: `the kernel OOM killer (cgroup ${cg.path})` } });
  expect(d.verdict!.evidence.find((e) => e.what === 'sender role')?.value).toBe(`kernel-oom: the kernel OOM killer (cgroup ${cg.path}) (cgroup memory limit)`);
  await killGroup(master);
}, 90_000);

test('a supervisor: supervisord stops a program that ignores SIGTERM, then kills it after stopwaitsecs; role supervisor, with the grace it gave', async () => {
  const port = await freePort();
  const conf = path.join(confDir, 'supervisord.conf');
  const sock = path.join(confDir, 'supervisor.sock');
  fs.writeFileSync(conf, [
    '[supervisord]', 'nodaemon=true', `logfile=${confDir}/supervisord.log`, `pidfile=${confDir}/supervisord.pid`, `childlogdir=${confDir}`,
    '[unix_http_server]', `file=${sock}`,
    '[rpcinterface:supervisor]', 'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
    '[supervisorctl]', `serverurl=unix://${sock}`,
    '[program:web]', `command=/usr/bin/python3.11 ${path.join(app.dir, 'stubborn.py')} ${port}`,
    'stopsignal=TERM', 'stopwaitsecs=1', 'startsecs=0', 'autorestart=false', '',
  ].join('\n'));
  const supervisord = start('/usr/bin/supervisord', ['-c', conf]);
  await ready(port);
  const program = await waitFor(() => agent.snapshot().workers.find((w) => w.state === 'alive' && w.identity?.cmdline.includes(`stubborn.py ${port}`)), 15_000, 'the program tracked');
  const pid = program.identity!.pid;
  expect(program.identity!.role).toBe('standalone'); // its own service, not a "worker" of supervisord
  const ctl = start('/usr/bin/supervisorctl', ['-c', conf, 'stop', 'web']);
  expect(await exited(ctl, 20_000)).toEqual({ code: 0, signal: null });
  const d = await deathOf(pid);
  expect(d.verdict).toMatchObject({ kind: 'killed-by-other', signalName: 'SIGKILL', senderPid: supervisord.pid,
    sender: { role: 'supervisor', description: 'the supervisor supervisord', readAtSignal: true } });
  expect(d.verdict!.sender!.cmdline).toContain('supervisord -c');
  expect(d.verdict!.summary).toMatch(/The SIGKILL came from the supervisor supervisord; it had sent SIGTERM \d\.\d s before the SIGKILL\./);
  await killGroup(supervisord);
}, 90_000);

test('a script: a bash with no terminal under pid 1 sends SIGKILL; role script, its command named', async () => {
  const port = await freePort();
  const pid = await stubborn(port);
  await orphanBash(`kill -KILL ${pid}; sleep 2; exit 0`);
  const d = await deathOf(pid);
  expect(d.verdict).toMatchObject({ kind: 'killed-by-other', signalName: 'SIGKILL', sender: { role: 'script', comm: 'bash', tty: '', readAtSignal: true } });
  expect(d.verdict!.sender!.ancestors[0]).toMatch(/\[1\]$/);
  expect(d.verdict!.summary).toContain(`a shell with no terminal (bash, started by ${fs.readFileSync('/proc/1/comm', 'utf8').trim()}: a script or automation), running “bash -c kill -KILL ${pid}; sleep 2; exit 0”`);
}, 60_000);

test('a container runtime: `podman kill` of a real container; runc sent the SIGKILL, role container-runtime', async () => {
  const port = await freePort();
  const name = `pm-killer-${process.pid}`;
  const ctr = runContainer(name, ['/usr/bin/python3', path.join(app.dir, 'stubborn.py'), String(port)], [app.dir]);
  try {
    await tracked(ctr.pid);
    execFileSync(PODMAN, ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs', 'kill', '--signal', 'KILL', name], { stdio: 'ignore', timeout: 30_000 });
    const d = await deathOf(ctr.pid);
    expect(d.verdict).toMatchObject({ kind: 'killed-by-other', signalName: 'SIGKILL', sender: { role: 'container-runtime', comm: 'runc' } });
    expect(d.verdict!.sender!.description).toBe('the container runtime (runc)');
    expect(d.verdict!.summary).toContain('The SIGKILL came from the container runtime (runc)');
  } finally {
    ctr.remove();
  }
}, 90_000);

test('the record reader paused: a death found by the /proc sweep waits for its records, then is judged from them (not "unknown")', async () => {
  const port = await freePort();
  const pid = await stubborn(port);
  const tracer = agent.nativeTracer()!;
  tracer.pause(); // the signal and exit records stay in the ring buffer
  try {
    await orphanBash(`kill -KILL ${pid}; sleep 4; exit 0`);
    await waitFor(() => !fs.existsSync(`/proc/${pid}`), 5000, `pid ${pid} reaped`);
    // The sweep (every 200 ms) finds it gone; the judge's sync fails while the reader is held.
    await sleep(1500);
    expect(deaths.find((x) => x.identity?.pid === pid)).toBeUndefined();
  } finally {
    tracer.resume();
  }
  const d = await deathOf(pid, 10_000);
  expect(d.verdict).toMatchObject({ kind: 'killed-by-other', signalName: 'SIGKILL', sender: { role: 'script', comm: 'bash' } });
  expect(d.verdict!.evidence.map((e) => e.what)).not.toContain('records');
}, 60_000);
