/**
 * A post-mortem's self-contained HTML export (the viewer's page, offline),
 * opened in Debian's headless chromium (never a downloaded one).
 */
import * as fs from 'fs';
import { pathToFileURL } from 'url';
import { chromium, type Page } from 'playwright-core';
import { exportBundle } from '../../agent/export/html';
import type { Bundle } from '../../proto/codec';

/** Writes the export of `bundle` to `file`, opens it and runs `check` on the page; the page's own errors fail the test. */
export async function withExportPage(bundle: Bundle, file: string, check: (page: Page) => Promise<void>): Promise<void> {
  fs.writeFileSync(file, exportBundle(bundle));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(file).toString());
    await check(page);
    expect(errors).toEqual([]);
  } finally {
    await browser.close();
  }
}
