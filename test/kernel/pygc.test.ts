/**
 * Python GC pauses from CPython's USDT probes, on real interpreters: Debian's
 * /usr/bin/python3.11 (built with probes) and pythons without them (the
 * uprobe method for those is tested in python-gc.test.ts).
 */
import { ChildProcess } from 'child_process';
import { openTracer, TestTracer } from '../helpers/tracer';
import { printed, python, start, stopAll, waitFor } from '../helpers/procs';
import { RecordType } from '../../agent/records';
import { attachGcProbes, readGcHist, readGcStats } from '../../agent/probes/pygc';
import { createInterpreterCache } from '../../agent/python/interpreter';
import { scanPythonInterpreters } from '../../agent/python/scan';
import { GC_SCRIPT, pyenvLibpython, pyenvPython } from '../helpers/python';

const GC_MIN_US = 1000;

describe('pygc: GC pauses from python:gc__start/gc__done', () => {
  let t: TestTracer;
  beforeAll(() => {
    t = openTracer({ probes: ['pygc'], rodata: { pygc: { targ_gc_min_us: GC_MIN_US } } });
  });
  afterAll(async () => {
    t?.close();
    await stopAll();
  });

  async function gcWorkload(child: ChildProcess): Promise<Record<string, [count: number, longestNs: number, collected: number]>> {
    child.stdin!.write('go\n');
    const line = await printed(child, /done (\{.*\})/, 30000);
    return JSON.parse(line.slice(5));
  }

  test('a tracked /usr/bin/python3.11 shows its collections by generation, with plausible durations', async () => {
    const child = python(GC_SCRIPT, { stdio: ['pipe', 'pipe', 'pipe'] });
    await printed(child, /ready/);
    const pid = child.pid!;
    const found = createInterpreterCache().resolve(pid);
    expect(found).toMatchObject({ ok: true, process: { binary: { path: '/usr/bin/python3.11', gcUsdt: true, kind: 'executable' } } });
    t.tracer.track(pid);
    const links = attachGcProbes(t.tracer, '/usr/bin/python3.11', pid);
    expect(links).toHaveLength(2);

    const own = await gcWorkload(child);
    expect(t.tracer.sync()).toBe(true);
    const stats = readGcStats(t.tracer, pid)!;
    expect(stats).not.toBeNull();
    const [g0, , g2] = stats.generations;
    // Five explicit gc.collect() (generation 2) plus the automatic young collections.
    expect(g2.count).toBeGreaterThanOrEqual(5);
    expect(g2.count).toBe(own['2'][0]);
    expect(g0.count).toBe(own['0'][0]);
    expect(g0.count).toBeGreaterThan(0);
    // Two dicts per cycle: young collections take most, the full ones the last two rounds.
    expect(stats.generations.reduce((n, g) => n + g.collected, 0)).toBeGreaterThanOrEqual(5 * 40000 * 0.9);
    expect(g2.collected).toBeGreaterThanOrEqual(2 * 40000 * 0.9);
    // The kernel's longest full collection is close to what Python measured itself.
    const pyMaxNs = own['2'][1];
    expect(g2.maxNs).toBeGreaterThan(pyMaxNs * 0.5);
    expect(g2.maxNs).toBeLessThan(pyMaxNs * 2 + 2e6);
    expect(g2.maxNs).toBeLessThan(5e9);

    const hist = readGcHist(t.tracer, pid)!;
    const total = stats.generations.reduce((n, g) => n + g.count, 0);
    expect(hist.count).toBe(total);
    expect(hist.slots.reduce((a, b) => a + b, 0)).toBe(total);

    const slow = await waitFor(() => {
      expect(t.tracer.sync()).toBe(true);
      const r = t.ofType(RecordType.Gc).filter((x) => x.pid === pid);
      return r.length >= 1 && r.length === stats.slow && r; // every slow pause has its record
    }, 3000, 'one record per slow GC pause');
    for (const r of slow) {
      expect(r.durationNs).toBeGreaterThanOrEqual(GC_MIN_US * 1000);
      expect(r.tid).toBe(pid); // the main thread collects
      expect(r.generation).toBeLessThanOrEqual(2);
      expect(r.comm).toBe('python3.11');
    }
    expect(slow.some((r) => r.generation === 2 && r.collected >= 40000 * 0.9)).toBe(true);
    for (const l of links) t.tracer.detach(l);
  });

  test('an untracked process of the same binary is filtered out in the kernel', async () => {
    const child = python(GC_SCRIPT, { stdio: ['pipe', 'pipe', 'pipe'] });
    await printed(child, /ready/);
    const pid = child.pid!;
    // Attached for every process running the binary (pid -1), but not tracked.
    const links = attachGcProbes(t.tracer, '/usr/bin/python3.11', -1);
    await gcWorkload(child);
    expect(t.tracer.sync()).toBe(true);
    expect(readGcStats(t.tracer, pid)).toBeNull();
    expect(readGcHist(t.tracer, pid)).toBeNull();
    expect(t.ofType(RecordType.Gc).filter((r) => r.pid === pid)).toHaveLength(0);
    for (const l of links) t.tracer.detach(l);
  });

  test('pythons without probes are reported as such, by pid and by the host scan, with the method they get instead', async () => {
    const all = scanPythonInterpreters();
    const debian = all.find((i) => i.realPath === '/usr/bin/python3.11');
    expect(debian).toMatchObject({ gcMethod: 'usdt', stacks: true });
    expect(debian!.usdtProbes).toEqual(expect.arrayContaining(['gc__start', 'gc__done']));
    const pyenv12 = all.find((i) => i.realPath === pyenvPython(12));
    expect(pyenv12).toMatchObject({ gcMethod: 'uprobe', runtimeFile: pyenvLibpython(12), stacks: true, usdtProbes: [] });
    expect(pyenv12!.gcReason).toMatch(/gc_collect_main\(\)/);
    const pyenv7 = all.find((i) => /\/3\.7\.\d+\/bin\/python3\.7$/.test(i.realPath));
    expect(pyenv7).toMatchObject({ gcMethod: 'none', stacks: false });
    expect(pyenv7!.gcReason).toMatch(/no python:gc__\* USDT probes.*no known GC entry point for Python 3\.7/);

    const child = start(pyenvPython(12), ['-c', 'import sys; print("ready", flush=True); sys.stdin.readline()'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    await printed(child, /ready/);
    const found = createInterpreterCache().resolve(child.pid!);
    expect(found).toMatchObject({ ok: true, process: { binary: { gcUsdt: false, path: pyenvLibpython(12) } } });
    // Attaching USDT anyway fails with a reason instead of silently measuring nothing.
    expect(() => attachGcProbes(t.tracer, pyenvLibpython(12), child.pid!)).toThrow(/gc__start/);
  });
});
