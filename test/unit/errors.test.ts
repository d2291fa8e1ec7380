/**
 * The error catalogue (proto/errors.ts) is complete and current: every
 * PREMORTEM_ERR_ code the sources use is in it with what to do, none in it is
 * unused, and docs/ERRORS.md is its rendering.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ERROR_CODES } from '../../proto/errors';

const ROOT = path.resolve(__dirname, '..', '..');
const SOURCES = ['agent', 'native', 'viewer/src', 'proto', 'bin'];
const DOC = path.join(ROOT, 'docs', 'ERRORS.md');

function codesInSources(): Map<string, Set<string>> {
  const found = new Map<string, Set<string>>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|cc|h|js)$/.test(e.name) && p !== path.join(ROOT, 'proto', 'errors.ts')) {
        for (const m of fs.readFileSync(p, 'utf8').matchAll(/PREMORTEM_ERR_[A-Z0-9_]+/g)) {
          if (!found.has(m[0])) found.set(m[0], new Set());
          found.get(m[0])!.add(path.relative(ROOT, p));
        }
      }
    }
  };
  for (const d of SOURCES) walk(path.join(ROOT, d));
  return found;
}

function renderDoc(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, e]) => `| \`${code}\` | ${e.area} | ${e.means} | ${e.action} |`);
  return [
    '# Error codes',
    '',
    'Every stable code premortem gives: thrown with `.code`, sent in Error frames and JSON error bodies, printed',
    'by the CLI. Rendered from `proto/errors.ts` (`PREMORTEM_UPDATE_DOCS=1 npx jest test/unit/errors.test.ts`).',
    '',
    '| code | area | what it means | what to do |',
    '|---|---|---|---|',
    ...rows,
    '',
  ].join('\n');
}

test('every code the sources use is catalogued, and every catalogued code is used', () => {
  const used = codesInSources();
  const missing = [...used.keys()].filter((c) => !(c in ERROR_CODES)).map((c) => `${c} (${[...used.get(c)!].join(', ')})`);
  expect(missing).toEqual([]);
  expect(Object.keys(ERROR_CODES).filter((c) => !used.has(c))).toEqual([]);
  for (const e of Object.values(ERROR_CODES)) {
    expect(e.means.length).toBeGreaterThan(10);
    expect(e.action.length).toBeGreaterThan(5);
  }
});

test('docs/ERRORS.md is the catalogue, rendered', () => {
  if (process.env.PREMORTEM_UPDATE_DOCS === '1') fs.writeFileSync(DOC, renderDoc());
  expect(fs.readFileSync(DOC, 'utf8')).toBe(renderDoc());
});
