/**
 * The Python stack in the post-mortem, end to end through the agent (real BPF,
 * real servers): a Debian gunicorn sync worker stuck in slow_report() past
 * --timeout, killed by its master (SIGABRT), and a plain pyenv 3.13 server stuck
 * in slow_report() killed by an operator's shell (a real bash on a pty) — the
 * bundle's stacks, the verdict's frame and sentence, the sender's role,
 * `premortem show` on the written post-mortem, and its HTML export in Debian's
 * chromium (the viewer's post-mortem page, offline).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { Bundle, Death } from '../../proto/codec';
import { useTestAgent } from '../helpers/agent';
import { withExportPage } from '../helpers/export-page';
import { exited, killGroup, printed, start, waitFor, waitForAsync } from '../helpers/procs';
import { freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { pyenvPython } from '../helpers/python';
import { FLASK_STUCK, lineOf } from '../helpers/stuck-app';

const ROOT = path.join(__dirname, '..', '..');
// Stacks at the default rate (1/s per worker): what a user runs.
const t = useTestAgent('killer-stack', { windowMs: 60_000, bundleWindowMs: 30_000 });
/** The gunicorn worker's post-mortem, for the export test. */
let timedOut: { bundle: Bundle; file: string; line: number } | undefined;

const PLAIN_STUCK = `
import sys, time
from http.server import HTTPServer, BaseHTTPRequestHandler
def slow_report():
    print("stuck", flush=True)
    time.sleep(3600)  # stuck here
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/report": slow_report()
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args): pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
`;

beforeAll(() => {
  fs.writeFileSync(path.join(t.app.dir, 'app.py'), FLASK_STUCK);
  fs.writeFileSync(path.join(t.app.dir, 'plain.py'), PLAIN_STUCK);
});

const tracked = (pid: number) => t.tracked(pid, 15_000);

async function postmortemOf(pid: number): Promise<{ d: Death; bundle: Bundle }> {
  const d = await t.deathOf(pid, 30_000);
  expect(d.bundleId).not.toBe('');
  await waitForAsync(async () => (await t.store.list()).some((i) => i.id === d.bundleId), 5000, 'the bundle on disk');
  return { d, bundle: await t.store.read(d.bundleId) };
}

const show = (id: string) => execFileSync(process.execPath, [path.join(ROOT, 'bin', 'premortem'), 'show', id, '--data-dir', t.dataDir], { encoding: 'utf8' });

test('a gunicorn sync worker (Debian python3.11) stuck in slow_report() past --timeout: the last stack, the frame in the verdict, the master and why', async () => {
  const port = await freePort();
  const errorLog = path.join(t.app.dir, 'error.log');
  const master = gunicorn(t.app, port, ['-w', '1', '--timeout', '3', '--error-logfile', errorLog]);
  await ready(port);
  const [worker] = await workersOf(master, 1);
  await tracked(worker);
  get(port, '/report', 60_000).catch(() => undefined); // answered by nothing: the worker dies
  const { d, bundle } = await postmortemOf(worker);
  const file = path.join(t.app.dir, 'app.py');
  const line = lineOf(FLASK_STUCK, 'stuck here');

  const v = d.verdict!;
  expect(v).toMatchObject({ kind: 'killed-by-master', signalName: 'SIGABRT', sender: { role: 'master', pid: master.pid, reason: 'timeout' } });
  expect(v.lastFrame).toEqual({ file, function: 'slow_report', line });
  expect(v.summary).toContain(`It was stuck in slow_report() at app.py:${line}`);
  expect(v.summary).toMatch(/its Python stack did not change for the last \d+\.\d s before the SIGABRT/);
  expect(v.summary).toContain(`WORKER TIMEOUT (pid:${worker})`);
  expect(v.evidence.filter((e) => e.what === 'master log').map((e) => e.value)).toContainEqual(expect.stringContaining(`WORKER TIMEOUT (pid:${worker})`));

  // The bundle's last stack with frames names slow_report and its line (a signal handler may sit above it).
  const stacks = bundle.stacks!;
  expect(stacks.length).toBeGreaterThanOrEqual(1);
  const main = stacks[stacks.length - 1].threads.find((t) => t.isMain)!;
  expect(main.frames).toContainEqual({ file, function: 'slow_report', line });
  expect(main.frames).toContainEqual({ file, function: 'report', line: lineOf(FLASK_STUCK, 'return slow_report') });
  expect(stacks[stacks.length - 1].pythonVersion).toMatch(/^3\.11/);
  expect(bundle.stackSampling).toMatchObject({ intervalMs: 1000, burstIntervalMs: 200 });
  expect(bundle.stackSampling!.samples).toBeGreaterThanOrEqual(2);
  expect(bundle.verdict).toEqual(v);

  const text = show(d.bundleId);
  timedOut = { bundle, file, line };
  expect(text).toContain('killer    master: its master');
  expect(text).toMatch(new RegExp(`slow_report\\(\\)\\s+${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line}`));
  expect(text).toMatch(/stack.*innermost frame first/);
  await killGroup(master);
}, 90_000);

test('a plain pyenv 3.13 server stuck in slow_report(), killed by an operator\'s shell on a pty: its stack, frame and the operator named', async () => {
  const port = await freePort();
  const server = start(pyenvPython(13), [path.join(t.app.dir, 'plain.py'), String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await ready(port);
  await tracked(server.pid!);
  get(port, '/report', 60_000).catch(() => undefined);
  await printed(server, /stuck/);
  // Stuck for 2.5 s, sampled at least twice meanwhile (one per second): its ring holds the stack for a second or more.
  const from = t.agent.stackStats()!.samples;
  const stuckAt = Date.now();
  await waitFor(() => Date.now() - stuckAt >= 2500 && t.agent.stackStats()!.samples >= from + 2, 15_000, 'two more stack samples');
  // util-linux script(1) gives bash a pseudo-terminal: a person at a keyboard, as far as the kernel can tell.
  // The shell stays a moment, as an operator's does: the agent (in this process: no blocking call
  // here) reads it when the signal record arrives.
  const shell = start('script', ['-qec', `kill -KILL ${server.pid}; sleep 1; exit 0`, '/dev/null'], { env: { ...process.env, SHELL: '/bin/bash' }, stdio: 'ignore' });
  await exited(shell);
  const { d, bundle } = await postmortemOf(server.pid!);
  const file = path.join(t.app.dir, 'plain.py');
  const line = lineOf(PLAIN_STUCK, 'stuck here');

  const v = d.verdict!;
  expect(v).toMatchObject({ kind: 'killed-by-other', signalName: 'SIGKILL', sender: { role: 'operator', comm: 'bash', readAtSignal: true } });
  expect(v.sender!.tty).toMatch(/^pts\/\d+$/);
  expect(v.sender!.ancestors[0]).toMatch(/^script\[\d+\]/);
  expect(v.summary).toContain(`The SIGKILL came from an operator's shell (bash on ${v.sender!.tty}`);
  expect(v.lastFrame).toEqual({ file, function: 'slow_report', line });
  const seen = JSON.stringify({ sampling: bundle.stackSampling, stacks: bundle.stacks!.map((x) => [x.tMs, x.threads[0]?.frames[0]]), at: v.lastFrameSinceMs, until: v.lastFrameUntilMs });
  expect([v.summary, seen]).toEqual([expect.stringContaining(`It was stuck in slow_report() at plain.py:${line}`), seen]);
  const last = bundle.stacks![bundle.stacks!.length - 1];
  expect(last.pythonVersion).toMatch(/^3\.13/);
  expect(last.threads[0].frames.slice(0, 2).map((f) => f.function)).toEqual(['slow_report', 'do_GET']);
  expect(show(d.bundleId)).toContain(`killer    operator: an operator's shell (bash on ${v.sender!.tty}`);
}, 90_000);

test('the HTML export (the viewer\'s post-mortem page) shows who sent it and the stack, the named frame marked', async () => {
  expect(timedOut).toBeDefined(); // from the gunicorn test above
  const { bundle, line } = timedOut!;
  const file = path.join(t.app.dir, `report-${bundle.id}.html`);
  await withExportPage(bundle, file, async (page) => {
    await page.waitForSelector('[data-testid="pystack"]', { timeout: 15_000 });
    expect(await page.getAttribute('[data-testid="killer"]', 'data-role')).toBe('master');
    expect(await page.textContent('[data-testid="killer"]')).toContain('timeout');
    const named = await page.$$eval('[data-testid="pystack"] li.named', (els) => els.map((e) => e.textContent));
    expect(named[0]).toContain(`slow_report() ${timedOut!.file}:${line}`);
    const first = await page.$$eval('[data-testid="pystack"] .pystack-sample:first-of-type li', (els) => els.map((e) => e.getAttribute('data-function')));
    expect(first.slice(0, 2)).toEqual(['slow_report', 'report']); // innermost first
    fs.mkdirSync(path.join(ROOT, 'test', 'artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, 'test', 'artifacts', 'postmortem-why.png'), fullPage: true });
  });
}, 60_000);
