/**
 * Memory probe against real processes: page faults counted in the kernel
 * (growing with touched memory, flat when idle, majors from a file whose
 * page cache was dropped), and the last RSS kept fresh by rss_stat.
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openTracer, TestTracer } from '../helpers/tracer';
import { exited, procStartTicks, python, sleep, stopAll, waitFor } from '../helpers/procs';
import { RecordType } from '../../agent/records';
import { decodeFaultStats, decodeRssLast, FaultStats, RssLast } from '../../agent/probes/memory';

const TICK_NS = 1e7;
const PAGE = 4096;

let t: TestTracer;
const outputs = new WeakMap<ChildProcess, { text: string }>();

beforeAll(() => {
  t = openTracer({ probes: ['lifecycle', 'memory'] });
});

afterAll(async () => {
  t?.close();
  await stopAll();
});

/** Python that prints "ready", then runs each step after a line on stdin; prints "step N" after each. */
async function stepped(steps: string[]): Promise<ChildProcess> {
  const body = steps.map((s, i) =>
    `sys.stdin.readline()\n${s}\nprint('step ${i}', flush=True)`).join('\n');
  const code = `import sys, os, mmap, time, signal\nprint('ready', flush=True)\n${body}\nsys.stdin.readline()\nos._exit(0)`;
  const child = python(code, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = { text: '' };
  outputs.set(child, out);
  child.stdout!.on('data', (d: Buffer) => { out.text += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out.text += d.toString(); });
  await waitFor(() => out.text.includes('ready'), 15000, 'ready');
  return child;
}

async function step(child: ChildProcess, i: number): Promise<void> {
  child.stdin!.write('go\n');
  await waitFor(() => outputs.get(child)!.text.includes(`step ${i}`) || outputs.get(child)!.text.includes('Error'),
    15000, `step ${i}`);
  expect(outputs.get(child)!.text).not.toMatch(/Error/);
}

function track(pid: number): number {
  const ticks = procStartTicks(pid);
  t.tracer.track(pid, ticks * TICK_NS, 0);
  return ticks;
}

function faultsOf(pid: number): FaultStats | null {
  const b = t.tracer.mapLookup('memory', 'faults', pid);
  return b ? decodeFaultStats(b) : null;
}

function rssOf(pid: number): RssLast | null {
  const b = t.tracer.mapLookup('memory', 'rss_last', pid);
  return b ? decodeRssLast(b) : null;
}

function procFaults(pid: number): { min: number; maj: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { min: Number(f[7]), maj: Number(f[9]) };
}

function rssAnon(pid: number): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

test('page faults grow with touched memory, match /proc, and stay flat while idle', async () => {
  const MB = 32;
  const child = await stepped([
    'm = mmap.mmap(-1, 4096); m[0] = 1', // first fault seen: the thread's baseline
    `m = mmap.mmap(-1, ${MB} << 20)\nfor i in range(0, ${MB} << 20, ${PAGE}): m[i] = 1`,
  ]);
  const pid = child.pid!;
  const ticks = track(pid);
  await step(child, 0);
  const f0 = faultsOf(pid)!;
  const p0 = procFaults(pid);
  expect(f0).not.toBeNull();
  expect(Math.floor(f0.startNs / TICK_NS)).toBe(ticks);

  await step(child, 1);
  const f1 = faultsOf(pid)!;
  const p1 = procFaults(pid);
  const pages = (MB << 20) / PAGE;
  const bpfDelta = f1.faults - f0.faults;
  const procDelta = p1.min + p1.maj - (p0.min + p0.maj);
  expect(bpfDelta).toBeGreaterThanOrEqual(pages); // THP is madvise-only here: one fault per page
  expect(Math.abs(bpfDelta - procDelta)).toBeLessThanOrEqual(Math.max(16, 0.01 * procDelta));
  expect(f1.major - f0.major).toBe(p1.maj - p0.maj);
  expect(f1.minor).toBe(f1.faults - f1.major);
  expect(f1.lastNs).toBeGreaterThan(f0.lastNs);

  // Idle for a second: not one more fault, in the kernel's count or ours.
  await sleep(1000);
  const f2 = faultsOf(pid)!;
  expect(f2.faults).toBe(f1.faults);
  expect(f2.lastNs).toBe(f1.lastNs);
  expect(procFaults(pid)).toEqual(p1);
  child.stdin!.write('end\n');
  await exited(child);
});

test('major faults: a file read through mmap after its page cache was dropped', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-maj-'));
  const file = path.join(dir, 'data');
  try {
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, Buffer.alloc(16 << 20, 7));
    fs.fsyncSync(fd); // clean pages: DONTNEED can drop them
    fs.closeSync(fd);
    const child = await stepped([
      'm = mmap.mmap(-1, 4096); m[0] = 1',
      [
        `f = open('${file}', 'rb')`,
        'os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)',
        'fm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)',
        's = 0',
        `for i in range(0, len(fm), ${PAGE}): s += fm[i]`,
        // A fresh anonymous page: the next fault of this thread, which adds
        // the majors the file reads counted to the probe's total.
        'a = mmap.mmap(-1, 4096); a[0] = 1',
      ].join('\n'),
    ]);
    const pid = child.pid!;
    track(pid);
    await step(child, 0);
    const f0 = faultsOf(pid)!;
    const p0 = procFaults(pid);
    await step(child, 1);
    const f1 = faultsOf(pid)!;
    const p1 = procFaults(pid);
    expect(p1.maj - p0.maj).toBeGreaterThan(0); // the kernel saw majors: the test is valid
    expect(f1.major - f0.major).toBe(p1.maj - p0.maj);
    expect(f1.faults - f0.faults).toBeGreaterThan(f1.major - f0.major);
    child.stdin!.write('end\n');
    await exited(child);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an untracked process gets no fault or RSS entries', async () => {
  const child = await stepped([`m = mmap.mmap(-1, 8 << 20)\nfor i in range(0, 8 << 20, ${PAGE}): m[i] = 1`]);
  const pid = child.pid!;
  await step(child, 0);
  expect(faultsOf(pid)).toBeNull();
  expect(rssOf(pid)).toBeNull();
  child.stdin!.write('end\n');
  await exited(child);
});

test('last RSS: near /proc while allocating, rate-limited, fresh at a sudden death', async () => {
  // 1 MiB every 5 ms up to 64 MiB, then a SIGKILL from itself mid-flight.
  const child = await stepped([
    'chunks = []\nfor _ in range(64):\n    chunks.append(b"\\x01" * (1 << 20)); time.sleep(0.005)',
    'chunks.append(b"\\x01" * (8 << 20))\nos.kill(os.getpid(), signal.SIGKILL)',
  ]);
  const pid = child.pid!;
  const ticks = track(pid);
  const t0 = Date.now();
  await step(child, 0);
  const elapsedMs = Date.now() - t0;
  await sleep(20);
  const r = rssOf(pid)!;
  expect(r).not.toBeNull();
  expect(Math.floor(r.startNs / TICK_NS)).toBe(ticks);
  const procAnon = rssAnon(pid);
  expect(procAnon).toBeGreaterThan(64 << 20);
  // Within 1 MiB (the write threshold) plus percpu_counter folding (up to
  // 32 pages per CPU behind /proc's exact sum).
  expect(Math.abs(r.anonBytes - procAnon)).toBeLessThanOrEqual((1 << 20) + os.cpus().length * 32 * PAGE);
  // Rate limit: ≥ 16k rss_stat events (one per page) during the allocation,
  // but a write only every 10 ms or per MiB moved.
  expect(r.writes).toBeGreaterThanOrEqual(10);
  expect(r.writes).toBeLessThanOrEqual(Math.ceil(elapsedMs / 10) + 64 + 4);
  expect(r.peakBytes).toBeGreaterThanOrEqual(r.anonBytes + r.fileBytes);

  child.stdin!.write('go\n');
  expect((await exited(child)).signal).toBe('SIGKILL');
  const exit = await waitFor(() => t.ofType(RecordType.Exit).find((e) => e.pid === pid && e.groupDead), 3000, 'exit');
  const last = rssOf(pid)!;
  // Exit teardown (exit_mmap after exit_mm) does not overwrite it; it was written
  // before the death and shows the final 8 MiB (fresh by what it holds, not by how
  // long ago: a preempted process's RSS does not move meanwhile).
  expect(last.tsNs).toBeLessThanOrEqual(exit.tsNs);
  expect(last.anonBytes).toBeGreaterThan(r.anonBytes + (6 << 20));
  expect(Math.abs(last.anonBytes - exit.rssAnonBytes)).toBeLessThanOrEqual(2 << 20);
  expect(exit.mmPresent).toBe(true);
});
