/**
 * An OOM post-mortem names the cgroup the kernel acted in — the same one in
 * the summary, the evidence, the verdict and the bundle's facts — whichever
 * server ran the worker and wherever in the hierarchy the limit sits. (A dying
 * task's /proc shows the root cgroup: read too late, it named "/".)
 */
import type { BundleStore } from '../../agent/store';
import type { Death } from '../../proto/codec';
import { killGroup, sleep, start } from '../helpers/procs';
import { freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { createCgroup, createMemoryCgroup, TestCgroup } from '../helpers/cgroup';
import { useTestAgent } from '../helpers/agent';

const MiB = 1024 * 1024;
const t = useTestAgent('oomcg', { windowMs: 60_000, bundleWindowMs: 30_000 });
const cgroups: TestCgroup[] = [];

afterAll(async () => {
  for (const cg of cgroups.reverse()) await cg.remove();
});

/** Leaks in the worker until it is OOM-killed; returns its judged death and bundle. */
async function leakUntilKilled(port: number, worker: number) {
  await t.tracked(worker);
  await sleep(1000);
  for (let i = 0; i < 80; i++) {
    const r = await get(port, '/leak/8').catch(() => undefined);
    if (!r || r.status !== 200) break;
    await sleep(100);
  }
  const d = await t.deathOf(worker);
  const { bundle } = await t.bundleOf(worker);
  return { d, bundle };
}

function expectNamed(d: Death, bundle: Awaited<ReturnType<BundleStore['read']>>, cgPath: string, limit: number) {
  expect(d.verdict).toMatchObject({ kind: 'oom-killed', oomScope: 'cgroup', cgroupPath: cgPath, limitBytes: limit });
  expect(d.verdict!.summary).toContain(`the cgroup ${cgPath} limit is ${limit / MiB} MiB`);
  expect(d.verdict!.evidence.find((e) => e.what === 'oom cgroup')?.value).toBe(cgPath);
  expect(bundle.cgroupLimits).toMatchObject({ path: cgPath, memoryMaxBytes: limit });
}

test('uWSGI worker OOM-killed in its memory cgroup: summary, evidence and facts name that cgroup', async () => {
  const limit = 160 * MiB;
  const cg = createMemoryCgroup(`pm-oomcg-uwsgi-${process.pid}`, limit);
  cgroups.push(cg);
  const port = await freePort();
  const master = start(cg.prefix[0], [...cg.prefix.slice(1), '/usr/bin/uwsgi', '--plugin', 'python3', '--master', '--processes', '1',
    '--http-socket', `127.0.0.1:${port}`, '--chdir', t.app.dir, '--wsgi-file', 'app.py', '--callable', 'app', '--disable-logging']);
  await ready(port);
  const [worker] = await workersOf(master, 1);
  const { d, bundle } = await leakUntilKilled(port, worker);
  expectNamed(d, bundle, cg.path, limit);
  await killGroup(master);
}, 90_000);

test('the limit on a parent cgroup: the post-mortem names the parent, where the kernel found the limit', async () => {
  const limit = 160 * MiB;
  const parent = createMemoryCgroup(`pm-oomcg-parent-${process.pid}`, limit);
  cgroups.push(parent);
  const child = createCgroup('memory', `pm-oomcg-parent-${process.pid}/app`);
  cgroups.push(child);
  const port = await freePort();
  const master = gunicorn(t.app, port, ['-w', '1', '--timeout', '60'], { prefix: child.prefix });
  await ready(port);
  const [worker] = await workersOf(master, 1);
  const { d, bundle } = await leakUntilKilled(port, worker);
  expectNamed(d, bundle, parent.path, limit);
  await killGroup(master);
}, 90_000);
