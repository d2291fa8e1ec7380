/**
 * Lifecycle probe against real processes: exits (status, signal, core dump,
 * RSS and faults at exit), signals with their sender, fork/exec/thread
 * records with automatic tracking of children, and pid reuse.
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { openTracer, TestTracer } from '../helpers/tracer';
import { exited, procStartTicks, python, start, stopAll, waitFor } from '../helpers/procs';
import { RecordType } from '../../agent/records';
import {
  decodeLifecycleStats, ExecFlags, ExitRecord, ForkTracking, SignalRecord, SignalResult,
} from '../../agent/probes/lifecycle';

const PY = '/usr/bin/python3.11';
const TICK_NS = 1e7; // /proc start times are USER_HZ (100) ticks
const SI_USER = 0;
const SEGV_MAPERR = 1;

let t: TestTracer;

beforeAll(() => {
  t = openTracer({ probes: ['lifecycle'] });
});

// pids wrap around (pid_max is 32768 here) while other work forks: each test reads only its own records.
beforeEach(() => {
  t.records.length = 0;
});

afterAll(async () => {
  t?.close();
  await stopAll();
});

const outputs = new WeakMap<ChildProcess, { text: string }>();

/** Keeps everything a child prints, from its start (printed() sees only later output). */
function capture(child: ChildProcess): ChildProcess {
  const out = { text: '' };
  outputs.set(child, out);
  child.stdout!.on('data', (d: Buffer) => { out.text += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out.text += d.toString(); });
  return child;
}

/** The first match of `re` in everything the child printed so far (waits for it). */
function output(child: ChildProcess, re: RegExp): Promise<string> {
  return waitFor(() => outputs.get(child)!.text.match(re)?.[0], 15000, `output matching ${re}`);
}

/** Starts Python code that prints "ready" and then waits for a line on stdin before `body`. */
async function gated(body: string, opts: { cwd?: string } = {}): Promise<ChildProcess> {
  const code = `import sys, os, signal, time\nprint('ready', flush=True)\nsys.stdin.readline()\n${body}`;
  const child = capture(python(code, { stdio: ['pipe', 'pipe', 'pipe'], ...opts }));
  await output(child, /ready/);
  return child;
}

function track(pid: number, flags = 0): number {
  const ticks = procStartTicks(pid);
  t.tracer.track(pid, ticks * TICK_NS, flags);
  return ticks;
}

function go(child: ChildProcess): void {
  child.stdin!.write('go\n');
}

function exitsOf(pid: number): ExitRecord[] {
  return t.ofType(RecordType.Exit).filter((r) => r.pid === pid);
}

function signalsOf(pid: number): SignalRecord[] {
  return t.ofType(RecordType.Signal).filter((r) => r.pid === pid);
}

/** Waits for the first exit record(s) of pid; resolves with all of them. */
function waitExits(pid: number, what: string): Promise<ExitRecord[]> {
  return waitFor(() => (exitsOf(pid).length ? exitsOf(pid) : undefined), 3000, what);
}

function waitSignals(pid: number, what: string): Promise<SignalRecord[]> {
  return waitFor(() => (signalsOf(pid).length ? signalsOf(pid) : undefined), 3000, what);
}

function procStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]] = Number(m[2]) * 1024;
  }
  return out;
}

function procFaults(pid: number): { min: number; maj: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { min: Number(f[7]), maj: Number(f[9]) };
}

function ownComm(): string {
  return fs.readFileSync(`/proc/${process.pid}/comm`, 'utf8').trim();
}

test('exit(3): status, start time, RSS and faults at exit; the pid leaves the filter', async () => {
  // 24 MiB touched, then _exit(3) with no interpreter teardown: the RSS at
  // exit is the RSS the process had a moment before.
  const child = await gated("buf = b'\\x01' * (24 << 20)\nprint('filled', flush=True)\nsys.stdin.readline()\nos._exit(3)");
  const pid = child.pid!;
  const ticks = track(pid);
  expect(t.tracer.mapLookup('lifecycle', 'pids', pid)).not.toBeNull();
  go(child);
  await output(child, /filled/);
  const status = procStatus(pid);
  const faults = procFaults(pid);
  go(child);
  expect(await exited(child)).toEqual({ code: 3, signal: null });
  const [e] = await waitExits(pid, 'exit record');
  expect(exitsOf(pid)).toHaveLength(1); // single-threaded: one task exit, the process exit
  expect(e.tid).toBe(pid);
  expect(e.ppid).toBe(process.pid);
  expect(e.exitCode).toBe(3 << 8);
  expect(e.exitStatus).toBe(3);
  expect(e.termSignal).toBe(0);
  expect(e.coreDumped).toBe(false);
  expect(e.groupDead).toBe(true);
  expect(Math.floor(e.startNs / TICK_NS)).toBe(ticks);
  expect(e.comm).toBe('python3.11');
  // 6.18 fires sched_process_exit before exit_mm(): mm is still there.
  expect(e.mmPresent).toBe(true);
  expect(Math.abs(e.rssAnonBytes - status.RssAnon)).toBeLessThan(0.02 * status.RssAnon + (256 << 10));
  expect(Math.abs(e.rssFileBytes - status.RssFile)).toBeLessThan(0.02 * status.RssFile + (256 << 10));
  expect(e.rssShmemBytes).toBe(status.RssShmem);
  expect(e.rssAnonBytes).toBeGreaterThan(24 << 20);
  expect(e.rssSwapBytes).toBe(0); // no swap on this machine
  expect(e.rssPeakBytes).toBeGreaterThanOrEqual(e.rssAnonBytes + e.rssFileBytes + e.rssShmemBytes);
  // /proc sums the per-CPU counters; the probe reads the folded count, which
  // lags by up to 32 pages per CPU and counter (percpu_counter batch).
  const slack = 2 * os.cpus().length * 32 * 4096;
  expect(e.rssPeakBytes).toBeGreaterThanOrEqual(status.VmHWM - slack);
  // Faults at exit: at least what /proc showed before the last line, a few more at most.
  expect(e.procMinFlt).toBeGreaterThanOrEqual(faults.min);
  expect(e.procMinFlt - faults.min).toBeLessThan(200);
  expect(e.procMajFlt).toBe(faults.maj);
  expect(e.minFlt).toBe(e.procMinFlt); // one thread: the process is the thread
  expect(e.tsNs).toBeGreaterThan(e.startNs);
  expect(t.tracer.mapLookup('lifecycle', 'pids', pid)).toBeNull();
});

test('sys.exit(3) after interpreter teardown reports status 3', async () => {
  const child = await gated('sys.exit(3)');
  const pid = child.pid!;
  track(pid);
  go(child);
  expect((await exited(child)).code).toBe(3);
  const [e] = await waitExits(pid, 'exit record');
  expect([e.exitCode, e.exitStatus, e.termSignal, e.coreDumped, e.groupDead]).toEqual([0x300, 3, 0, false, true]);
  expect(signalsOf(pid)).toHaveLength(0);
});

test('unhandled SIGSEGV (ctypes.string_at(0)): kernel-generated signal, death by signal 11, no core', async () => {
  const child = await gated('import ctypes\nctypes.string_at(0)');
  const pid = child.pid!;
  const ticks = track(pid);
  go(child);
  expect(await exited(child)).toEqual({ code: null, signal: 'SIGSEGV' });
  const [e] = await waitExits(pid, 'exit record');
  const sigs = signalsOf(pid);
  expect(sigs).toHaveLength(1);
  const s = sigs[0];
  expect(s.sig).toBe(11);
  expect(s.kernel).toBe(true);
  expect(s.siCode).toBe(SEGV_MAPERR);
  expect(s.siPid).toBe(0);
  expect(s.senderPid).toBe(pid); // the faulting task itself is current
  expect(s.senderTid).toBe(pid);
  expect(s.senderComm).toBe('python3.11');
  expect(s.tid).toBe(pid);
  expect(s.comm).toBe('python3.11');
  expect(s.group).toBe(false); // force_sig_fault targets the thread
  expect(s.result).toBe(SignalResult.Delivered);
  expect(Math.floor(s.startNs / TICK_NS)).toBe(ticks);
  expect(e.termSignal).toBe(11);
  expect(e.coreDumped).toBe(false); // RLIMIT_CORE is 0
  expect(e.exitCode).toBe(11);
  expect(e.tsNs).toBeGreaterThan(s.tsNs);
});

test('SIGSEGV with RLIMIT_CORE unlimited: core dumped is set', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-core-'));
  try {
    const child = await gated(
      'import ctypes, resource\nresource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\nctypes.string_at(0)',
      { cwd: dir });
    const pid = child.pid!;
    track(pid);
    go(child);
    expect((await exited(child, 20000)).signal).toBe('SIGSEGV');
    const [e] = await waitExits(pid, 'exit record');
    const corePattern = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
    expect(corePattern).toBe('core'); // a core file in the cwd: the kernel wrote one
    expect(fs.readdirSync(dir).some((f) => f.startsWith('core'))).toBe(true);
    expect(e.coreDumped).toBe(true);
    expect(e.termSignal).toBe(11);
    expect(e.exitCode).toBe(0x80 | 11);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGKILL from another process: sender pid and comm', async () => {
  const child = await gated('time.sleep(30)');
  const pid = child.pid!;
  track(pid);
  const killer = start('/bin/kill', ['-KILL', String(pid)]);
  expect((await exited(killer)).code).toBe(0);
  expect(await exited(child)).toEqual({ code: null, signal: 'SIGKILL' });
  const [e] = await waitExits(pid, 'exit record');
  const sigs = signalsOf(pid);
  expect(sigs).toHaveLength(1);
  const s = sigs[0];
  expect(s.sig).toBe(9);
  expect(s.senderPid).toBe(killer.pid);
  expect(s.senderTid).toBe(killer.pid);
  expect(s.senderComm).toBe('kill');
  expect(s.siPid).toBe(killer.pid);
  expect(s.siCode).toBe(SI_USER);
  expect(s.kernel).toBe(false);
  expect(s.group).toBe(true); // kill(2) targets the thread group
  expect(s.result).toBe(SignalResult.Delivered);
  expect(e.termSignal).toBe(9);
  expect(e.exitStatus).toBe(0);
  expect(e.coreDumped).toBe(false);
});

test('SIGTERM handled: the signal is seen, the process exits with its own status', async () => {
  const child = await gated(
    "def on_term(sig, frame):\n    print('term', flush=True)\n    sys.exit(7)\nsignal.signal(signal.SIGTERM, on_term)\nprint('armed', flush=True)\ntime.sleep(30)");
  const pid = child.pid!;
  track(pid);
  go(child);
  await output(child, /armed/);
  process.kill(pid, 'SIGTERM');
  await output(child, /term/);
  expect(await exited(child)).toEqual({ code: 7, signal: null });
  const [e] = await waitExits(pid, 'exit record');
  const s = signalsOf(pid)[0];
  expect(signalsOf(pid)).toHaveLength(1);
  expect(s.sig).toBe(15);
  expect(s.senderPid).toBe(process.pid);
  expect(s.senderTid).toBe(process.pid); // process.kill runs on Node's main thread
  expect(s.senderComm).toBe(ownComm());
  expect(s.siPid).toBe(process.pid);
  expect(s.kernel).toBe(false);
  expect(s.siCode).toBe(SI_USER);
  expect(s.result).toBe(SignalResult.Delivered);
  expect([e.exitStatus, e.termSignal, e.exitCode]).toEqual([7, 0, 7 << 8]);
});

test('signals outside the watched set (SIGWINCH) make no record; SIGUSR1 ignored reports result', async () => {
  const child = await gated(
    "signal.signal(signal.SIGUSR1, signal.SIG_IGN)\nprint('armed', flush=True)\nsys.stdin.readline()\nos._exit(0)");
  const pid = child.pid!;
  track(pid);
  go(child);
  await output(child, /armed/);
  process.kill(pid, 'SIGWINCH');
  process.kill(pid, 'SIGUSR1');
  await waitFor(() => signalsOf(pid).length, 3000, 'SIGUSR1 record');
  go(child);
  await exited(child);
  await waitFor(() => exitsOf(pid).length, 3000, 'exit record');
  const sigs = signalsOf(pid);
  expect(sigs.map((s) => s.sig)).toEqual([10]);
  expect(sigs[0].result).toBe(SignalResult.Ignored);
});

test('fork of a process tracked with follow-forks: child tracked, exec and exit seen; threads distinguished', async () => {
  const child = await gated([
    'import threading',
    'th = threading.Thread(target=lambda: print("tid", threading.get_native_id(), flush=True))',
    'th.start(); th.join()',
    'r, w = os.pipe()',
    'kid = os.fork()',
    'if kid == 0:',
    '    os.close(w); os.read(r, 1)',
    "    os.execv('/bin/sh', ['sh', '-c', 'exit 5'])",
    "print('kid', kid, flush=True)",
    'sys.stdin.readline()',
    'os.write(w, b"x")',
    '_, st = os.waitpid(kid, 0)',
    "print('kidstatus', os.waitstatus_to_exitcode(st), flush=True)",
    'sys.stdin.readline()',
    'os._exit(0)',
  ].join('\n'));
  const pid = child.pid!;
  const ticks = track(pid, 1 /* PM_TRACK_FOLLOW_FORKS */);
  const statsBefore = decodeLifecycleStats(t.tracer.mapLookup('lifecycle', 'lc_stats', 0)!);
  go(child);
  const tidLine = await output(child, /tid \d+/);
  const threadTid = Number(tidLine.split(' ')[1]);
  const kidLine = await output(child, /kid \d+/);
  const kid = Number(kidLine.split(' ')[1]);
  const kidTicks = procStartTicks(kid);
  expect(t.tracer.mapLookup('lifecycle', 'pids', kid)).not.toBeNull(); // tracked before it ran
  go(child);
  await output(child, /kidstatus 5/);
  go(child);
  await exited(child);
  await waitFor(() => exitsOf(pid).some((e) => e.groupDead), 3000, 'parent exit');

  const forks = t.ofType(RecordType.Fork).filter((f) => f.parentPid === pid);
  expect(forks).toHaveLength(2);
  const [thr, proc] = forks;
  expect(thr.isThread).toBe(true);
  expect(thr.childPid).toBe(pid);
  expect(thr.childTid).toBe(threadTid);
  expect(thr.tracked).toBe(ForkTracking.NotTracked);
  expect(proc.isThread).toBe(false);
  expect(proc.childPid).toBe(kid);
  expect(proc.childTid).toBe(kid);
  expect(proc.parentTid).toBe(pid);
  expect(proc.tracked).toBe(ForkTracking.Tracked);
  expect(Math.floor(proc.parentStartNs / TICK_NS)).toBe(ticks);
  expect(Math.floor(proc.childStartNs / TICK_NS)).toBe(kidTicks);
  expect(proc.childStartNs).toBeGreaterThan(proc.parentStartNs);
  expect(proc.parentComm).toBe('python3.11');
  expect(proc.childComm).toBe('python3.11');

  const execs = t.ofType(RecordType.Exec).filter((x) => x.pid === kid);
  expect(execs).toHaveLength(1);
  expect(execs[0].comm).toBe('sh');
  expect(execs[0].filename).toBe('/bin/sh');
  expect(execs[0].tid).toBe(kid);
  expect(execs[0].oldTid).toBe(kid);
  expect(execs[0].startNs).toBe(proc.childStartNs);

  const kidExits = exitsOf(kid);
  expect(kidExits).toHaveLength(1);
  expect(kidExits[0].exitStatus).toBe(5);
  expect(kidExits[0].termSignal).toBe(0);
  expect(kidExits[0].groupDead).toBe(true);
  expect(kidExits[0].ppid).toBe(pid);
  expect(kidExits[0].comm).toBe('sh');
  expect(kidExits[0].startNs).toBe(proc.childStartNs);
  expect(t.tracer.mapLookup('lifecycle', 'pids', kid)).toBeNull();

  // The thread's exit is a thread exit; the process exit comes last.
  const own = exitsOf(pid);
  expect(own).toHaveLength(2);
  expect(own[0]).toMatchObject({ tid: threadTid, groupDead: false, exitCode: 0 });
  expect(own[1]).toMatchObject({ tid: pid, groupDead: true, exitCode: 0 });
  const statsAfter = decodeLifecycleStats(t.tracer.mapLookup('lifecycle', 'lc_stats', 0)!);
  expect(statsAfter.forksTracked - statsBefore.forksTracked).toBeGreaterThanOrEqual(1);
  expect(statsAfter.untrackedExits - statsBefore.untrackedExits).toBeGreaterThanOrEqual(2);
});

test('without follow-forks the child is not tracked and its exit is not reported', async () => {
  const child = await gated("kid = os.fork()\nif kid == 0:\n    os._exit(6)\nos.waitpid(kid, 0)\nprint('kid', kid, flush=True)\nsys.stdin.readline()\nos._exit(0)");
  const pid = child.pid!;
  track(pid, 0);
  go(child);
  const kid = Number((await output(child, /kid \d+/)).split(' ')[1]);
  go(child);
  await exited(child);
  await waitFor(() => exitsOf(pid).length, 3000, 'parent exit');
  const forks = t.ofType(RecordType.Fork).filter((f) => f.parentPid === pid);
  expect(forks).toHaveLength(1);
  expect(forks[0]).toMatchObject({ childPid: kid, isThread: false, tracked: ForkTracking.NotTracked });
  expect(exitsOf(kid)).toHaveLength(0);
});

/**
 * Spawns a process that gets `pid` (via ns_last_pid), retrying if another process takes it first
 * (other work on the host forks too: many attempts, each a few ms).
 */
async function spawnWithPid(pid: number, body: string): Promise<ChildProcess> {
  for (let attempt = 0; attempt < 500; attempt++) {
    // Another process of the host may hold the pid now (got it between A's exit and here): wait for it to go.
    await waitFor(() => !fs.existsSync(`/proc/${pid}`), 30_000, `pid ${pid}, taken by ${procComm(pid)}, to be free again`);
    fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const code = `import sys, os, signal, time\n${body}`;
    const child = capture(start(PY, ['-c', code], { stdio: ['pipe', 'pipe', 'pipe'] }));
    if (child.pid === pid) {
      await output(child, /armed/);
      return child;
    }
    child.kill('SIGKILL');
    await exited(child);
  }
  throw new Error(`could not get pid ${pid} again`);
}

function procComm(pid: number): string {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim() || '?'; } catch { return 'nobody now'; }
}

test('pid reuse: a stale filter entry does not attribute the new process to the dead one', async () => {
  const a = await gated('os._exit(0)');
  const pid = a.pid!;
  const ticksA = track(pid);
  go(a);
  await exited(a);
  const [exitA] = await waitExits(pid, 'exit of A');
  const startA = exitA.startNs;
  expect(Math.floor(startA / TICK_NS)).toBe(ticksA);

  // An agent that missed A's exit still has A (pid + start time) in the filter.
  t.tracer.track(pid, startA, 0);
  const stale0 = decodeLifecycleStats(t.tracer.mapLookup('lifecycle', 'lc_stats', 0)!).staleIgnored;
  const b = await spawnWithPid(pid,
    "signal.signal(signal.SIGUSR2, lambda *a: print('usr2', flush=True))\nprint('armed', flush=True)\nfor _ in range(2):\n    sys.stdin.readline()\nos._exit(4)");
  await output(b, /armed/);
  const ticksB = procStartTicks(pid);
  expect(ticksB).not.toBe(ticksA);
  process.kill(pid, 'SIGUSR2');
  await output(b, /usr2/);
  expect(t.tracer.sync()).toBe(true); // every record of the signal, if any, delivered
  expect(signalsOf(pid)).toHaveLength(0); // B is not A
  expect(decodeLifecycleStats(t.tracer.mapLookup('lifecycle', 'lc_stats', 0)!).staleIgnored).toBeGreaterThan(stale0);

  // Tracked with its own start time, B is reported as B.
  t.tracer.track(pid, ticksB * TICK_NS, 0);
  b.stdin!.write('x\n');
  process.kill(pid, 'SIGUSR2');
  const [sigB] = await waitSignals(pid, 'signal to B');
  expect(sigB.sig).toBe(12);
  expect(Math.floor(sigB.startNs / TICK_NS)).toBe(ticksB);
  b.stdin!.write('x\n');
  expect((await exited(b)).code).toBe(4);
  await waitFor(() => exitsOf(pid).length === 2, 3000, 'exit of B');
  const exitB = exitsOf(pid)[1];
  expect(exitB.exitStatus).toBe(4);
  expect(exitB.startNs).toBe(sigB.startNs);
  expect(exitB.startNs).not.toBe(startA);
  expect(exitB.startNs).toBeGreaterThan(startA);
});

test('untracked processes make no records, but a python exec is a candidate', async () => {
  const child = await gated('os._exit(9)');
  const pid = child.pid!;
  process.kill(pid, 'SIGUSR1'); // default action: it dies by SIGUSR1, unseen
  await exited(child);
  const shell = start('/bin/sh', ['-c', 'exit 0']); // not a python: no record at all
  await exited(shell);
  expect(t.tracer.sync()).toBe(true);
  // Its exec was reported (the agent looks for new services at once); nothing after it.
  const ofPid = t.records.filter((r) => 'pid' in r && (r as { pid: number }).pid === pid);
  expect(ofPid.map((r) => r.type)).toEqual([RecordType.Exec]);
  expect(ofPid[0]).toMatchObject({ flags: ExecFlags.Candidate, comm: 'python3.11' });
  expect(t.records.filter((r) => 'pid' in r && (r as { pid: number }).pid === shell.pid)).toHaveLength(0);
});
