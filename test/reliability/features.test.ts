/**
 * Reliability 1: missing kernel features. One program of two probes is not
 * attached (disablePrograms, as if its tracepoint were missing) and a python
 * without USDT probes (pyenv's, built without --with-dtrace) is tracked. The
 * agent starts, /api/health, the viewer's Hello and `premortem doctor` name
 * each disabled feature and why (and, per interpreter, the GC method: USDT for
 * Debian's python, a uprobe on the collector for pyenv's), and every other
 * signal still works: the runqueue histogram of a tracked process fills (from
 * sched_switch and sched_wakeup alone), RSS and faults move, and a SIGKILL gets
 * its verdict.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../../agent/run';
import type { Death } from '../../proto/codec';
import { start, stopAll, waitFor, printed } from '../helpers/procs';
import { CLI, connect, healthOf, quietLogger } from '../soak/harness';

const DISABLED = ['runqlat/sched_wakeup_new', 'tcp/tcp_send_reset'];
const PYENV = fs.readdirSync('/root/.pyenv/versions').map((v) => `/root/.pyenv/versions/${v}/bin/python3`)
  .filter((p) => fs.existsSync(p)).map((p) => fs.realpathSync(p)).find((p) => /python3\.1[0-3]$/.test(p));
// A CPU-bound loop that also allocates: runqueue waits (two of them share one CPU), faults, RSS.
const BUSY = 'import sys\nprint("ready", flush=True)\nb=[]\nwhile True:\n  b.append(bytearray(4096))\n  if len(b) > 20000: b=[]\n';

let running: Running;
let dataDir: string;

afterAll(async () => {
  await running?.stop();
  await stopAll();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test('with two hooks disabled and a python without probes: named in health, Hello and doctor; every other signal works', async () => {
  expect(PYENV).toBeDefined();
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-rel-features-'));
  // Both pinned to CPU 0: each waits for the other.
  const noProbes = start('taskset', ['-c', '0', PYENV!, '-c', BUSY], { stdio: ['ignore', 'pipe', 'pipe'] });
  const debian = start('taskset', ['-c', '0', '/usr/bin/python3.11', '-c', BUSY], { stdio: ['ignore', 'pipe', 'pipe'] });
  await Promise.all([printed(noProbes, /ready/), printed(debian, /ready/)]);

  running = await runPremortem({ port: 0, dataDir, autoDiscover: false, pids: [noProbes.pid!, debian.pid!], intervalMs: 500,
    windowMs: 60_000, bundleWindowMs: 30_000, disablePrograms: DISABLED }, { logger: quietLogger() });
  const deaths: Death[] = [];
  running.agent.on('death', (d: Death) => deaths.push(d));

  // /api/health: each disabled program and the probe-less python, with the reason.
  const health = await healthOf(running.url!);
  const feat = (name: string) => (health.features as Array<{ name: string; enabled: boolean; reason: string }>).find((f) => f.name === name);
  expect(feat('runqlat')).toMatchObject({ enabled: true });
  expect(feat('runqlat')!.reason).toMatch(/sched_wakeup_new.*disabled/);
  expect(feat('tcp')!.reason).toMatch(/tcp_send_reset.*disabled/);
  for (const other of ['lifecycle', 'memory', 'disk']) expect(feat(other)).toMatchObject({ enabled: true, reason: '' });
  const gcPyenv = (health.features as Array<{ name: string; enabled: boolean; reason: string }>).find((f) => f.name.startsWith('gc-') && f.name.includes(path.dirname(path.dirname(PYENV!))));
  expect(gcPyenv).toMatchObject({ name: expect.stringMatching(/^gc-uprobe /), enabled: true });
  expect(gcPyenv!.reason).toMatch(/no python:gc__\* USDT probes.*uprobe on gc_collect_main/);
  expect(feat('gc-usdt /usr/bin/python3.11')).toMatchObject({ enabled: true });

  // The viewer's Hello carries the same features.
  const viewer = await connect(running.url!.replace(/^http/, 'ws') + 'ws');
  viewer.send({ subscribe: { all: true } });
  const hello = await waitFor(() => viewer.messages.find((m) => m.body === 'hello'), 5000, 'Hello');
  const names = hello.hello!.features.filter((f) => !f.enabled || f.reason).map((f) => `${f.name}: ${f.reason}`);
  expect(names.join('\n')).toMatch(/runqlat: off: tp_btf\/sched_wakeup_new/);
  expect(names.join('\n')).toMatch(/gc-uprobe \/root\/\.pyenv\/\S+: .*no python:gc__\* USDT probes/);

  // Every other signal: runqueue waits, CPU, faults, RSS for the probe-less python, in the live stream.
  const bucketsOf = (pid: number) => viewer.messages.filter((m) => m.body === 'delta').flatMap((m) => m.delta!.workers)
    .filter((w) => w.pid === pid).map((w) => w.bucket!);
  // Each signal is awaited in the bucket that must contain it, not read from the first
  // ones: CPU time and faults are deltas between two readings (a process's first
  // bucket has none), and a slow machine fills buckets later.
  const SIGNAL_MS = 20_000;
  await waitFor(() => bucketsOf(noProbes.pid!).some((b) => b.runqCount > 0 && b.runqP99Us > 0), SIGNAL_MS, 'runqueue waits of the pyenv python');
  await waitFor(() => bucketsOf(noProbes.pid!).reduce((a, x) => a + x.runqCount, 0) > 10, SIGNAL_MS, 'more than 10 runqueue waits of the pyenv python');
  await waitFor(() => bucketsOf(noProbes.pid!).some((b) => b.cpuMs > 100), SIGNAL_MS, 'CPU time of the pyenv python');
  await waitFor(() => bucketsOf(noProbes.pid!).some((b) => b.minorFaults > 0), SIGNAL_MS, 'page faults of the pyenv python');
  await waitFor(() => bucketsOf(noProbes.pid!).some((b) => b.rssBytes > 1024 * 1024), SIGNAL_MS, 'the RSS of the pyenv python');
  const b = bucketsOf(noProbes.pid!);
  const runqWaits = b.reduce((a, x) => a + x.runqCount, 0);
  // Lifecycle: a SIGKILL from this process is judged.
  process.kill(noProbes.pid!, 'SIGKILL');
  const d = await waitFor(() => deaths.find((x) => x.identity?.pid === noProbes.pid), 15_000, 'the verdict');
  expect(d.verdict).toMatchObject({ kind: 'killed-by-other', senderPid: process.pid });
  viewer.ws.terminate();
  console.log(`features: disabled ${DISABLED.join(', ')}; pyenv ${PYENV} without probes; runqueue waits seen ${runqWaits} in ${b.length} buckets`);

  // doctor --disable names them too, and the python without probes.
  let out = '';
  try {
    out = execFileSync(process.execPath, [CLI, 'doctor', '--json', ...DISABLED.flatMap((d2) => ['--disable', d2])], { env: { ...process.env, PREMORTEM_LOG: 'error' } }).toString();
  } catch (e) {
    out = (e as { stdout: Buffer }).stdout.toString(); // exit 1 is allowed; the report is what counts
  }
  const report = JSON.parse(out) as { checks: Array<{ area: string; item: string; status: string; detail: string }>; canRun: boolean };
  expect(report.canRun).toBe(true);
  const missing = report.checks.filter((c) => c.status === 'missing').map((c) => `${c.item}: ${c.detail}`);
  expect(missing).toEqual(expect.arrayContaining([
    expect.stringMatching(/runqlat: tracepoint sched_wakeup_new: disabled/),
    expect.stringMatching(/tcp: tracepoint tcp_send_reset: disabled/),
  ]));
  expect(missing).toHaveLength(2);
  expect(report.checks.find((c) => c.area === 'python' && fs.realpathSync(c.item) === PYENV)).toMatchObject({ status: 'ok', detail: expect.stringMatching(/GC pauses: uprobe/) });
}, 120_000);
