/**
 * Where the last seconds went, end to end: a real gunicorn sync worker serving
 * a request that reads a real slow disk (a loop device whose backing reads are
 * throttled by blkio) past gunicorn's --timeout is killed by its master; the
 * post-mortem accounts its last --timeout seconds (blocked on disk I/O, the
 * device named) and names the request it was serving, query string dropped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { formatBundle } from '../../agent/cli/format';
import { useTestAgent } from '../helpers/agent';
import { withExportPage } from '../helpers/export-page';
import { killGroup, waitFor } from '../helpers/procs';
import { freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { createSlowDisk, SlowDisk } from '../helpers/slow-disk';

const TIMEOUT_S = 4;
const harness = useTestAgent('whydisk', { windowMs: 60_000, bundleWindowMs: 30_000 });
let disk: SlowDisk;

beforeAll(async () => {
  disk = createSlowDisk('whydisk', { iops: 5 });
  // A report that reads the slow device block by block (O_DIRECT: every read reaches it).
  fs.writeFileSync(path.join(harness.app.dir, 'app.py'), `
import mmap, os
from flask import Flask
app = Flask(__name__)

@app.route("/")
def index():
    return "ok"

@app.route("/report")
def report():
    fd = os.open(${JSON.stringify(disk.device)}, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 4096)
    for i in range(100000):
        os.preadv(fd, [buf], (i % 4096) * 4096)
    return "done"
`);
});

afterAll(async () => {
  await disk?.remove();
});

test('a sync worker blocked on slow disk reads past --timeout: its last seconds blocked on the device, the request named', async () => {
  const port = await freePort();
  const master = gunicorn(harness.app, port, ['-w', '1', '--timeout', String(TIMEOUT_S)], { prefix: disk.cgroup.prefix });
  await ready(port);
  const [worker] = await workersOf(master, 1);
  await harness.tracked(worker);
  await new Promise((r) => setTimeout(r, 1000)); // a tick or two of timeline before the request
  const request = get(port, '/report?customer=4242', 30_000).catch((e: Error) => e);
  const d = await harness.deathOf(worker, 30_000);
  await request;
  const v = d.verdict!;
  expect(v.kind).toBe('killed-by-master');

  // The window is gunicorn's own timeout, read from the master's command line.
  const t = v.timeBreakdown!;
  expect(t).toBeDefined();
  expect(t.windowSource).toBe(`gunicorn --timeout ${TIMEOUT_S}`);
  expect(t.windowMs).toBe(TIMEOUT_S * 1000);
  // Most of it blocked in D state in a read, on the slow device (a single-threaded sync worker).
  const total = Object.values(t.total!).reduce((a, b) => a + b, 0);
  expect(total).toBeGreaterThan(0.8 * t.windowMs * 1e6);
  expect(total).toBeLessThanOrEqual(1.02 * t.windowMs * 1e6 * Math.max(1, t.threads));
  expect(t.total!.blockedIoNs).toBeGreaterThan(0.5 * t.windowMs * 1e6);
  expect(t.blockedDevice).toBe(disk.name);
  expect(t.blockedSyscall).toMatch(/^preadv2?$/);
  expect(t.bioOps).toBeGreaterThan(3);
  expect(t.bioLatMaxUs).toBeGreaterThanOrEqual(50_000);

  // The request it was serving, its query string dropped in the kernel, older than the timeout.
  expect(v.requestsInFlight).toHaveLength(1);
  const r = v.requestsInFlight![0];
  expect(r).toMatchObject({ method: 'GET', path: '/report', protocol: 'HTTP/1.1', queryDropped: true, tid: worker });
  expect(r.ageMs).toBeGreaterThanOrEqual(TIMEOUT_S * 1000);
  expect(r.ageMs).toBeLessThan(30_000);

  // The summary says it, after what killed it.
  expect(v.summary).toMatch(new RegExp(`Of its last ${TIMEOUT_S} s, \\d+\\.\\d s blocked on disk I/O \\(${disk.name}, \\d+ reads, longest \\d+\\.\\d s, in preadv2?\\(\\)\\)`));
  expect(v.summary).toMatch(/GET \/report was running for \d+\.\d s\./);
  expect(v.summary).not.toMatch(/customer/);

  // The bundle holds the same, and `premortem show` prints it.
  await waitFor(async () => d.bundleId && (await harness.store.list()).some((i) => i.id === d.bundleId), 5000, 'the bundle');
  const bundle = await harness.store.read(d.bundleId);
  expect(bundle.verdict!.timeBreakdown).toEqual(t);
  expect(bundle.verdict!.requestsInFlight).toEqual(v.requestsInFlight);
  const text = formatBundle(bundle);
  expect(text).toMatch(new RegExp(`blocked \\(D state\\)\\s+\\d+\\.\\d s .*${disk.name}`));
  expect(text).toMatch(/requests in flight \(1\)\n\s+GET \/report \(query dropped\)\s+HTTP\/1\.1/);
  await killGroup(master);

  // The post-mortem page (here the self-contained HTML export, offline in a real browser) shows both.
  const file = path.join(harness.dataDir, 'report.html');
  await withExportPage(bundle, file, async (page) => {
    await page.waitForSelector('[data-testid="why-time"]', { timeout: 15_000 });
    const blocked = await page.textContent('[data-testid="why-time"] tr[data-class="blockedIoNs"]');
    expect(blocked).toMatch(new RegExp(`blocked \\(D state\\)\\d+\\.\\d s\\d+ %${disk.name}, \\d+ block requests`));
    expect(Number(await page.getAttribute('[data-testid="why-bar"] [data-class="blockedIoNs"]', 'style').then((st) => /width:([\d.]+)%/.exec(st ?? '')?.[1]))).toBeGreaterThan(50);
    expect(await page.textContent('[data-testid="request"]')).toMatch(/^GET \/reportHTTP\/1\.1 · query droppedrunning \d+\.\d s/);
    fs.mkdirSync(path.join(__dirname, '..', 'artifacts'), { recursive: true });
    await page.screenshot({ path: path.join(__dirname, '..', 'artifacts', 'why-postmortem.png'), fullPage: false });
  });
}, 90_000);
