/**
 * cgroup v2 as containers and pods lay it out, whatever the depth: the memory
 * limit that binds (the container's own, its pod's, the tighter one), the CPU
 * quota that applies (the nearest with one), and PSI of the container's own
 * cgroup. The memory and cpu controllers of this machine are bound to cgroup
 * v1, so memory.max and cpu.max trees are fixtures laid out as the kernel
 * writes them; PSI is real: /sys/fs/cgroup/unified has pressure files in
 * every cgroup, and a nested cgroup there with two CPU-bound processes on one
 * CPU shows its own CPU pressure.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { bindingCpuCgroup, readCpuThrottling } from '../../agent/cgroup/cpu';
import { bindingMemoryCgroup, cgroupMounts } from '../../agent/cgroup/memory';
import { cgroup2PathOf, parsePsi, pressureOf, readCgroupPressure } from '../../agent/cgroup/pressure';
import { sleep, start, stopAll, waitFor } from '../helpers/procs';

const MiB = 1024 * 1024;

describe('fixture hierarchies (v2 file names)', () => {
  let mount: string;
  const cg = (p: string, files: Record<string, string>) => {
    const dir = path.join(mount, p);
    fs.mkdirSync(dir, { recursive: true });
    for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v);
  };
  beforeEach(() => { mount = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-cg2-')); });
  afterEach(() => fs.rmSync(mount, { recursive: true, force: true }));

  const mem = (max: string, current: number) => ({ 'memory.max': max, 'memory.current': String(current), 'memory.events': 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n' });
  const pod = '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podx.slice';
  const ctr = `${pod}/cri-containerd-abc.scope`;

  test('a container without a limit in a pod with one: the pod\'s limit and usage bind', () => {
    cg('/kubepods.slice', mem('max', 900 * MiB));
    cg('/kubepods.slice/kubepods-burstable.slice', mem('max', 800 * MiB));
    cg(pod, mem(String(512 * MiB), 400 * MiB));
    cg(ctr, mem('max', 300 * MiB));
    const m = bindingMemoryCgroup(2, mount, ctr)!;
    expect(m).toMatchObject({ version: 2, path: pod, limitBytes: 512 * MiB, usageBytes: 400 * MiB });
    expect(m.events).toMatchObject({ max: 3, oomKill: 1 });
  });

  test('both limited: the one with the least headroom binds', () => {
    cg(pod, mem(String(512 * MiB), 500 * MiB));
    cg(ctr, mem(String(256 * MiB), 100 * MiB));
    expect(bindingMemoryCgroup(2, mount, ctr)).toMatchObject({ path: pod, limitBytes: 512 * MiB });
    fs.writeFileSync(path.join(mount, ctr, 'memory.current'), String(250 * MiB));
    expect(bindingMemoryCgroup(2, mount, ctr)).toMatchObject({ path: ctr, limitBytes: 256 * MiB });
  });

  test('a leaf without memory files (controller enabled only above it): the nearest ancestor that has them', () => {
    cg(pod, mem('max', 10 * MiB));
    cg(`${ctr}/container`, { 'cgroup.procs': '' });
    expect(bindingMemoryCgroup(2, mount, `${ctr}/container`)).toMatchObject({ path: pod, limitBytes: null, usageBytes: 10 * MiB });
  });

  test('no memory files anywhere: none', () => {
    cg(ctr, { 'cgroup.procs': '' });
    expect(bindingMemoryCgroup(2, mount, ctr)).toBeNull();
  });

  test('CPU: the container\'s quota, else its pod\'s; cpu.stat counters of that cgroup', () => {
    cg(pod, { 'cpu.max': '200000 100000', 'cpu.stat': 'usage_usec 9\nnr_periods 50\nnr_throttled 7\nthrottled_usec 31000\n' });
    cg(ctr, { 'cpu.max': 'max 100000', 'cpu.stat': 'usage_usec 5\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n' });
    const c = bindingCpuCgroup(2, mount, ctr);
    expect(c.path).toBe(pod);
    expect(readCpuThrottling(c)).toEqual({ nrPeriods: 50, nrThrottled: 7, throttledUs: 31000, quotaUs: 200000, periodUs: 100000 });
    fs.writeFileSync(path.join(mount, ctr, 'cpu.max'), '50000 100000');
    expect(bindingCpuCgroup(2, mount, ctr).path).toBe(ctr);
    fs.writeFileSync(path.join(mount, pod, 'cpu.max'), 'max 100000');
    fs.writeFileSync(path.join(mount, ctr, 'cpu.max'), 'max 100000');
    expect(bindingCpuCgroup(2, mount, ctr).path).toBe(ctr); // no quota anywhere: its own
  });

  test('PSI files: avg10 and totals of some and full; the root and missing files say nothing', () => {
    expect(parsePsi('some avg10=12.50 avg60=3.00 avg300=1.00 total=123456\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=789\n'))
      .toEqual({ some: { avg10: 12.5, total: 123456 }, full: { avg10: 0.5, total: 789 } });
    cg(ctr, {
      'cpu.pressure': 'some avg10=40.00 avg60=1.00 avg300=0.00 total=5000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
      'memory.pressure': 'some avg10=2.00 avg60=0.00 avg300=0.00 total=3000\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=2000\n',
      'io.pressure': 'some avg10=0.25 avg60=0.00 avg300=0.00 total=70\nfull avg10=0.125 avg60=0.00 avg300=0.00 total=60\n',
    });
    expect(readCgroupPressure(mount, ctr, 42)).toEqual({
      path: ctr, tMs: 42, cpuSomeAvg10: 40, memorySomeAvg10: 2, memoryFullAvg10: 1, ioSomeAvg10: 0.25, ioFullAvg10: 0.125,
      cpuSomeTotalUs: 5000000, memorySomeTotalUs: 3000, memoryFullTotalUs: 2000, ioSomeTotalUs: 70, ioFullTotalUs: 60,
    });
    expect(readCgroupPressure(mount, '/')).toBeNull();
    expect(readCgroupPressure(mount, pod)).toBeNull();
  });
});

describe('live: per-cgroup PSI in this machine\'s cgroup2 hierarchy', () => {
  const mounts = cgroupMounts();
  const dirs: string[] = [];
  afterAll(async () => {
    await stopAll();
    for (const d of dirs.reverse()) for (let i = 0; i < 100 && fs.existsSync(d); i++) {
      try { fs.rmdirSync(d); } catch { await sleep(20); }
    }
  });

  test('two CPU-bound processes on one CPU in a nested container-like cgroup: its own cpu.pressure rises, read at its depth', async () => {
    if (!mounts.v2) throw new Error('no cgroup2 hierarchy mounted: this test needs one (here /sys/fs/cgroup/unified)');
    const top = `/pm-v2-${process.pid}`;
    const leaf = `${top}/kubepods.slice/kubepods-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-${'a'.repeat(64)}.scope`;
    let p = '';
    for (const part of leaf.split('/').filter(Boolean)) {
      p += `/${part}`;
      fs.mkdirSync(path.join(mounts.v2, p));
      dirs.push(path.join(mounts.v2, p));
    }
    if (!fs.existsSync(path.join(mounts.v2, leaf, 'cpu.pressure')))
      throw new Error(`${mounts.v2}${leaf} has no cpu.pressure: this kernel lacks PSI for cgroups (CONFIG_PSI, psi=1)`);
    const spin = (tag: string) => start('/usr/bin/taskset', ['-c', '0', '/bin/sh', '-c', `echo $$ > ${mounts.v2}${leaf}/cgroup.procs && exec /usr/bin/python3 -c "while True: pass" ${tag}`]);
    const a = spin('a');
    const b = spin('b');
    await waitFor(() => cgroup2PathOf(a.pid!) === leaf && cgroup2PathOf(b.pid!) === leaf, 5000, 'both spinners in the leaf cgroup');
    const first = pressureOf(a.pid!)!;
    expect(first.path).toBe(leaf);
    // Two runnable tasks on one CPU: one always waits. Whatever the machine's speed, "some"
    // CPU stall of this cgroup grows by most of the wall time (here: at least a quarter).
    const t0 = Date.now();
    const later = await waitFor(() => {
      const now = pressureOf(a.pid!)!;
      return now.cpuSomeTotalUs - first.cpuSomeTotalUs >= 250_000 && Date.now() - t0 >= 1000 ? now : undefined;
    }, 20_000, 'the leaf cgroup\'s cpu.pressure to grow');
    expect(later.cpuSomeTotalUs - first.cpuSomeTotalUs).toBeGreaterThanOrEqual(250_000);
    // The parent's totals include the leaf's: pressure is read at the container's own depth.
    const parent = readCgroupPressure(mounts.v2, top)!;
    expect(parent.cpuSomeTotalUs).toBeGreaterThanOrEqual(later.cpuSomeTotalUs * 0.5);
    // A sibling cgroup with nothing in it shows none.
    const idle = `${top}/idle`;
    fs.mkdirSync(path.join(mounts.v2, idle));
    dirs.push(path.join(mounts.v2, idle));
    expect(readCgroupPressure(mounts.v2, idle)!.cpuSomeTotalUs).toBe(0);
  });
});
