/**
 * The command line as an operator meets it, through the real entry
 * (node dist/agent/cli.js, what bin/premortem runs), each case in its own
 * process:
 *   - every usage mistake exits 2, names the flag (never an internal field),
 *     prints no stack, and never starts the agent;
 *   - -V/--version, global and per-command help (-h/--help, `help CMD`);
 *   - list/show/export read a real post-mortem (a real gunicorn worker killed
 *     under the real agent), by --data-dir or PREMORTEM_DATA_DIR, with --json
 *     for show and doctor alike;
 *   - read commands change nothing in the directory (mode, stale temp files,
 *     bundles past retention all stay), and a missing or unreadable directory
 *     is a clear error with a stable code (no hang under /proc);
 *   - a closed stdout ends the command quietly (141, nothing on stderr);
 *   - --log-format json / PREMORTEM_LOG_FORMAT give one JSON object per log line.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeBundleFile } from '../../agent/store';
import { loadCodec } from '../../proto/node';
import { produceRealBundle, type RealBundle } from '../helpers/real-bundle';
import { exited, python, stopAll } from '../helpers/procs';

jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'agent', 'cli.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION = require('../../package.json').version as string;
const ENV: NodeJS.ProcessEnv = { ...process.env };
for (const k of ['PREMORTEM_DATA_DIR', 'PREMORTEM_TOKEN', 'PREMORTEM_LOG', 'PREMORTEM_LOG_FORMAT']) delete ENV[k];

let tmp: string;
let real: RealBundle;
let dataDir: string;
let id: string;

interface Result { status: number | null; stdout: string; stderr: string; raw: Buffer }

/**
 * Runs a command and collects its output. (Asynchronously: spawnSync was seen to
 * wait forever in a jest process after the real agent had run in it.)
 */
async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = ENV, timeoutMs = 20_000): Promise<Result> {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d) => (stderr += d));
  const { code } = await exited(child, timeoutMs).catch((e) => { child.kill('SIGKILL'); throw new Error(`${cmd} ${args.join(' ')}: ${(e as Error).message}`); });
  await new Promise((r) => setImmediate(r)); // the last output chunks
  const raw = Buffer.concat(out);
  return { status: code, stdout: raw.toString('utf8'), stderr, raw };
}

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => run(process.execPath, [CLI, ...args], { ...ENV, ...env });

/** Names, modes, sizes and mtimes of everything in dir, and the dir's own mode. */
function snapshot(dir: string): string {
  const entries = fs.readdirSync(dir).sort().map((f) => {
    const st = fs.statSync(path.join(dir, f));
    return `${f} ${(st.mode & 0o7777).toString(8)} ${st.size} ${st.mtimeMs}`;
  });
  return [`. ${(fs.statSync(dir).mode & 0o7777).toString(8)}`, ...entries].join('\n');
}

beforeAll(async () => {
  expect(fs.existsSync(CLI)).toBe(true); // npm test builds first
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-cli-'));
  real = await produceRealBundle('cli');
  // The real bundle, in a directory as an operator might have it: group/other-readable,
  // a temp file a dead writer left, and a bundle far past retention.
  dataDir = path.join(tmp, 'data');
  fs.mkdirSync(dataDir, { mode: 0o755 });
  fs.chmodSync(dataDir, 0o755);
  id = real.bundle.id;
  fs.writeFileSync(path.join(dataDir, `${id}.pmb`), encodeBundleFile(real.bytes), { mode: 0o600 });
  const old = { ...real.bundle, id: 'old-bundle', createdMs: Date.now() - 90 * 86_400_000, verdict: { ...real.bundle.verdict!, tMs: Date.now() - 90 * 86_400_000 } };
  fs.writeFileSync(path.join(dataDir, 'old-bundle.pmb'), encodeBundleFile(loadCodec().encodeBundle(old)), { mode: 0o600 });
  fs.writeFileSync(path.join(dataDir, '.tmp-999999999-dead'), 'half a bundle');
  // The bundle is copied: the agent that made it and its gunicorn are not needed any more.
  await real.cleanup();
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('usage errors: exit 2, the flag named, no stack, the agent never started', () => {
  const cases: Array<[string[], RegExp, NodeJS.ProcessEnv]> = [
    [['run', '--prot', '8080'], /unknown option --prot for 'run' \(did you mean --port\?\)/, {}],
    [['list', '--bogus', '3'], /unknown option --bogus for 'list'/, {}],
    [['run', '-p', 'abc'], /--pid must be an integer, got 'abc'/, {}],
    [['run', '--pid', '0'], /--pid must be an integer from 1 to 4194304, got '0'/, {}],
    [['run', '--port', '70000'], /--port must be an integer from 0 to 65535, got '70000'/, {}],
    [['run', '--port', '-5'], /--port needs a value; one starting with '-' is written --port=VALUE/, {}],
    [['run', '--port=-5'], /--port must be an integer from 0 to 65535, got '-5'/, {}],
    [['run', '--max-tracked', '1.5'], /--max-tracked must be an integer, got '1.5'/, {}],
    [['run', '--max-tracked', '9000'], /--max-tracked must be an integer from 1 to 8192/, {}],
    [['run', '--match', '('], /--match is not a valid regular expression/, {}],
    [['run', '--exclude', '[z-a]'], /--exclude is not a valid regular expression/, {}],
    [['run', '--interval-ms', '50'], /--interval-ms must be an integer from 100 to 3600000, got '50'/, {}],
    [['run', '--window-s', '7', '--interval-ms', '3000'], /--window-s \(7 s\) must be a whole number of --interval-ms \(3000 ms\) buckets/, {}],
    [['run', '--bundle-window-s', '700'], /--bundle-window-s \(700 s\) cannot exceed --window-s \(600 s\)/, {}],
    [['run', '--host', '0.0.0.0'], /--host 0.0.0.0 is not loopback: it requires a token \(--token, --token-file or PREMORTEM_TOKEN\)/, {}],
    [['run', '--no-server', '--port', '7071'], /--no-server and --port contradict each other/, {}],
    [['run', '--otlp-endpoint', 'ftp://x'], /--otlp-endpoint must be an http:\/\/ or https:\/\/ URL/, {}],
    [['run', '--disable', 'runqlat'], /--disable must be PROBE\/PROGRAM/, {}],
    [['run', 'extra'], /unexpected argument 'extra' for 'run'/, {}],
    [['show'], /'show' needs ID/, {}],
    [['show', '../../etc/passwd'], /'..\/..\/etc\/passwd' is not a post-mortem id/, {}],
    [['export', 'x', '--format', 'xml'], /--format must be one of json, pb, perfetto, html, got 'xml'/, {}],
    [['doctor', '--json=yes'], /--json takes no value/, {}],
    [['list', '--log-level', 'loud'], /--log-level must be one of debug, info, warn, error, got 'loud'/, {}],
    [['list'], /PREMORTEM_LOG \(used for --log-level\) must be one of debug, info, warn, error, got 'loud'/, { PREMORTEM_LOG: 'loud' }],
    [['frobnicate'], /unknown command 'frobnicate'/, {}],
    [['lsit'], /unknown command 'lsit' \(did you mean 'list'\?\)/, {}],
    [['--port', '7071'], /missing command before --port/, {}],
  ];
  // Every row has its three cells: a shorter row would make jest pass a `done` callback instead.
  test.each(cases)('premortem %j', async (args, message, env) => {
    const r = await cli(args, env);
    expect(r.stderr).toMatch(message);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/see 'premortem( \w+)? --help'/);
    expect(r.stderr).not.toMatch(/^\s+at /m); // no stack trace
    expect(r.stderr).not.toMatch(/intervalMs|windowMs|bundleWindowMs|maxTrackedProcesses|quotaBytes/);
    expect(r.stderr).not.toMatch(/agent started/);
    expect(r.stdout).toBe('');
  });
});

test('-V/--version and help: global, per command (-h, --help, help CMD); no command is a usage error', async () => {
  for (const args of [['-V'], ['--version'], ['list', '-V']]) {
    const r = await cli(args);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`premortem ${VERSION}\n`);
  }
  const global = await cli(['--help']);
  expect(global.status).toBe(0);
  for (const c of ['run', 'doctor', 'list', 'show', 'export']) expect(global.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  expect(global.stdout).toContain('PREMORTEM_DATA_DIR');
  expect(global.stdout).toContain('PREMORTEM_LOG_FORMAT');
  const list = await cli(['list', '--help']);
  expect(list.status).toBe(0);
  expect(list.stdout).toMatch(/^usage: premortem list \[options\]\n/);
  expect(list.stdout).toContain('--data-dir DIR');
  expect(list.stdout).not.toContain('--port');
  const run = await cli(['run', '-h']);
  expect(run.status).toBe(0);
  expect(run.stdout).toMatch(/^usage: premortem run \[options\]/);
  expect(run.stdout).toContain('-p, --pid PID');
  expect(run.stderr).toBe(''); // the agent did not start
  expect((await cli(['help', 'export'])).stdout).toMatch(/^usage: premortem export \[options\] ID/);
  expect((await cli(['show', '--help'])).stdout).toMatch(/^usage: premortem show \[options\] ID/);
  const none = await cli([]);
  expect(none.status).toBe(2);
  expect(none.stderr).toMatch(/^premortem \S+: eBPF/);
});

test('list/show/export read a real post-mortem by --data-dir or PREMORTEM_DATA_DIR; --json for show and doctor alike', async () => {
  const before = snapshot(dataDir);
  const byFlag = await cli(['list', '--data-dir', dataDir]);
  expect(byFlag.status).toBe(0);
  expect(byFlag.stdout).toContain(id);
  expect(byFlag.stdout).toMatch(/killed-by-other/);
  const env = { PREMORTEM_DATA_DIR: dataDir };
  const list = JSON.parse((await cli(['list', '--json'], env)).stdout) as Array<{ id: string; pid: number }>;
  expect(list.map((i) => i.id)).toEqual([id, 'old-bundle']); // newest first; the one past retention is still there
  expect(list[0].pid).toBe(real.workerPid);
  const show = await cli(['show', id], env);
  expect(show.status).toBe(0);
  expect(show.stdout).toMatch(/^post-mortem /);
  expect(show.stdout).toMatch(/verdict +killed-by-other/);
  const showJson = JSON.parse((await cli(['show', id, '--json'], env)).stdout);
  expect(showJson).toMatchObject({ format: 'premortem-bundle', id, verdict: { kind: 'killed-by-other' }, worker: { pid: real.workerPid } });
  expect((await cli(['export', id], env)).stdout).toBe(JSON.stringify(showJson, null, 2) + '\n');
  const pb = await cli(['export', id, '-f', 'pb'], env);
  expect(pb.status).toBe(0);
  expect(Buffer.compare(pb.raw, Buffer.from(real.bytes))).toBe(0);
  const out = path.join(tmp, 'trace.json');
  expect((await cli(['export', id, '--format', 'perfetto', '-o', out], env)).status).toBe(0);
  expect(JSON.parse(fs.readFileSync(out, 'utf8'))).toBeDefined();
  expect(fs.statSync(out).mode & 0o777).toBe(0o600);
  const missing = await cli(['show', 'no-such-bundle'], env);
  expect(missing.status).toBe(1);
  expect(missing.stderr).toMatch(/PREMORTEM_ERR_BUNDLE_NOT_FOUND/);
  // Read commands changed nothing: mode 0755 kept, the stale temp file and the old bundle still there.
  expect(snapshot(dataDir)).toBe(before);
  expect(before).toMatch(/^\. 755$/m);
  expect(before).toContain('.tmp-999999999-dead');
  const doctor = await cli(['doctor', '--json']);
  expect(doctor.status).toBe(0);
  expect(JSON.parse(doctor.stdout)).toMatchObject({ canRun: true, checks: expect.any(Array) });
});

test('a missing or unreadable directory: a stable error code, exit 1, nothing created, no hang under /proc', async () => {
  const t0 = Date.now();
  const proc = await cli(['list', '--data-dir', '/proc/1/nope']);
  expect(proc.status).toBe(1);
  expect(proc.stderr).toMatch(/^premortem: PREMORTEM_ERR_STORE_NOT_FOUND: \/proc\/1\/nope does not exist/);
  expect(Date.now() - t0).toBeLessThan(15_000); // it answered; the old recursive mkdir spun forever here
  const gone = path.join(tmp, 'never-created', 'data');
  for (const cmd of [['list'], ['show', id], ['export', id]]) {
    const r = await cli([...cmd, '--data-dir', gone]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/PREMORTEM_ERR_STORE_NOT_FOUND/);
  }
  expect(fs.existsSync(path.join(tmp, 'never-created'))).toBe(false);
  const notDir = await cli(['list', '--data-dir', path.join(dataDir, `${id}.pmb`)]);
  expect(notDir.status).toBe(1);
  expect(notDir.stderr).toMatch(/PREMORTEM_ERR_STORE_UNREADABLE: .*not a directory/);
  // A directory nobody may read, listed as nobody.
  const secret = path.join(tmp, 'secret');
  fs.mkdirSync(secret, { mode: 0o700 });
  fs.chmodSync(tmp, 0o755);
  const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, CLI, 'list', '--data-dir', secret]);
  expect(r.stderr).toMatch(/PREMORTEM_ERR_STORE_UNREADABLE: cannot read the bundle directory .*\(EACCES\)/);
  expect(r.status).toBe(1);
});

test('a closed stdout ends the command quietly: exit 141, nothing on stderr (premortem list | head)', async () => {
  // Many bundles, so that the listing is longer than a pipe holds.
  const many = path.join(tmp, 'many');
  fs.mkdirSync(many);
  const small = encodeBundleFile(loadCodec().encodeBundle({ id: 'x', createdMs: 1, worker: { pid: 1 }, service: { name: 'gunicorn app:app' },
    verdict: { kind: 'exited', tMs: 1, summary: 'exited with code 1', failure: true } }));
  for (let i = 0; i < 400; i++) fs.writeFileSync(path.join(many, `b-${String(i).padStart(4, '0')}.pmb`), small);
  // The reader is gone before the first write: deterministic EPIPE.
  const child = spawn(process.execPath, [CLI, 'list', '--data-dir', many], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const { code } = await exited(child, 30_000);
  expect(stderr).toBe('');
  expect(code).toBe(141);
  // And as a user types it.
  const shell = await run('/bin/bash', ['-c', `set -o pipefail; '${process.execPath}' '${CLI}' list --data-dir '${many}' | head -1; echo "status=\${PIPESTATUS[0]}" >&2`]);
  expect(shell.stdout.split('\n').filter(Boolean)).toHaveLength(1);
  expect(shell.stderr).toMatch(/^status=(0|141)\n$/); // nothing but the status: no EPIPE stack
});

test('--log-format json and PREMORTEM_LOG_FORMAT: one JSON object per log line on stderr; PREMORTEM_LOG sets the level', async () => {
  const target = python('import time; time.sleep(60)');
  for (const [args, env] of [[['--log-format', 'json'], { PREMORTEM_LOG: 'info' }], [[], { PREMORTEM_LOG_FORMAT: 'json', PREMORTEM_LOG: 'info' }]] as const) {
    const agent = spawn(process.execPath, [CLI, 'run', '--no-server', '--no-auto', '-p', String(target.pid), '--quiet',
      '--data-dir', path.join(tmp, 'run-data'), ...args], { env: { ...ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    agent.stderr.on('data', (d) => (err += d));
    const deadline = Date.now() + 20_000;
    while (!/agent started/.test(err) && Date.now() < deadline && agent.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    agent.kill('SIGTERM');
    const { code } = await exited(agent, 15_000);
    expect(code).toBe(0);
    const lines = err.split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    const parsed = lines.map((l) => JSON.parse(l) as { ts: string; level: string; msg: string });
    expect(parsed).toEqual(expect.arrayContaining([expect.objectContaining({ level: 'info', msg: 'agent started', ts: expect.any(String) })]));
  }
  // PREMORTEM_LOG=error: the info lines are gone.
  const quiet = spawn(process.execPath, [CLI, 'run', '--no-server', '--no-auto', '-p', String(target.pid), '--quiet', '--data-dir', path.join(tmp, 'run-data')],
    { env: { ...ENV, PREMORTEM_LOG: 'error' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let quietErr = '';
  quiet.stderr.on('data', (d) => (quietErr += d));
  await new Promise((r) => setTimeout(r, 3000));
  quiet.kill('SIGTERM');
  expect((await exited(quiet, 15_000)).code).toBe(0);
  expect(quietErr).not.toMatch(/INFO|agent started/);
});
