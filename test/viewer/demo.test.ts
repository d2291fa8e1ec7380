/**
 * `npm run demo` end to end: the real CLI (dist/bench/demo/demo.js) runs for a
 * bounded time; within it at least two post-mortems with different verdicts
 * are written, the viewer shows them (screenshots for the README), and when
 * it stops every process it started is gone and its cgroups are removed.
 */
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { chromium, type Browser } from 'playwright-core';
import { exited, sleep, waitFor } from '../helpers/procs';

jest.setTimeout(88_000);

const ROOT = path.resolve(__dirname, '..', '..');
const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');
const DOCS = path.join(ROOT, 'docs');
/** The README's screenshots are refreshed only when asked: PREMORTEM_UPDATE_DOCS=1 npx jest test/viewer/demo.test.ts */
const UPDATE_DOCS = process.env.PREMORTEM_UPDATE_DOCS === '1';
const DURATION_S = 45;
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic'];

function getJson<T>(url: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => { try { resolve(JSON.parse(body) as T); } catch (e) { reject(e); } });
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

let demo: ChildProcess | undefined;
let browser: Browser | undefined;
let dataDir: string;

afterAll(async () => {
  await browser?.close();
  if (demo?.pid && demo.exitCode === null && demo.signalCode === null) {
    process.kill(demo.pid, 'SIGTERM'); // the demo cleans up after itself on SIGTERM
    await exited(demo, 15_000).catch(() => { try { process.kill(demo!.pid!, 'SIGKILL'); } catch { /* gone */ } });
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
});

test(`the demo shows two post-mortems with different verdicts within ${DURATION_S} s and leaves nothing behind`, async () => {
  const script = path.join(ROOT, 'dist', 'bench', 'demo', 'demo.js');
  expect(fs.existsSync(script)).toBe(true); // built by npm test / npm run build
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.mkdirSync(DOCS, { recursive: true });
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-demo-test-'));
  demo = spawn(process.execPath, [script, '--port', '0', '--duration', String(DURATION_S), '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  demo.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  demo.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const url = (await waitFor(() => /\[demo\] viewer: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], 30_000, 'the demo to print its URL'));
  const pidsLine = await waitFor(() => /\[demo\] pids: ([\d ]+); cgroups: (.+)/.exec(out), 10_000, 'the demo to print its pids');
  const started = pidsLine[1].trim().split(/\s+/).map(Number);
  const cgroups = pidsLine[2].trim().split(/\s+/);
  expect(started.length).toBeGreaterThanOrEqual(4); // 2 masters, 2 hogs (+ workers)
  for (const cg of cgroups) expect(fs.existsSync(cg)).toBe(true);

  // Live view of the leaking service while memory climbs toward its limit.
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  await page.goto(url);
  await page.waitForSelector('[data-testid="conn"][data-state="open"]', { timeout: 10_000 });
  // Toasts announce deaths as they happen; the README screenshots show what is under them.
  const dismissToasts = () => page.evaluate("document.querySelectorAll('.toast').forEach((t) => t.remove())");
  const seen = new Set<number>(started);
  const collect = () => { for (const cg of cgroups) { try { for (const p of fs.readFileSync(path.join(cg, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) seen.add(Number(p)); } catch { /* gone */ } } };
  collect();
  await sleep(12_000);
  collect();
  await page.click('.svc[data-service^="gunicorn-"] .svc-head >> text=ingest:app');
  await sleep(1500);
  await dismissToasts();
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-live-ingest.png') });
  await page.click('.svc .svc-head >> text=api:app');
  await sleep(1500);
  await dismissToasts();
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-live-api.png') });

  // Two post-mortems with different verdicts.
  type Inc = { id: string; verdictKind: string };
  let incidents: Inc[] = [];
  const deadline = Date.now() + (DURATION_S - 10) * 1000;
  while (Date.now() < deadline) {
    collect();
    incidents = (await getJson<{ incidents: Inc[] }>(`${url}api/incidents`)).incidents;
    if (new Set(incidents.map((i) => i.verdictKind)).size >= 2) break;
    await sleep(1000);
  }
  const kinds = new Set(incidents.map((i) => i.verdictKind));
  expect(kinds.size).toBeGreaterThanOrEqual(2);
  expect(kinds.has('oom-killed') || kinds.has('killed-by-master')).toBe(true);
  // ...and on disk, in the data directory.
  expect(fs.readdirSync(dataDir).filter((f) => f.endsWith('.pmb')).length).toBeGreaterThanOrEqual(2);
  await sleep(2000);
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-live-incidents.png') });
  if (UPDATE_DOCS) fs.copyFileSync(path.join(ARTIFACTS, 'demo-live-ingest.png'), path.join(DOCS, 'screenshot-live.png'));

  const oom = incidents.find((i) => i.verdictKind === 'oom-killed') ?? incidents[0];
  await page.click(`.inc[data-incident="${oom.id}"]`);
  await page.waitForSelector(`[data-view="postmortem"][data-verdict="${oom.verdictKind}"]`, { timeout: 10_000 });
  await sleep(1000);
  await dismissToasts();
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-postmortem.png') });
  if (UPDATE_DOCS) fs.copyFileSync(path.join(ARTIFACTS, 'demo-postmortem.png'), path.join(DOCS, 'screenshot-postmortem.png'));
  await browser.close();
  browser = undefined;

  // The demo stops by itself (--duration) and cleans up.
  collect();
  const { code } = await exited(demo, (DURATION_S + 20) * 1000);
  expect(code).toBe(0);
  expect(out).toMatch(/cleaned up/);
  const left = [...seen].filter(alive);
  expect(left).toEqual([]);
  for (const cg of cgroups) expect(fs.existsSync(cg)).toBe(false);
});
