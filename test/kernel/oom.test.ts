/**
 * A real OOM kill: Python allocating steadily inside a v1 memory cgroup with
 * a 96 MiB limit. The OOM record must name the victim, its cgroup and limit,
 * classify it as a cgroup OOM, and carry the victim's memory at the kill; the
 * memory probe's last RSS must be fresh (≤ 100 ms before the kill) and near the limit.
 */
import * as fs from 'fs';
import { openTracer, TestTracer } from '../helpers/tracer';
import { exited, printed, procStartTicks, start, stopAll, waitFor } from '../helpers/procs';
import { createMemoryCgroup, TestMemoryCgroup } from '../helpers/cgroup';
import { RecordType } from '../../agent/records';
import { OomKind, SignalResult } from '../../agent/probes/lifecycle';
import { decodeRssLast } from '../../agent/probes/memory';
import { cgroupMounts, memoryCgroupOf, readMemoryCgroup } from '../../agent/cgroup/memory';

const LIMIT = 96 << 20;
const TICK_NS = 1e7;
const SI_KERNEL = 0x80;

let t: TestTracer;
let cg: TestMemoryCgroup | undefined;

beforeAll(() => {
  t = openTracer({ probes: ['lifecycle', 'memory'] });
});

afterAll(async () => {
  t?.close();
  await stopAll();
  await cg?.remove();
});

test('OOM kill in a memory cgroup: victim, cgroup, limit, memory at the kill, fresh last RSS', async () => {
  cg = createMemoryCgroup(`premortem-oom-${process.pid}`, LIMIT);
  expect(cg.limitBytes).toBe(LIMIT);
  // The shell joins the cgroup and execs Python, so everything Python
  // allocates is charged to it. 1 MiB of touched bytes every 5 ms: steady.
  const code = [
    'import sys, time',
    "print('ready', flush=True)",
    'sys.stdin.readline()',
    'chunks = []',
    'while True:',
    "    chunks.append(b'\\x01' * (1 << 20))",
    '    time.sleep(0.005)',
  ].join('\n');
  const child = start('/bin/sh', ['-c', `echo $$ > ${cg.dir}/cgroup.procs && exec /usr/bin/python3.11 -c "$0"`, code],
    { stdio: ['pipe', 'pipe', 'pipe'] });
  await printed(child, /ready/);
  const pid = child.pid!;
  const ticks = procStartTicks(pid);
  t.tracer.track(pid, ticks * TICK_NS, 0);
  const before = memoryCgroupOf(pid)!;
  expect(before).toMatchObject({ version: 1, path: cg.path, id: cg.id, limitBytes: LIMIT });
  expect(before.events.oomKill).toBe(0);

  child.stdin!.write('go\n');
  expect(await exited(child, 20000)).toEqual({ code: null, signal: 'SIGKILL' });
  const oom = await waitFor(() => t.ofType(RecordType.Oom).find((r) => r.pid === pid), 3000, 'OOM record');

  expect(oom.tid).toBe(pid);
  expect(oom.comm).toBe('python3.11');
  expect(Math.floor(oom.startNs / TICK_NS)).toBe(ticks);
  expect(oom.uid).toBe(0);
  expect(oom.oomScoreAdj).toBe(0);
  expect(oom.tracked).toBe(true);
  expect(oom.triggerPid).toBe(pid); // its own allocation hit the limit
  expect(oom.triggerComm).toBe('python3.11');
  expect(oom.kind).toBe(OomKind.Cgroup);
  expect(oom.oomLevel).toBe(0);
  expect(oom.cgroupId).toBe(cg.id);
  expect(oom.oomCgroupId).toBe(cg.id);
  expect(oom.memcgId).toBeGreaterThan(0);
  expect(oom.memcgLimitBytes).toBe(LIMIT);
  expect(oom.oomLimitBytes).toBe(LIMIT);
  expect(oom.memcgUsageBytes).toBeLessThanOrEqual(LIMIT);
  expect(oom.memcgUsageBytes).toBeGreaterThan(LIMIT - (4 << 20));
  expect(oom.oomUsageBytes).toBe(oom.memcgUsageBytes);
  // The OOM and the kill are both counted before mark_victim fires.
  expect(oom.memcgOomEvents).toBe(1);
  expect(oom.memcgOomKills).toBe(1);
  // Memory of the victim at the kill: nearly all of the limit is its anonymous memory.
  const rssAtKill = oom.rssAnonBytes + oom.rssFileBytes + oom.rssShmemBytes;
  expect(Math.abs(oom.rssAnonBytes - LIMIT) / LIMIT).toBeLessThan(0.05);
  expect(rssAtKill).toBeGreaterThan(oom.rssAnonBytes);
  expect(oom.rssSwapBytes).toBe(0);
  expect(oom.rssShmemBytes).toBe(0);
  expect(oom.totalVmBytes).toBeGreaterThan(rssAtKill);

  // The kill itself: a kernel-generated SIGKILL to the group, just before mark_victim.
  const sigs = t.ofType(RecordType.Signal).filter((s) => s.pid === pid);
  expect(sigs).toHaveLength(1);
  expect(sigs[0]).toMatchObject({ sig: 9, kernel: true, siCode: SI_KERNEL, group: true, senderPid: pid, result: SignalResult.Delivered });
  expect(sigs[0].tsNs).toBeLessThanOrEqual(oom.tsNs);

  const exit = await waitFor(() => t.ofType(RecordType.Exit).find((r) => r.pid === pid && r.groupDead), 3000, 'exit record');
  expect(exit.termSignal).toBe(9);
  expect(exit.startNs).toBe(oom.startNs);
  expect(exit.tsNs).toBeGreaterThan(oom.tsNs);

  // The last RSS the memory probe kept: written before the exit and within a
  // few percent of the limit (the reaper and exit_mmap, which run without the
  // victim's mm as current->mm, do not overwrite it). The victim's fault in
  // flight may still complete after mark_victim (a dying task's charge is let
  // through), so the last write can follow the OOM record by a little. Fresh by
  // what it holds, not by how long ago: reclaim at the limit can stall the victim.
  const buf = t.tracer.mapLookup('memory', 'rss_last', pid);
  expect(buf).not.toBeNull();
  const last = decodeRssLast(buf!);
  expect(last.startNs).toBe(oom.startNs);
  expect(last.tsNs).toBeLessThanOrEqual(exit.tsNs);
  expect(Math.abs(last.anonBytes - LIMIT) / LIMIT).toBeLessThan(0.05);
  expect(Math.abs(last.anonBytes - oom.rssAnonBytes) / LIMIT).toBeLessThan(0.02);
  expect(last.peakBytes).toBeGreaterThanOrEqual(last.anonBytes);

  // The cgroup files agree (read by agent/cgroup.ts): one OOM kill, the limit unchanged.
  const after = readMemoryCgroup(1, cgroupMounts().v1Memory!, cg.path)!;
  expect(after).toMatchObject({ id: cg.id, limitBytes: LIMIT });
  expect(after.events.oomKill).toBe(1);
  expect(after.events.max).toBeGreaterThan(0); // failcnt: charges refused at the limit

  await cg.remove();
  expect(fs.existsSync(cg.dir)).toBe(false);
  cg = undefined;
});
