/**
 * GC pauses without USDT: real pyenv interpreters (no stapsdt notes, full
 * symbol tables) get a uprobe/uretprobe pair on their collector, Debian's
 * python3.11 its USDT probes; both reach the same per-process maps and
 * records, with the counts, generations and objects Python itself reports.
 * Probes attach once per distinct binary, and a binary seen only inside
 * another mount namespace is found through /proc/PID/root.
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openTracer, TestTracer } from '../helpers/tracer';
import { linkIdsOf } from '../helpers/bpf';
import { printed, start, stopAll, waitFor } from '../helpers/procs';
import { DEBIAN_PYTHON, GC_SCRIPT, GcOwnStats, pyenvLibpython, pyenvPython } from '../helpers/python';
import { RecordType } from '../../agent/records';
import { GC_GENERATION_UNKNOWN, readGcHist, readGcStats } from '../../agent/probes/pygc';
import { createPythonGc, PythonGc } from '../../agent/python/gc';
import { createLogger } from '../../agent/log';

const GC_MIN_US = 1000;
const log = createLogger({ level: 'error' });

let t: TestTracer;
let gc: PythonGc | undefined;
const tmpDirs: string[] = [];

beforeAll(() => {
  t = openTracer({ probes: ['pygc'], rodata: { pygc: { targ_gc_min_us: GC_MIN_US } } });
});
afterEach(() => {
  gc?.close();
  gc = undefined;
});
afterAll(async () => {
  await stopAll();
  t?.close();
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

async function ready(cmd: string, args: string[]): Promise<ChildProcess> {
  const child = start(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  await printed(child, /ready/);
  return child;
}

async function gcWorkload(child: ChildProcess): Promise<GcOwnStats> {
  child.stdin!.write('go\n');
  const line = await printed(child, /done (\{.*\})/, 60000);
  return JSON.parse(line.slice(5));
}

/** The kernel's view of `pid` against what Python measured of its own collections. */
async function expectSameCollections(pid: number, own: GcOwnStats, generationKnown: boolean): Promise<void> {
  t.tracer.flush();
  const stats = readGcStats(t.tracer, pid);
  expect(stats).not.toBeNull();
  const total = own['0'][0] + own['1'][0] + own['2'][0];
  const objects = own['0'][2] + own['1'][2] + own['2'][2];
  expect(own['2'][0]).toBeGreaterThanOrEqual(5);
  if (generationKnown) {
    for (const g of [0, 1, 2] as const) {
      expect(stats!.generations[g].count).toBe(own[g][0]);
      expect(stats!.generations[g].collected).toBe(own[g][2]);
    }
    expect(stats!.unknownGeneration.count).toBe(0);
    // The kernel's longest full collection is close to what Python measured around it.
    const g2 = stats!.generations[2];
    expect(g2.maxNs).toBeGreaterThan(own['2'][1] * 0.5);
    expect(g2.maxNs).toBeLessThan(own['2'][1] * 2 + 2e6);
  } else {
    expect(stats!.unknownGeneration.count).toBe(total);
    expect(stats!.unknownGeneration.collected).toBe(objects);
  }
  expect(stats!.unmatched).toBe(0);
  const hist = readGcHist(t.tracer, pid)!;
  expect(hist.count).toBe(total);
  // Every slow pause has its record, with the generation (or "unknown") and the objects.
  const slow = await waitFor(() => {
    t.tracer.flush();
    const r = t.ofType(RecordType.Gc).filter((x) => x.pid === pid);
    return r.length >= 1 && r.length === stats!.slow && r;
  }, 5000, 'one record per slow GC pause');
  for (const r of slow) {
    expect(r.durationNs).toBeGreaterThanOrEqual(GC_MIN_US * 1000);
    expect(r.durationNs).toBeLessThan(5e9);
    expect(r.tid).toBe(pid);
    if (generationKnown) expect([0, 1, 2]).toContain(r.generation);
    else expect(r.generation).toBe(GC_GENERATION_UNKNOWN);
  }
  expect(slow.some((r) => r.collected >= 40000 * 0.9)).toBe(true);
}

describe('GC pauses by uprobe on interpreters without USDT, by USDT where present', () => {
  test.each([
    [9, 'collect'], [10, 'gc_collect_main'], [11, 'gc_collect_main'], [12, 'gc_collect_main'], [13, 'gc_collect_main'],
  ])('pyenv Python 3.%i: uprobe on %s(), collections and generations as Python counts them', async (minor, fn) => {
    const child = await ready(pyenvPython(minor), ['-c', GC_SCRIPT]);
    gc = createPythonGc({ tracer: t.tracer, log });
    const target = gc.attachFor(child.pid!)!;
    expect(target).toMatchObject({ method: 'uprobe', path: pyenvLibpython(minor) });
    expect(target.reason).toContain(`${fn}()`);
    expect(target.version).toMatch(new RegExp(`^3\\.${minor}`));
    t.tracer.track(child.pid!);
    const own = await gcWorkload(child);
    await expectSameCollections(child.pid!, own, true);
  });

  test('pyenv Python 3.8: the collector exists only as compiler clones: attached, generation unknown', async () => {
    const child = await ready(pyenvPython(8), ['-c', GC_SCRIPT]);
    gc = createPythonGc({ tracer: t.tracer, log });
    const target = gc.attachFor(child.pid!)!;
    expect(target.method).toBe('uprobe');
    expect(target.reason).toMatch(/collect\.constprop\.\d.*generation unknown/);
    t.tracer.track(child.pid!);
    await expectSameCollections(child.pid!, await gcWorkload(child), false);
  });

  test("Debian's python3.11 keeps its USDT probes, into the same maps", async () => {
    const child = await ready(DEBIAN_PYTHON, ['-c', GC_SCRIPT]);
    gc = createPythonGc({ tracer: t.tracer, log });
    expect(gc.attachFor(child.pid!)).toMatchObject({ method: 'usdt', path: DEBIAN_PYTHON });
    expect(gc.features()).toEqual([expect.objectContaining({ name: `gc-usdt ${DEBIAN_PYTHON}`, enabled: true })]);
    t.tracer.track(child.pid!);
    await expectSameCollections(child.pid!, await gcWorkload(child), true);
  });

  test('one attach per distinct binary, however many processes run it', async () => {
    const exe = pyenvPython(12);
    const kids = await Promise.all([0, 1, 2].map(() => ready(exe, ['-c', GC_SCRIPT])));
    const before = linkIdsOf(process.pid).length;
    gc = createPythonGc({ tracer: t.tracer, log });
    for (const k of kids) gc.attachFor(k.pid!);
    expect(gc.attachCalls).toBe(1);
    expect(gc.targets()).toHaveLength(1);
    // uprobe + uretprobe on one function: two kernel links, not six.
    expect(linkIdsOf(process.pid).length - before).toBe(2);
    for (const k of kids) t.tracer.track(k.pid!);
    const owns = await Promise.all(kids.map((k) => gcWorkload(k)));
    t.tracer.flush();
    kids.forEach((k, i) => expect(readGcStats(t.tracer, k.pid!)!.generations[2].count).toBe(owns[i]['2'][0]));
  });

  test('a libpython replaced on disk under a running process: the old file is read and probed (/proc/PID/map_files)', async () => {
    const minor = 12;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-pydel-'));
    tmpDirs.push(dir);
    fs.mkdirSync(path.join(dir, 'lib'));
    const lib = path.join(dir, 'lib', `libpython3.${minor}.so.1.0`);
    fs.copyFileSync(pyenvLibpython(minor), lib);
    const child = start(pyenvPython(minor), ['-c', GC_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, LD_LIBRARY_PATH: path.join(dir, 'lib') } });
    await printed(child, /ready/);
    // An upgrade: the file at that path is now another one.
    fs.rmSync(lib);
    fs.copyFileSync(pyenvLibpython(11), lib);
    expect(fs.readFileSync(`/proc/${child.pid}/maps`, 'utf8')).toContain(`${lib} (deleted)`);
    gc = createPythonGc({ tracer: t.tracer, log });
    const target = gc.attachFor(child.pid!)!;
    expect(target).toMatchObject({ method: 'uprobe', path: lib, version: `3.${minor}.1` });
    t.tracer.track(child.pid!);
    await expectSameCollections(child.pid!, await gcWorkload(child), true);
  });

  test('a python inside its own mount namespace, at a path the host does not have, is found through /proc/PID/root', async () => {
    const minor = 11;
    const prefix = path.dirname(path.dirname(pyenvPython(minor))); // /root/.pyenv/versions/3.11.7
    const relocated = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-pyns-')); // empty on the host
    tmpDirs.push(relocated);
    // Inside: the interpreter tree is bound at `relocated`, and /root/.pyenv is hidden under a tmpfs.
    const script = `mount --bind ${prefix} ${relocated} && mount -t tmpfs none /root/.pyenv && LD_LIBRARY_PATH=${relocated}/lib exec ${relocated}/bin/python3.${minor} -c "$0"`;
    const child = await ready('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, GC_SCRIPT]);
    const pid = child.pid!; // unshare and sh exec: the python has the child's pid
    const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
    const libInNs = `${relocated}/lib/libpython3.${minor}.so.1.0`;
    expect(maps).toContain(libInNs);
    expect(fs.existsSync(libInNs)).toBe(false); // not on the host's side
    expect(fs.readlinkSync(`/proc/${pid}/ns/mnt`)).not.toBe(fs.readlinkSync('/proc/self/ns/mnt'));

    gc = createPythonGc({ tracer: t.tracer, log });
    const target = gc.attachFor(pid)!;
    expect(target).toMatchObject({ method: 'uprobe', path: libInNs });
    // The same file as the host's pyenv 3.11: one key (device and inode), no second attach.
    const host = await ready(pyenvPython(minor), ['-c', GC_SCRIPT]);
    expect(gc.attachFor(host.pid!)!.key).toBe(target.key);
    expect(gc.attachCalls).toBe(1);
    t.tracer.track(pid);
    await expectSameCollections(pid, await gcWorkload(child), true);
  });
});
