/**
 * Line tables decoded as each real interpreter decodes them: pyenv's 3.9
 * (co_lnotab), 3.10 (PEP 626) and 3.11–3.13 (location tables) compile a
 * function with long jumps, backward jumps, multi-line expressions and blank
 * runs; Python reports the line of every instruction (dis.findlinestarts /
 * co.co_lines()) and agent/python/linetable.ts must agree on each one.
 */
import { execFileSync } from 'child_process';
import { lineOf } from '../../agent/python/linetable';
import type { LinetableFormat } from '../../agent/python/offsets';
import { pyenvPython } from '../helpers/python';

// A function whose line table needs every form: > 127-line jumps, backward jumps, long spans.
const SOURCE = [
  'def f(xs):',
  '    total = 0',
  '    for x in xs:',
  '        if x % 3 == 0:',
  '            total += (x +',
  '                      1)',
  ...Array.from({ length: 300 }, () => ''),
  '        else:',
  '            total -= x',
  '    big = [' + Array.from({ length: 200 }, (_, i) => `total + ${i}`).join(', ') + ']',
  '    try:',
  '        return total // len(xs)',
  '    except ZeroDivisionError:',
  '        return -1',
].join('\n');

const DUMP = `
import dis, json, sys
src = sys.stdin.read()
ns = {}
exec(compile(src, 'sample.py', 'exec'), ns)
co = ns['f'].__code__
if sys.version_info < (3, 10):
    tab = co.co_lnotab
    starts = list(dis.findlinestarts(co))
    out = []
    for off in range(0, len(co.co_code), 2):
        line = co.co_firstlineno
        for s, l in starts:
            if s <= off: line = l
        out.append([off, line])
else:
    tab = co.co_linetable
    out = [[off, -1 if line is None else line] for start, end, line in co.co_lines() for off in range(start, end, 2)]
print(json.dumps({'tab': tab.hex(), 'first': co.co_firstlineno, 'lines': out}))
`;

const FORMATS: Array<[number, LinetableFormat]> = [[9, 'lnotab'], [10, 'pep626'], [11, 'locations'], [12, 'locations'], [13, 'locations']];

test.each(FORMATS)('Python 3.%i (%s): every instruction gets the line the interpreter gives it', (minor, format) => {
  const out = execFileSync(pyenvPython(minor), ['-c', DUMP], { input: SOURCE }).toString();
  const { tab, first, lines } = JSON.parse(out) as { tab: string; first: number; lines: Array<[number, number]> };
  const table = Buffer.from(tab, 'hex');
  expect(lines.length).toBeGreaterThan(200);
  expect(new Set(lines.map(([, l]) => l)).size).toBeGreaterThan(6);
  // f_lasti is in bytes in 3.9, in code units in 3.10; 3.11+ index instructions in code units.
  const instr = (off: number) => (format === 'lnotab' ? off : off / 2);
  const got = lines.map(([off]) => [off, lineOf(format, table, first, instr(off))]);
  expect(got).toEqual(lines);
});

test('a table that is not one stops the walk with -1 rather than a made-up line', () => {
  expect(lineOf('locations', Buffer.from([0x01, 0x02, 0x03]), 10, 1)).toBe(-1);
  expect(lineOf('pep626', Buffer.alloc(0), 10, 4)).toBe(-1);
  expect(lineOf('locations', Buffer.alloc(0), 10, -1)).toBe(10);
});
