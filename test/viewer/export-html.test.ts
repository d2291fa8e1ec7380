/**
 * The self-contained HTML report (`premortem export ID --format html`) in a
 * real browser: Debian's headless chromium through playwright-core (never a
 * downloaded browser) opens the file from file://, every request is observed
 * and anything but the file itself is aborted (none may be made), and the
 * post-mortem of a real killed-by-other bundle must render: verdict, summary,
 * evidence, charts. A screenshot goes to test/artifacts/export-html.png.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { chromium, type Browser } from 'playwright-core';
import { escapeInlineScript, exportBundle } from '../../agent/export/html';
import { produceRealBundle, RealBundle } from '../helpers/real-bundle';

jest.setTimeout(50_000);

const ROOT = path.resolve(__dirname, '..', '..');
const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run', '--disable-quic'];

let tmp: string;
let real: RealBundle;
let browser: Browser;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-html-'));
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  real = await produceRealBundle('html');
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await browser?.close();
  await real?.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('</script inside inlined JavaScript cannot close the tag', () => {
  expect(escapeInlineScript('var a = "</script><b>"; var r = /<\\/SCRIPT>/;')).toBe('var a = "<\\/script><b>"; var r = /<\\/SCRIPT>/;');
  expect(escapeInlineScript('x="</ScRiPt "')).not.toMatch(/<\/script/i);
});

test('the report opens from file:// with no network, and shows the verdict and summary of a real post-mortem', async () => {
  const html = exportBundle(real.bundle);
  const file = path.join(tmp, `premortem-${real.bundle.id}.html`);
  fs.writeFileSync(file, html);
  const url = pathToFileURL(file).toString();
  // Self-contained: no reference to anything outside the file.
  expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
  expect(html.match(/<\/script/gi)).toHaveLength(2); // the app's own tag and the bundle's, nothing inside the JS

  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, offline: true });
  const requests: string[] = [];
  const blocked: string[] = [];
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u === url) return route.continue();
    blocked.push(u);
    return route.abort();
  });
  context.on('request', (r) => requests.push(r.url()));
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('websocket', (ws) => blocked.push(ws.url()));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  await page.goto(url);
  await page.waitForSelector('[data-view="postmortem"][data-verdict="killed-by-other"]', { timeout: 15_000 });
  expect(await page.getAttribute('[data-view="postmortem"]', 'data-bundle')).toBe(real.bundle.id);
  expect(await page.textContent('[data-testid="verdict"]')).toBe('Killed by another process');
  expect((await page.textContent('[data-testid="summary"]'))!.trim()).toBe(real.bundle.verdict!.summary);
  expect(await page.textContent('[data-testid="evidence"]')).toMatch(/SIGKILL/);
  expect(await page.title()).toContain(`pid ${real.workerPid}`);
  // The frozen charts have the dead worker's buckets.
  const pts = Number(await page.getAttribute('[data-scope="postmortem"][data-chart="runq"]', 'data-points'));
  expect(pts).toBeGreaterThan(2);
  await page.waitForTimeout(500);
  await page.screenshot({ path: path.join(ARTIFACTS, 'export-html.png'), fullPage: true });

  expect(blocked).toEqual([]);
  expect(requests).toEqual([url]);
  expect(pageErrors).toEqual([]);
  await context.close();
});
