/**
 * The viewer in a real browser (Debian's headless chromium through
 * playwright-core, never a downloaded one) against the real agent tracing a
 * real gunicorn: live charts receive points, a real SIGSEGV becomes an
 * incident whose post-mortem says "crashed", the same bundle opens offline
 * (file input, and embedded in a self-contained page), and the connection's
 * health is shown (disconnect + reconnect, lost records, protocol mismatch).
 * Screenshots go to test/artifacts/.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runPremortem, type Running } from '../../agent/run';
import { createLogger } from '../../agent/log';
import { loadCodec } from '../../proto/node';
import { start, stopAll, sleep, waitFor, waitForAsync } from '../helpers/procs';
import { freePort } from '../helpers/services';

jest.setTimeout(85_000);

const ROOT = path.resolve(__dirname, '..', '..');
const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic'];

const APP_PY = `
import ctypes
from flask import Flask
app = Flask(__name__)

@app.route('/')
def index():
    return 'ok'

@app.route('/work')
def work():
    return str(sum(i * i for i in range(20000)))

@app.route('/crash')
def crash():
    ctypes.string_at(0)  # SIGSEGV: a real fault in the worker
    return 'unreachable'
`;

function get(url: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
  });
}

function childPids(ppid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) out.push(Number(d));
    } catch { /* exited */ }
  }
  return out;
}

let dir: string;
let running: Running;
let browser: Browser;
let page: Page;
let appPort: number;
let masterPid: number;
let crashedBundleId = '';
const pageErrors: string[] = [];

beforeAll(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // The bundle under test is the one built from the current sources.
  execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-viewer.js')], { stdio: 'pipe' });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-viewer-test-'));
  fs.writeFileSync(path.join(dir, 'app.py'), APP_PY);
  appPort = await freePort();
  const gunicorn = start('/usr/bin/gunicorn', ['-w', '2', '-b', `127.0.0.1:${appPort}`, '--chdir', dir, 'app:app'], { cwd: dir });
  masterPid = gunicorn.pid!;
  await waitFor(() => childPids(masterPid).length === 2, 15_000, 'two gunicorn workers');
  running = await runPremortem({
    port: 0, dataDir: path.join(dir, 'data'), match: new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), autoDiscover: false,
    intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, discoveryIntervalMs: 500,
  }, { logger: createLogger({ level: 'warn' }), staticDir: path.join(ROOT, 'dist', 'viewer') });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterAll(async () => {
  await browser?.close();
  await running?.stop();
  await stopAll();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Some requests so that the workers wake up and wait for a CPU now and then. */
async function load(n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, () => get(`http://127.0.0.1:${appPort}/work`).catch(() => undefined)));
}

test('live view: a real worker of the test gunicorn gets a runqueue chart that receives new points', async () => {
  await page.goto(running.url!);
  await page.waitForSelector('[data-testid="conn"][data-state="open"]', { timeout: 10_000 });
  const workers = childPids(masterPid);
  const chart = await page.waitForSelector('[data-chart="runq"][data-scope="live"]:not([data-worker=""])', { timeout: 15_000 });
  const key = (await chart.getAttribute('data-worker'))!;
  expect(workers).toContain(Number(key.split(':')[0]));
  await load(20);
  const pointsNow = async () => Number(await page.getAttribute(`[data-chart="runq"][data-worker="${key}"]`, 'data-points'));
  const before = await pointsNow();
  // Three more 500 ms intervals drawn, however long a loaded machine takes to render them.
  for (const deadline = Date.now() + 20_000; (await pointsNow()) < before + 3 && Date.now() < deadline;) await sleep(100);
  await load(20);
  const after = await pointsNow();
  expect(after).toBeGreaterThanOrEqual(before + 3);
  // The chart really drew: uPlot's canvas is there and sized.
  const canvas = await page.$(`[data-chart="runq"][data-worker="${key}"] canvas`);
  expect(canvas).not.toBeNull();
  expect((await canvas!.boundingBox())!.width).toBeGreaterThan(200);
  // Both workers and the master are listed in the sidebar.
  for (const pid of [masterPid, ...workers]) expect(await page.$(`.wk[data-worker^="${pid}:"]`)).not.toBeNull();
  await sleep(1000);
  await page.screenshot({ path: path.join(ARTIFACTS, 'viewer-live.png') });
  expect(pageErrors).toEqual([]);
});

test('a real SIGSEGV raises an incident whose post-mortem says crashed, with the frozen charts', async () => {
  await get(`http://127.0.0.1:${appPort}/crash`).catch(() => undefined); // the worker dies mid-request
  const item = await page.waitForSelector('.inc[data-verdict="crashed"]', { timeout: 15_000 });
  crashedBundleId = (await item.getAttribute('data-incident'))!;
  expect(crashedBundleId).toBeTruthy();
  // The incident also raised a toast while we were watching.
  expect(await page.$('[data-testid="toast-incident"]')).not.toBeNull();
  // Polled from node: the page's CSP forbids the eval a polling waitForFunction needs.
  await waitForAsync(async () => !((await page.textContent('.inc[data-verdict="crashed"] .inc-sub')) ?? '').includes('writing'), 10_000, 'the bundle written');
  // By selector, not the handle: the sidebar is re-rendered as incidents arrive.
  await page.click(`.inc[data-incident="${crashedBundleId}"]`);
  await page.waitForSelector('[data-view="postmortem"][data-verdict="crashed"]', { timeout: 10_000 });
  expect(await page.textContent('[data-testid="verdict"]')).toBe('Crashed');
  expect(await page.textContent('[data-testid="summary"]')).toMatch(/SIGSEGV/);
  expect(await page.textContent('[data-testid="evidence"]')).toMatch(/SIGSEGV/);
  // The dead worker's frozen runqueue chart has the buckets of its life.
  const pts = Number(await page.getAttribute('[data-scope="postmortem"][data-chart="runq"]', 'data-points'));
  expect(pts).toBeGreaterThan(3);
  expect(await page.$('[data-scope="postmortem"][data-chart="proc-rss"]')).not.toBeNull(); // sibling + master
  await sleep(800);
  await page.screenshot({ path: path.join(ARTIFACTS, 'viewer-postmortem.png'), fullPage: false });
  await page.screenshot({ path: path.join(ARTIFACTS, 'viewer-postmortem-full.png'), fullPage: true });
  expect(pageErrors).toEqual([]);
});

test('the same bundle opens offline: from a file, and embedded in a self-contained page', async () => {
  expect(crashedBundleId).toBeTruthy();
  const res = await get(`${running.url}api/incidents/${crashedBundleId}.pb`);
  expect(res.status).toBe(200);
  // File input (what drag and drop also feeds).
  await page.goto(running.url!);
  await page.waitForSelector('[data-testid="conn"][data-state="open"]');
  await page.setInputFiles('input[type=file]', { name: 'crash.pb', mimeType: 'application/x-protobuf', buffer: res.body });
  await page.waitForSelector('[data-view="postmortem"][data-verdict="crashed"]', { timeout: 10_000 });
  expect(await page.textContent('.pm-head')).toMatch(/opened from crash\.pb/);
  // A file that is not a bundle is refused with a message, not a blank page.
  await page.setInputFiles('input[type=file]', { name: 'junk.pb', mimeType: 'application/octet-stream', buffer: Buffer.from('definitely not protobuf \xff\xff\xff') });
  await page.waitForSelector('[data-testid="toast-error"]', { timeout: 5000 });

  // Embedded: app.js + app.css inlined, the bundle as base64; the page must not connect anywhere.
  const dist = path.join(ROOT, 'dist', 'viewer');
  const html = `<!doctype html><html><head><meta charset="utf-8"><style>${fs.readFileSync(path.join(dist, 'app.css'), 'utf8')}</style>
<script>${fs.readFileSync(path.join(dist, 'app.js'), 'utf8').replace(/<\/script/gi, '<\\/script')}</script></head>
<body><div id="premortem"></div><script type="application/octet-stream" id="premortem-bundle">${res.body.toString('base64')}</script></body></html>`;
  const offline = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const requests: string[] = [];
  offline.on('request', (r) => requests.push(r.url()));
  await offline.setContent(html);
  await offline.waitForSelector('[data-view="postmortem"][data-verdict="crashed"]', { timeout: 10_000 });
  expect(await offline.textContent('[data-testid="verdict"]')).toBe('Crashed');
  expect(requests.filter((u) => !u.startsWith('data:') && u !== 'about:blank')).toEqual([]);
  await offline.close();
});

test('connection health: disconnect and reconnect, lost records, protocol mismatch', async () => {
  const codec = loadCodec();
  const p = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  let connections = 0;
  let first: { close(o?: { code?: number; reason?: string }): Promise<void>; send(m: Buffer): void } | undefined;
  await p.routeWebSocket(/\/ws$/, (ws) => {
    connections++;
    ws.connectToServer(); // pass-through to the real agent
    if (connections === 1) first = ws;
  });
  await p.goto(running.url!);
  await p.waitForSelector('[data-testid="conn"][data-state="open"]', { timeout: 10_000 });
  // Lost records, as the agent reports them.
  first!.send(Buffer.from(codec.encodeServerMessage({ lost: { probe: 'all', dropped: 1234, tMs: Date.now(), droppedTotal: 1234 } })));
  await p.waitForSelector('[data-testid="lost"]', { timeout: 5000 });
  expect(await p.textContent('[data-testid="banner-lost"]')).toMatch(/1234|1\.2k/);
  // The agent goes away: the viewer says so, then reconnects by itself.
  await first!.close({ code: 1001, reason: 'going away' });
  await p.waitForSelector('[data-testid="banner-disconnected"]', { timeout: 5000 });
  await p.waitForSelector('[data-testid="conn"][data-state="open"]', { timeout: 10_000 });
  expect(connections).toBeGreaterThanOrEqual(2);
  expect(await p.$('[data-testid="banner-disconnected"]')).toBeNull();
  await p.close();

  // An agent that needs a newer viewer: the viewer stops and says what to do.
  const q = await browser.newPage();
  await q.routeWebSocket(/\/ws$/, (ws) => {
    ws.send(Buffer.from(codec.encodeServerMessage({ protocolVersion: 99, hello: { agentVersion: '9.0.0', protocolVersion: 99, minClientVersion: 99, intervalMs: 1000 } })));
  });
  await q.goto(running.url!);
  await q.waitForSelector('[data-testid="banner-incompatible"]', { timeout: 10_000 });
  expect(await q.textContent('[data-testid="banner-incompatible"]')).toMatch(/reload the page/);
  expect(await q.getAttribute('[data-testid="conn"]', 'data-state')).toBe('incompatible');
  await q.close();
});
