/**
 * The release a host installs with no toolchain (issue 14 §4). `npm run
 * package` builds the .deb; dpkg installs it on this machine for real; the
 * installed copy runs `premortem doctor` and a short `premortem run` (tracking a
 * real gunicorn, writing a post-mortem of a worker that crashes) with no
 * compiler on PATH; run as the unit runs it, its system calls stay inside the
 * unit's SystemCallFilter; `dpkg -r` and `dpkg -P` leave nothing behind.
 * One package test at a time on the machine (test/helpers/dpkg.ts).
 */
import { ChildProcess, execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import WebSocket from 'ws';
import { acquirePackageLock, commandV, debFields, dpkg, noCompilerPathDir, packageStatus } from '../helpers/dpkg';
import { exited, sleep, start, stopAll } from '../helpers/procs';
import { appDir, AppDir, childrenOf, freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { allowedSyscalls, parseUnit, serviceValue } from '../helpers/unit-file';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { safeLoadAll(text: string): unknown[] };
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = path.resolve(__dirname, '..', '..');
const LIB = '/usr/lib/premortem';
const UNIT = '/lib/systemd/system/premortem.service';
const DATA_DIR = '/var/lib/premortem';
const WANTS_LINK = '/etc/systemd/system/multi-user.target.wants/premortem.service';
const DSH_STATE = '/var/lib/systemd/deb-systemd-helper-enabled/premortem.service.dsh-also';
/** What the package puts on the system (the data directory aside). */
const INSTALLED = [LIB, '/usr/bin/premortem', UNIT, '/usr/share/doc/premortem', WANTS_LINK, DSH_STATE];
const TOKEN = 'package-test-token-0123456789abcdef';
const PROBES = ['disk', 'lifecycle', 'memory', 'pygc', 'runqlat', 'tcp'];

let release: (() => void) | undefined;
let tmp = '';
let deb = '';
let privateDirBefore = false;
let app: AppDir | undefined;
const exists = (p: string) => { try { fs.lstatSync(p); return true; } catch { return false; } };

beforeAll(async () => {
  release = await acquirePackageLock(600_000);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-pkg-'));
  fs.chmodSync(tmp, 0o755); // the unit-like run (uid 65534) reaches its data directory below
  // A copy left by an interrupted run (or an older install) goes first.
  if (packageStatus('premortem')) await dpkg(['--purge', 'premortem']);
  privateDirBefore = exists('/var/lib/private');
}, 660_000);

afterAll(async () => {
  await stopAll();
  app?.remove();
  if (packageStatus('premortem')) await dpkg(['--purge', 'premortem']).catch(() => undefined);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  release?.();
}, 240_000);

function request(port: number, urlPath: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${urlPath} timed out`))).on('error', reject);
  });
}

/** Polls an async check every 250 ms until it returns a value or the time runs out. */
async function poll<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

async function health(port: number, token: string): Promise<Obj | undefined> {
  const r = await request(port, '/api/health', token).catch(() => undefined);
  return r?.status === 200 ? JSON.parse(r.body) : undefined;
}

/** A real gunicorn (2 workers) that the agent tracks; returns its master and workers. */
async function startGunicorn(): Promise<{ port: number; workers: number[]; master: ChildProcess }> {
  app ??= appDir('pkg');
  fs.chmodSync(app.dir, 0o755);
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '2']);
  await ready(port);
  return { port, workers: await workersOf(master, 2), master };
}

/** Crashes a worker (SIGSEGV in /crash) and waits for the agent to list its post-mortem. */
async function crashAndAwaitPostMortem(gport: number, workers: number[], aport: number): Promise<Obj> {
  await get(gport, '/crash').catch(() => undefined);
  return poll(async () => {
    const r = await request(aport, '/api/incidents', TOKEN).catch(() => undefined);
    return r?.status === 200 ? (JSON.parse(r.body).incidents as Obj[]).find((i) => workers.includes(i.pid)) : undefined;
  }, 30_000, "the crashed worker's post-mortem");
}

async function stopAgent(agent: ChildProcess, pid = agent.pid!): Promise<number | null> {
  process.kill(pid, 'SIGTERM');
  return (await exited(agent, 30_000)).code;
}

test('npm run package: a .deb with the agent, the addon, production node_modules and the unit; Depends name Node >= 20 and the libraries', () => {
  const t0 = Date.now();
  const built = spawnSync('npm', ['run', '--silent', 'package'], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
  expect([built.status, built.status === 0 ? '' : built.stderr.slice(-3000)]).toEqual([0, '']);
  const out = built.stdout;
  const buildMs = Date.now() - t0;
  const printed = execFileSync('bash', ['scripts/package.sh', '--print'], { cwd: ROOT, encoding: 'utf8' });
  deb = path.join(ROOT, /^deb=(.*)$/m.exec(printed)![1]);
  expect(out.trim().split('\n').at(-1)).toBe(path.relative(ROOT, deb));
  const f = debFields(deb);
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
  expect(f).toMatchObject({ Package: 'premortem', Version: version, Architecture: 'amd64' });
  const depends = f.Depends.split(/,\s*/);
  expect(depends).toContain('nodejs (>= 20)');
  for (const lib of ['libbpf1', 'libelf1', 'zlib1g', 'libstdc++6', 'libc6']) expect(depends.some((d) => d.split(' ')[0] === lib)).toBe(true);

  const files = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8', maxBuffer: 64 << 20 })
    .split('\n').filter(Boolean).map((l) => l.split(/\s+/).slice(5).join(' ').replace(/^\.\//, '/').replace(/ -> .*$/, ''));
  for (const p of [`${LIB}/bin/premortem`, `${LIB}/dist/agent/cli.js`, `${LIB}/dist/agent/server/child.js`, `${LIB}/dist/viewer/app.js`,
    `${LIB}/dist/viewer/index.html`, `${LIB}/build/Release/premortem.node`, `${LIB}/proto/premortem.proto`, `${LIB}/package.json`,
    `${LIB}/node_modules/ws/package.json`, `${LIB}/node_modules/protobufjs/package.json`, '/usr/bin/premortem', UNIT]) {
    expect(files).toContain(p);
  }
  // Build tools and test code stay out.
  const modules = new Set(files.filter((p) => p.startsWith(`${LIB}/node_modules/`)).map((p) => {
    const parts = p.slice(`${LIB}/node_modules/`.length).split('/');
    return parts[0].startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  }));
  for (const m of ['esbuild', '@esbuild/linux-x64', 'typescript', 'jest', 'ts-jest', 'cmake-js', 'node-addon-api', 'node-api-headers', 'uplot', 'playwright-core']) expect(modules).not.toContain(m);
  expect(files.filter((p) => p.endsWith('.map') || (p.startsWith(`${LIB}/dist/`) && !/^\/usr\/lib\/premortem\/dist\/((agent|proto|viewer)\/.*)?$/.test(p)))).toEqual([]);
  console.log(`package: ${path.basename(deb)} ${(fs.statSync(deb).size / 1024).toFixed(0)} KiB, installed ${f['Installed-Size']} KiB, ` +
    `${files.length} entries, ${modules.size} npm packages; built in ${(buildMs / 1000).toFixed(1)} s; Depends: ${f.Depends}`);
}, 600_000);

test('dpkg -i installs it for real: the command on PATH, /usr/lib/premortem, the unit enabled, the data directory; an upgrade keeps data and choices', async () => {
  const t0 = Date.now();
  await dpkg(['--install', deb]);
  const installMs = Date.now() - t0;
  expect(packageStatus('premortem')).toBe('install ok installed');
  for (const p of INSTALLED) expect([p, exists(p)]).toEqual([p, true]);
  expect(fs.statSync('/usr/bin/premortem').mode & 0o111).toBeTruthy();
  expect(fs.readlinkSync(WANTS_LINK)).toBe(UNIT);
  expect(fs.statSync(DATA_DIR).mode & 0o777).toBe(0o700);
  // The unit's node is the one the Depends names, and it is new enough.
  const node = serviceValue(parseUnit(fs.readFileSync(UNIT, 'utf8')), 'ExecStart')!.split(/\s+/)[0];
  expect(node).toBe('/usr/bin/node');
  expect(Number(/^v(\d+)\./.exec(execFileSync(node, ['--version'], { encoding: 'utf8' }))![1])).toBeGreaterThanOrEqual(20);

  // An upgrade (the same .deb over itself) keeps the post-mortems and the admin's disable.
  fs.writeFileSync(path.join(DATA_DIR, 'kept-across-upgrade'), 'x');
  execFileSync('systemctl', ['disable', 'premortem.service'], { stdio: 'ignore' }); // what an admin does (works without a running systemd)
  expect(exists(WANTS_LINK)).toBe(false);
  const t1 = Date.now();
  await dpkg(['--install', deb]);
  const upgradeMs = Date.now() - t1;
  expect(packageStatus('premortem')).toBe('install ok installed');
  expect(exists(path.join(DATA_DIR, 'kept-across-upgrade'))).toBe(true);
  expect(exists(WANTS_LINK)).toBe(false);
  execFileSync('systemctl', ['enable', 'premortem.service'], { stdio: 'ignore' });
  expect(fs.readlinkSync(WANTS_LINK)).toBe(UNIT);
  console.log(`dpkg -i: ${installMs} ms; upgrade in place: ${upgradeMs} ms`);
}, 240_000);

test('the installed copy, with no compiler on PATH: doctor passes; run tracks a real gunicorn, answers the DaemonSet probe, writes a post-mortem', async () => {
  const env = { PATH: noCompilerPathDir(path.join(tmp, 'bin')), PREMORTEM_TOKEN: TOKEN, LANG: 'C.UTF-8' };
  for (const cc of ['clang', 'clang-14', 'gcc', 'cc', 'c++', 'g++', 'llc', 'ld', 'as', 'bpftool', 'make', 'cmake']) expect([cc, commandV(cc, env)]).toEqual([cc, '']);
  expect(commandV('premortem', env)).toBe(path.join(tmp, 'bin', 'premortem'));

  const doctor = spawnSync('premortem', ['doctor', '--json'], { env, cwd: '/', encoding: 'utf8', timeout: 60_000 });
  expect([doctor.status, doctor.stderr]).toEqual([0, expect.any(String)]);
  const checks = JSON.parse(doctor.stdout).checks as Obj[];
  expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
  expect(checks.find((c) => c.item === 'native addon')).toMatchObject({ status: 'ok' });

  const g = await startGunicorn();
  const port = await freePort();
  const dataDir = path.join(tmp, 'root-data');
  const agent = start('premortem', ['run', '--port', String(port), '--no-auto', '--match', app!.match.source, '--interval-ms', '500',
    '--data-dir', dataDir, '--quiet'], { env, cwd: '/' });
  let output = '';
  agent.stdout!.on('data', (d) => (output += d));
  agent.stderr!.on('data', (d) => (output += d));
  const h = await poll(async () => {
    const x = await health(port, TOKEN);
    return x && x.trackedWorkersAlive >= 2 ? x : undefined;
  }, 30_000, 'two tracked gunicorn workers').catch((e) => { throw new Error(`${(e as Error).message}; agent output: ${output.slice(-1500)}`); });
  // Every probe, and GC pauses on Debian's python through USDT, from the installed addon.
  const features = new Map((h.features as Obj[]).map((x) => [x.name, x]));
  for (const p of PROBES) expect([p, features.get(p)?.enabled]).toEqual([p, true]);
  expect(features.get('gc-usdt /usr/bin/python3.11')).toMatchObject({ enabled: true });
  const maps = fs.readFileSync(`/proc/${agent.pid}/maps`, 'utf8');
  expect(maps).toContain(`${LIB}/build/Release/premortem.node`);
  expect(maps).not.toContain(ROOT);

  // The DaemonSet's liveness probe, as the kubelet runs it in the pod (its port made this run's).
  const ds = (yaml.safeLoadAll(fs.readFileSync(path.join(ROOT, 'deploy', 'kubernetes', 'daemonset.yaml'), 'utf8')) as Obj[]).find((d) => d?.kind === 'DaemonSet')!;
  const [probeNode, , script, probePath] = ds.spec.template.spec.containers[0].livenessProbe.exec.command as string[];
  const probe = (token: string) => spawnSync(probeNode, ['-e', script.replace('port:7070', `port:${port}`), probePath],
    { env: { ...env, PREMORTEM_TOKEN: token }, timeout: 20_000 }).status;
  expect(probe(TOKEN)).toBe(0);
  expect(probe('not-the-token-0123456789')).toBe(1);

  const incident = await crashAndAwaitPostMortem(g.port, g.workers, port);
  const listed = spawnSync('premortem', ['list', '--json', '--data-dir', dataDir], { env, cwd: '/', encoding: 'utf8', timeout: 30_000 });
  expect(listed.status).toBe(0);
  expect(JSON.parse(listed.stdout).map((i: Obj) => i.id)).toContain(incident.id);
  expect(await stopAgent(agent)).toBe(0);
  console.log(`installed copy: doctor ${checks.length} checks; run tracked ${h.trackedWorkersAlive} workers; post-mortem ${incident.id} (${incident.verdictKind}) for pid ${incident.pid}`);
}, 180_000);

test('run as the unit runs it (ExecStart, its capabilities, no_new_privs), the agent makes no system call outside SystemCallFilter', async () => {
  const unit = parseUnit(fs.readFileSync(UNIT, 'utf8'));
  const allowed = allowedSyscalls(serviceValue(unit, 'SystemCallFilter')!);
  const caps = serviceValue(unit, 'AmbientCapabilities')!.split(/\s+/).map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
  expect(serviceValue(unit, 'NoNewPrivileges')).toBe('yes');
  const dataDir = path.join(tmp, 'unit-data');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.chownSync(dataDir, 65534, 65534); // 65534 stands in for the unit's DynamicUser
  const port = await freePort();
  const argv = serviceValue(unit, 'ExecStart')!.split(/\s+/).map((a) => (a === DATA_DIR ? dataDir : a));
  const g = await startGunicorn();
  const log = path.join(tmp, 'outside-filter.strace');
  // seccomp-bpf: only calls outside the allow-list stop the agent and are logged.
  const traced = start('strace', ['-f', '--seccomp-bpf', '-qq', '-e', 'signal=none', '-e', `trace=!${[...allowed].map((s) => `?${s}`).join(',')}`, '-o', log,
    'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', `--inh-caps=${caps}`, `--ambient-caps=${caps}`, '--no-new-privs',
    ...argv, '--port', String(port), '--no-auto', '--match', app!.match.source, '--interval-ms', '500', '--otlp-endpoint', 'http://127.0.0.1:9'],
  { env: { PATH: '/usr/bin:/bin', PREMORTEM_TOKEN: TOKEN, OTEL_METRIC_EXPORT_INTERVAL: '1000' }, cwd: '/' });
  let output = '';
  traced.stderr!.on('data', (d) => (output += d));
  await poll(async () => (((await health(port, TOKEN))?.trackedWorkersAlive ?? 0) >= 2 ? true : undefined), 30_000, 'two tracked workers')
    .catch((e) => { throw new Error(`${(e as Error).message}; output: ${output.slice(-1500)}`); });
  // The viewer's paths: page, bundle, metrics, a WebSocket session; then a post-mortem.
  for (const p of ['/', '/app.js', '/metrics', '/api/incidents']) expect((await request(port, p, TOKEN)).status).toBe(200);
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${TOKEN}` } });
    ws.once('message', () => ws.close());
    ws.once('close', () => resolve());
    ws.once('error', reject);
  });
  await crashAndAwaitPostMortem(g.port, g.workers, port);
  const agentPid = childrenOf(traced.pid!)[0];
  expect(fs.readFileSync(`/proc/${agentPid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m);
  expect(await stopAgent(traced, agentPid)).toBe(0);
  const outside = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  expect([...new Set(outside.map((l) => /^\d+\s+([a-z0-9_]+)\(/.exec(l)?.[1] ?? l))]).toEqual([]);
  console.log(`unit-like run (uid 65534, ${caps}): every system call inside SystemCallFilter (${allowed.size} allowed)`);
}, 180_000);

test('dpkg -r removes the files, the command, the unit and its enablement; dpkg -P also the post-mortems; nothing is left', async () => {
  fs.writeFileSync(path.join(DATA_DIR, 'kept-until-purge'), 'x');
  let t0 = Date.now();
  await dpkg(['--remove', 'premortem']);
  const removeMs = Date.now() - t0;
  for (const p of INSTALLED) expect([p, exists(p)]).toEqual([p, false]);
  expect(exists(path.join(DATA_DIR, 'kept-until-purge'))).toBe(true);
  t0 = Date.now();
  await dpkg(['--purge', 'premortem']);
  const purgeMs = Date.now() - t0;
  expect(packageStatus('premortem')).toBe('');
  for (const p of [...INSTALLED, DATA_DIR, '/var/lib/private/premortem']) expect([p, exists(p)]).toEqual([p, false]);
  expect(exists('/var/lib/private')).toBe(privateDirBefore); // systemd's, left as it was
  const leftovers = execFileSync('find', ['/etc', '/lib/systemd', '/var/lib/systemd', '/var/lib/dpkg/info', '/usr/share/doc', '-name', '*premortem*'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean);
  expect(leftovers).toEqual([]);
  console.log(`dpkg -r: ${removeMs} ms; dpkg -P: ${purgeMs} ms; nothing left`);
}, 240_000);
