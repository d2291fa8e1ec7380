/**
 * The agent against real services: real gunicorn and uvicorn workers on
 * 127.0.0.1, real kernel probes, real failures. Each death must yield one
 * verdict with its evidence, and failures one bundle on disk promptly (the
 * latencies from death to bundle are printed).
 */
import * as fs from 'fs';
import { killGroup, sleep, waitFor } from '../helpers/procs';
import { childrenOf, freePort, get, gunicorn, ready, uvicorn, workersOf } from '../helpers/services';
import { createMemoryCgroup, TestMemoryCgroup } from '../helpers/cgroup';
import { useTestAgent } from '../helpers/agent';
import type { Death } from '../../proto/codec';

const MiB = 1024 * 1024;
const t = useTestAgent('agent');
const { deaths, bundles } = t;
const bundleLatenciesMs: number[] = [];
const cgroups: TestMemoryCgroup[] = [];

afterAll(async () => {
  console.log(`death to bundle on disk: ${bundleLatenciesMs.join(', ')} ms`);
  for (const cg of cgroups) await cg.remove();
});

const deathOf = (pid: number, timeoutMs = 15000) => t.deathOf(pid, timeoutMs);
const tracked = (pid: number) => t.tracked(pid);

/**
 * The death's bundle: written, listed, and promptly: ~0.3 s after the death here,
 * under 2 s on an idle machine; the bound is 10 s because a machine with both cores
 * busy delays the judge's timer and the write (2.1 s seen), not because of a wait.
 */
async function bundleOf(d: Death) {
  const b = await waitFor(() => bundles.find((x) => x.incident.id === d.bundleId), 15_000, `the bundle of pid ${d.identity?.pid}`);
  bundleLatenciesMs.push(b.atMs - d.tMs);
  expect(b.atMs - d.tMs).toBeLessThan(10_000);
  expect((await t.store.list()).filter((i) => i.pid === d.identity!.pid && i.startTicks === d.identity!.startTicks)).toHaveLength(1);
  return t.store.read(d.bundleId);
}

test('a worker leaking memory in a memory cgroup: oom-killed, RSS rising, limit recorded, time-to-limit marker first', async () => {
  const limit = 192 * MiB;
  const cg = createMemoryCgroup(`premortem-test-agent-${process.pid}`, limit);
  cgroups.push(cg);
  const port = await freePort();
  const master = gunicorn(t.app, port, ['-w', '1', '--timeout', '60'], {
    prefix: ['sh', '-c', `echo $$ > ${cg.dir}/cgroup.procs && exec "$@"`, 'sh'],
  });
  await ready(port);
  const [worker] = await workersOf(master, 1);
  await tracked(worker);
  await sleep(1500); // a few buckets of calm before the leak

  // ~24 MiB/s: the limit is reached in a few seconds, slowly enough to be seen coming.
  for (let i = 0; i < 60; i++) {
    const r = await get(port, '/leak/6').catch(() => undefined);
    if (!r || r.status !== 200) break;
    await sleep(250);
  }
  const d = await deathOf(worker);
  expect(d.verdict).toMatchObject({ kind: 'oom-killed', oomScope: 'cgroup', failure: true });
  expect(d.verdict!.limitBytes).toBe(limit);
  expect(d.verdict!.cgroupPath).toBe(cg.path);
  expect(d.verdict!.summary).toMatch(new RegExp(`OOM-killed pid ${worker}`));

  const bundle = await bundleOf(d);
  expect(bundle.verdict!.kind).toBe('oom-killed');
  expect(bundle.cgroupLimits?.memoryMaxBytes).toBe(limit);
  expect(bundle.cgroupLimits?.path).toBe(cg.path);
  const mine = bundle.timelines[0];
  expect(mine.identity!.pid).toBe(worker);
  const last30 = mine.buckets.filter((b) => b.tMs >= d.tMs - 30_000 && b.rssBytes > 0);
  expect(last30.length).toBeGreaterThan(5);
  expect(last30[last30.length - 1].rssBytes).toBeGreaterThan(2 * last30[0].rssBytes);
  expect(last30[last30.length - 1].rssBytes).toBeGreaterThan(0.6 * limit);
  expect(last30.some((b) => b.cgroupLimitBytes === limit)).toBe(true);
  const warn = bundle.markers.find((m) => m.kind === 'memory-near-limit' && m.pid === worker);
  expect(warn).toBeDefined();
  expect(warn!.tMs).toBeLessThan(d.tMs);
  expect(warn!.numbers.limitBytes).toBe(limit);
  expect(bundle.markers.some((m) => m.kind === 'oom' && m.pid === worker)).toBe(true);
  // The master's timeline is in the bundle too.
  expect(bundle.timelines.some((t) => t.identity!.pid === master.pid && t.identity!.role === 'master')).toBe(true);
  await killGroup(master);
});

test('gunicorn --timeout 2 and a handler that blocks: killed-by-master, sender = the master', async () => {
  const port = await freePort();
  const master = gunicorn(t.app, port, ['-w', '1', '--timeout', '2', '--graceful-timeout', '1']);
  await ready(port);
  const [worker] = await workersOf(master, 1);
  await tracked(worker);
  await get(port, '/block/30', 20000).catch(() => undefined);
  const d = await deathOf(worker);
  expect(d.verdict).toMatchObject({ kind: 'killed-by-master', senderPid: master.pid, failure: true });
  expect(['SIGABRT', 'SIGKILL']).toContain(d.verdict!.signalName);
  const bundle = await bundleOf(d);
  expect(bundle.verdict!.evidence.some((e) => e.what === 'signal sender' && e.value.includes(String(master.pid)))).toBe(true);
  expect(bundle.markers.some((m) => m.kind === 'signal' && m.pid === worker && m.numbers.senderPid === master.pid)).toBe(true);
  // The master replaces it: a new worker of the next generation is tracked from its fork.
  const [next] = await waitFor(() => {
    const kids = fs.readFileSync(`/proc/${master.pid}/task/${master.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number).filter((p) => p !== worker);
    return kids.length ? kids : undefined;
  }, 10000, 'the replacement worker');
  await tracked(next);
  const replacement = t.agent.snapshot().workers.find((w) => w.identity?.pid === next)!;
  expect(replacement.identity!.generation).toBe(1);
  await killGroup(master);
});

test('a worker that crashes with SIGSEGV: crashed', async () => {
  const port = await freePort();
  const master = gunicorn(t.app, port, ['-w', '1']);
  await ready(port);
  const [worker] = await workersOf(master, 1);
  await tracked(worker);
  await get(port, '/crash').catch(() => undefined);
  const d = await deathOf(worker);
  expect(d.verdict).toMatchObject({ kind: 'crashed', signalName: 'SIGSEGV', failure: true });
  const bundle = await bundleOf(d);
  expect(bundle.verdict!.summary).toMatch(/crashed with SIGSEGV/);
  await killGroup(master);
});

test('gunicorn --max-requests 5 under load: exited (recycled), not a failure, no bundle', async () => {
  const port = await freePort();
  const master = gunicorn(t.app, port, ['-w', '2', '--max-requests', '5']);
  await ready(port);
  const first = await workersOf(master, 2);
  await Promise.all(first.map(tracked));
  const before = (await t.store.list()).length;
  // Requests until both first-generation workers have served their 5: which worker
  // accepts each one is up to the kernel, so a fixed count may leave one short.
  const firstDeaths = () => deaths.filter((d) => first.includes(d.identity!.pid));
  for (let i = 0; i < 400 && firstDeaths().length < 2; i++) await get(port, '/').catch(() => undefined);
  const recycled = await waitFor(() => {
    const ds = firstDeaths();
    return ds.length === 2 ? ds : undefined;
  }, 15000, 'both first-generation workers to be recycled');
  for (const d of recycled) {
    expect(d.verdict).toMatchObject({ kind: 'exited', exitCode: 0, failure: false });
    expect(d.bundleId).toBe('');
  }
  await sleep(300);
  expect((await t.store.list()).length).toBe(before);
  await killGroup(master);
});

test('uvicorn --workers 2: both workers found; a worker killed by another process is killed-by-other', async () => {
  const port = await freePort();
  const master = uvicorn(t.app, port, ['--workers', '2']);
  await ready(port);
  // uvicorn's children: two spawned workers and multiprocessing's resource tracker (not a worker).
  const workers = (await waitFor(() => {
    const w = childrenOf(master.pid!).filter((p) => /spawn_main/.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8')));
    return w.length === 2 ? w : undefined;
  }, 20000, 'two uvicorn workers'));
  await Promise.all(workers.map(tracked));
  // Listening ports are read from /proc at each discovery pass.
  const svc = await waitFor(() => t.agent.snapshot().services.find((s) => s.masterPid === master.pid && s.ports.includes(port)), 5000, 'the service and its port');
  expect(svc.kind).toBe('uvicorn');
  const roles = t.agent.snapshot().workers.filter((w) => w.identity?.serviceId === svc.id && w.state === 'alive').map((w) => w.identity!.role).sort();
  expect(roles).toEqual(['master', 'worker', 'worker']);

  process.kill(workers[0], 'SIGKILL');
  const d = await deathOf(workers[0]);
  expect(d.verdict).toMatchObject({ kind: 'killed-by-other', senderPid: process.pid, signalName: 'SIGKILL' });
  await bundleOf(d);
  await killGroup(master);
});

test('GC pauses of a gunicorn worker on an interpreter with USDT probes reach its timeline', async () => {
  const port = await freePort();
  const master = gunicorn(t.app, port, ['-w', '1']);
  await ready(port);
  const [worker] = await workersOf(master, 1);
  await tracked(worker);
  expect(t.agent.features().some((f) => f.name.startsWith('gc-usdt /usr/bin/python3') && f.enabled)).toBe(true);
  for (let i = 0; i < 3; i++) expect((await get(port, '/gc')).status).toBe(200);
  const key = t.agent.snapshot().workers.find((w) => w.identity?.pid === worker)!;
  const buckets = await waitFor(() => {
    const b = t.agent.history(`${worker}:${key.identity!.startTicks}`, 0, Infinity).timelines[0]?.buckets ?? [];
    return b.reduce((n, x) => n + x.gcPauses, 0) >= 3 ? b : undefined;
  }, 5000, 'GC pauses in the timeline');
  const paused = buckets.filter((b) => b.gcPauses > 0);
  expect(Math.max(...paused.map((b) => b.gcMaxPauseNs))).toBeGreaterThan(100_000); // a 200k-cycle collection takes > 0.1 ms
  await killGroup(master);
});

test('the agent keeps its memory within the documented bound', () => {
  const h = t.agent.health();
  expect(h.memory.timelineBytes).toBeLessThan(h.trackedProcesses * 250 * 1024 + 1024 * 1024);
  expect(h.errors).toEqual({});
});
