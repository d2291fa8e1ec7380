/**
 * The agent's malloc settings (addon tuneMalloc, issue 16): after them, 1 MiB
 * blocks (like the agent's reads of /proc/net/tcp on a host with thousands of
 * sockets) get their own mapping and leave nothing resident in the brk heap once
 * freed, even with small blocks kept between them. Without them glibc keeps the
 * 32 MiB resident here (its mmap threshold climbs after the first big free).
 * Run in a child node so that this process's malloc is left alone.
 */
import { execFileSync } from 'child_process';
import { addonPath } from '../../agent/native';

const CHILD = `
const fs = require('fs');
const heapKiB = () => { let kb = 0, inHeap = false;
  for (const l of fs.readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) inHeap = l.endsWith('[heap]'); else if (inHeap && l.startsWith('Rss:')) kb += Number(l.split(/\\s+/)[1]);
  } return kb; };
const tuned = require(process.argv[1]).tuneMalloc();
// A big block freed first: glibc's dynamic threshold would now serve 1 MiB blocks from the brk heap.
let first = Buffer.allocUnsafeSlow(2 << 20); first.fill(1); first = null; global.gc();
const before = heapKiB();
const pins = []; let bigs = [];
for (let i = 0; i < 32; i++) { const b = Buffer.allocUnsafeSlow(1 << 20); b.fill(1); bigs.push(b); pins.push(Buffer.allocUnsafeSlow(64)); }
bigs = null; global.gc();
console.log(JSON.stringify({ tuned, before, after: heapKiB(), pins: pins.length }));
`;

test('tuneMalloc: 32 x 1 MiB allocated between kept small blocks, then freed, leave the brk heap within 4 MiB of where it was', () => {
  const out = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '-e', CHILD, addonPath()], { encoding: 'utf8' })) as { tuned: boolean; before: number; after: number };
  expect(out.tuned).toBe(true);
  expect(out.after - out.before).toBeLessThan(4096);
});
