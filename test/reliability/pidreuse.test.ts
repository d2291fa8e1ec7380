/**
 * Reliability 4: pid reuse. A tracked master (with follow-forks) runs a worker
 * that exits with 3, then makes the kernel hand the SAME pid to its next worker
 * (writing pid-1 to /proc/sys/kernel/ns_last_pid and forking until it gets it),
 * which exits with 7. The agent must keep two identities (pid + start ticks):
 * two worker keys, two timelines that never merge, two verdicts, two bundles.
 * Existing coverage: test/kernel/lifecycle.test.ts 'pid reuse' checks the kernel
 * filter's start-time check on a bare tracer; this one checks the agent.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../../agent/run';
import type { Death } from '../../proto/codec';
import { printed, start, stopAll, waitFor } from '../helpers/procs';
import { quietLogger } from '../soak/harness';

const TAG = `pm-pidreuse-${process.pid}`;
const MASTER = `
import os, sys, time
def worker(code):
    time.sleep(2.5)   # lives through several 500-ms buckets
    os._exit(code)
keeper = os.fork()
if keeper == 0:
    time.sleep(3600); os._exit(0)
print("ready", flush=True)
sys.stdin.readline()
a = os.fork()
if a == 0: worker(3)
os.waitpid(a, 0)
b, tries = 0, 0
while tries < 5000:
    tries += 1
    with open('/proc/sys/kernel/ns_last_pid', 'w') as f: f.write(str(a - 1))
    b = os.fork()
    if b == 0:
        if os.getpid() == a: worker(7)
        os._exit(0)
    if b == a: break
    os.waitpid(b, 0)
print("reused", a, b, tries, flush=True)
os.waitpid(b, 0)
sys.stdin.readline()
os.kill(keeper, 9)
`;

let running: Running;
let dataDir: string;
afterAll(async () => {
  await running?.stop();
  await stopAll();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

test('the same pid used by two workers: two identities, timelines never merged, two verdicts and bundles', async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-pidreuse-'));
  const master = start('/usr/bin/python3.11', ['-c', MASTER, TAG], { stdio: ['pipe', 'pipe', 'inherit'] });
  await printed(master, /ready/);
  running = await runPremortem({ port: null, dataDir, match: new RegExp(TAG), autoDiscover: false, intervalMs: 500, windowMs: 60_000,
    bundleWindowMs: 30_000, discoveryIntervalMs: 500 }, { logger: quietLogger() });
  const deaths: Death[] = [];
  const bundles: string[] = [];
  running.agent.on('death', (d: Death) => deaths.push(d));
  running.agent.on('bundle', (i: { id: string }) => bundles.push(i.id));
  await waitFor(() => running.agent.snapshot().workers.filter((w) => w.state === 'alive').length >= 2, 10_000, 'master and keeper tracked');
  master.stdin!.write('go\n');
  const line = await printed(master, /reused \d+ \d+ \d+/, 30_000);
  const [, a, b, tries] = line.split(' ').map(Number);
  expect(b).toBe(a);
  const both = await waitFor(() => { const ds = deaths.filter((d) => d.identity!.pid === a); return ds.length === 2 ? ds : undefined; }, 15_000, 'two deaths of the pid');
  const [first, second] = both.sort((x, y) => x.tMs - y.tMs);
  expect(first.identity!.startTicks).not.toBe(second.identity!.startTicks);
  expect([first.verdict!.exitCode, second.verdict!.exitCode]).toEqual([3, 7]);
  // Two timelines, each only its own life.
  const keyA = `${a}:${first.identity!.startTicks}`;
  const keyB = `${a}:${second.identity!.startTicks}`;
  const hA = running.agent.history(keyA, 0, Date.now() + 1000);
  const hB = running.agent.history(keyB, 0, Date.now() + 1000);
  expect(hA.timelines[0].identity.startTicks).toBe(first.identity!.startTicks);
  expect(hB.timelines[0].identity.startTicks).toBe(second.identity!.startTicks);
  const startBms = second.identity!.startedMs;
  expect(hA.timelines[0].buckets.every((x) => x.tMs <= first.tMs)).toBe(true);
  expect(hB.timelines[0].buckets.every((x) => x.tMs + 500 >= startBms)).toBe(true);
  expect(hA.markers.every((m) => m.startTicks === first.identity!.startTicks)).toBe(true);
  expect(hB.markers.every((m) => m.startTicks === second.identity!.startTicks)).toBe(true);
  // Two bundles (non-zero exits are failures), each about its own process.
  await waitFor(() => bundles.includes(first.bundleId) && bundles.includes(second.bundleId), 5000, 'both bundles');
  const ba = await running.store.read(first.bundleId);
  const bb = await running.store.read(second.bundleId);
  expect([ba.worker!.startTicks, ba.verdict!.exitCode]).toEqual([first.identity!.startTicks, 3]);
  expect([bb.worker!.startTicks, bb.verdict!.exitCode]).toEqual([second.identity!.startTicks, 7]);
  const deadA = ba.timelines.find((t) => t.identity!.pid === a && t.identity!.startTicks === first.identity!.startTicks)!;
  expect(deadA.buckets.every((x) => x.tMs <= first.tMs)).toBe(true);
  console.log(`pid reuse: pid ${a} reused after ${tries} forks; identities ${keyA} (exit 3, ${hA.timelines[0].buckets.length} buckets) and ${keyB} (exit 7, ${hB.timelines[0].buckets.length} buckets)`);
  master.stdin!.write('bye\n');
}, 60_000);
