/**
 * Python stacks read from outside the process (process_vm_readv, no ptrace
 * stop), on real interpreters: a Debian gunicorn sync worker stuck in
 * slow_report() until its master kills it for the timeout, plain pyenv
 * 3.9–3.13 processes stuck in (or spinning in) slow_report(), a threaded
 * process with every thread, bounds, and the errors a caller gets.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess } from 'child_process';
import { createStackSampler, StackSampler } from '../../agent/python/stacks';
import type { PyStackSample } from '../../agent/python/stack-types';
import { exited, killGroup, printed, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { childrenOf, freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { DEBIAN_PYTHON, pyenvPython } from '../helpers/python';
import { FLASK_STUCK, lineOf } from '../helpers/stuck-app';

const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `pm-${prefix}-`));
  dirs.push(d);
  return d;
}

const STUCK = `
import sys, time
def slow_report(spin):
    if spin:
        t = time.time()
        while time.time() - t < 3600: pass  # spinning here
    time.sleep(3600)  # sleeping here
def handle(spin):
    return slow_report(spin)
print("ready", flush=True)
handle(len(sys.argv) > 1)
`;

const names = (s: PyStackSample) => s.threads.map((t) => t.frames.map((f) => f.function));

async function stuck(exe: string, spin: boolean): Promise<{ child: ChildProcess; file: string }> {
  const file = path.join(tempDir('stuck'), 'stuck.py');
  fs.writeFileSync(file, STUCK);
  const child = start(exe, [file, ...(spin ? ['spin'] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  await printed(child, /ready/);
  return { child, file };
}

/** Samples until the main thread's innermost frame is `fn` (a process may still be on its way there). */
async function sampleUntil(sampler: StackSampler, pid: number, fn: string): Promise<PyStackSample> {
  return waitFor(() => {
    const s = sampler.sample(pid);
    if (s.error) throw new Error(s.error);
    return s.threads.find((t) => t.isMain)?.frames[0]?.function === fn && s;
  }, 10000, `${fn} on top of pid ${pid}'s main thread`);
}

describe('Python stacks from outside the process', () => {
  test.each([9, 10, 11, 12, 13])('pyenv Python 3.%i stuck in slow_report(): function, file and line, sleeping and spinning', async (minor) => {
    const sampler = createStackSampler();
    for (const spin of [false, true]) {
      const { child, file } = await stuck(pyenvPython(minor), spin);
      const s = await sampleUntil(sampler, child.pid!, 'slow_report');
      expect(s.pythonVersion).toMatch(new RegExp(`^3\\.${minor}`));
      expect(s.threads).toHaveLength(1);
      const [main] = s.threads;
      expect(main).toMatchObject({ tid: child.pid, isMain: true, truncated: false });
      expect(main.frames.slice(0, 3)).toEqual([
        { file, function: 'slow_report', line: lineOf(STUCK, spin ? 'spinning here' : 'sleeping here') },
        { file, function: 'handle', line: lineOf(STUCK, 'return slow_report') },
        { file, function: '<module>', line: lineOf(STUCK, 'handle(len') },
      ]);
      // A sleeping thread released the GIL; a spinning one holds it (seen within a few samples:
      // one read can fall in the instant the interpreter hands it over on a loaded machine).
      if (spin) await waitFor(() => sampler.sample(child.pid!).threads.find((x) => x.isMain)?.holdsGil === true, 5000, 'the spinning thread holding the GIL');
      else expect(main.holdsGil).toBe(false);
      child.kill('SIGKILL');
    }
  });

  test('a gunicorn sync worker (Debian python3.11) stuck in slow_report() past --timeout: the last stack before its master kills it names slow_report and its line', async () => {
    const dir = tempDir('gunicorn-stack');
    fs.writeFileSync(path.join(dir, 'app.py'), FLASK_STUCK);
    const port = await freePort();
    const master = gunicorn({ dir, match: new RegExp(dir), remove: () => undefined }, port, ['-w', '1', '--timeout', '4']);
    await ready(port);
    const [worker] = await workersOf(master, 1);
    const sampler = createStackSampler();
    get(port, '/report', 30000).catch(() => undefined); // answered by nothing: the worker dies
    const stuckIn = await sampleUntil(sampler, worker, 'slow_report');
    expect(stuckIn.pythonVersion).toMatch(/^3\.11/);
    // Sample as an agent would, until the master's timeout kills the worker. While it exits
    // (SIGABRT handler, interpreter shutdown) its stack empties: the last stack with frames counts.
    let last = stuckIn;
    let samples = 0;
    for (;;) {
      const s = sampler.sample(worker);
      if (s.error) {
        expect(s.error).toMatch(/^PREMORTEM_ERR_PROCESS_GONE: /);
        break;
      }
      samples++;
      if (s.threads.some((t) => t.frames.length)) last = s;
      await sleep(100);
    }
    expect(samples).toBeGreaterThan(5);
    const main = last.threads.find((t) => t.isMain)!;
    expect(main.frames[0]).toEqual({ file: path.join(dir, 'app.py'), function: 'slow_report', line: lineOf(FLASK_STUCK, 'stuck here') });
    expect(main.frames[1]).toEqual({ file: path.join(dir, 'app.py'), function: 'report', line: lineOf(FLASK_STUCK, 'return slow_report') });
    // Flask and gunicorn below it: the worker's request loop.
    expect(main.frames.map((f) => f.function)).toEqual(expect.arrayContaining(['dispatch_request', 'handle_request', 'run']));
    expect(main.frames.some((f) => /gunicorn\/workers\/sync\.py$/.test(f.file))).toBe(true);
  });

  test('a threaded process: every thread, its tid and name, main marked, each in its own function', async () => {
    const SRC = `
import ctypes, threading, time
def name(n): ctypes.CDLL(None).prctl(15, n.encode(), 0, 0, 0)  # PR_SET_NAME: the thread's comm
def wait_a(): name("pm-a"); time.sleep(3600)
def wait_b(): name("pm-b"); ev.wait()
def busy_c():
    name("pm-c")
    while True: sum(range(100))
ev = threading.Event()
for f in (wait_a, wait_b, busy_c): threading.Thread(target=f, daemon=True).start()
time.sleep(0.2)
print("ready", flush=True)
def main_loop(): time.sleep(3600)
main_loop()
`;
    for (const exe of [DEBIAN_PYTHON, pyenvPython(9), pyenvPython(13)]) {
      const child = start(exe, ['-c', SRC], { stdio: ['ignore', 'pipe', 'pipe'] });
      await printed(child, /ready/);
      const sampler = createStackSampler();
      const s = await sampleUntil(sampler, child.pid!, 'main_loop');
      const tids = fs.readdirSync(`/proc/${child.pid}/task`).map(Number).sort();
      expect(s.threads.map((t) => t.tid).sort()).toEqual(tids);
      const byName = Object.fromEntries(s.threads.map((t) => [t.name, t]));
      expect(byName['pm-a'].frames[0].function).toBe('wait_a');
      expect(byName['pm-b'].frames.map((f) => f.function)).toContain('wait_b');
      expect(byName['pm-c'].frames[0].function).toBe('busy_c');
      const main = s.threads.filter((t) => t.isMain);
      expect(main).toHaveLength(1);
      expect(main[0].tid).toBe(child.pid);
      expect(main[0].frames.map((f) => f.function)).toEqual(['main_loop', '<module>']);
      expect(s.threads.filter((t) => t.holdsGil).length).toBeLessThanOrEqual(1);
      child.kill('SIGKILL');
    }
  });

  test('a threaded python in its own PID and mount namespaces (a container): host tids, the main thread marked', async () => {
    const SRC = 'import threading, time\ndef waiter(): time.sleep(3600)\nthreading.Thread(target=waiter, daemon=True).start()\nprint("ready", flush=True)\ndef main_loop(): time.sleep(3600)\nmain_loop()\n';
    for (const exe of [pyenvPython(9), pyenvPython(12)]) {
      const unshare = start('unshare', ['-p', '-f', '-m', '--mount-proc', exe, '-c', SRC], { stdio: ['ignore', 'pipe', 'pipe'] });
      await printed(unshare, /ready/);
      const pid = await waitFor(() => childrenOf(unshare.pid!)[0], 5000, 'the namespaced python');
      expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m); // pid 1 inside
      const s = await sampleUntil(createStackSampler(), pid, 'main_loop');
      const tids = fs.readdirSync(`/proc/${pid}/task`).map(Number).sort();
      expect(s.threads.map((t) => t.tid).sort()).toEqual(tids);
      expect(s.threads.find((t) => t.isMain)).toMatchObject({ tid: pid, frames: [expect.objectContaining({ function: 'main_loop' }), expect.anything()] });
      expect(s.threads.find((t) => !t.isMain)!.frames.map((f) => f.function)).toContain('waiter');
      await killGroup(unshare);
    }
  });

  test('a process whose threads did not run is answered without reading its memory again', async () => {
    const { child } = await stuck(pyenvPython(12), false);
    const sampler = createStackSampler();
    const first = await sampleUntil(sampler, child.pid!, 'slow_report');
    const reads = sampler.stats().memoryReads;
    const again = sampler.sample(child.pid!);
    expect(sampler.stats().memoryReads).toBe(reads);
    expect(sampler.stats().unchanged).toBeGreaterThanOrEqual(1);
    expect(names(again)).toEqual(names(first));
    child.kill('SIGKILL');
  });

  test('open /proc files: bounded by maxOpenFiles, all closed by close(); without any, the same answers', async () => {
    const { child } = await stuck(pyenvPython(12), false);
    const fds = () => fs.readdirSync('/proc/self/fd').length;
    const before = fds();
    const kept = createStackSampler();
    await sampleUntil(kept, child.pid!, 'slow_report');
    expect(fds() - before).toBe(2); // /proc/PID/stat and the one thread's schedstat
    kept.close();
    expect(fds()).toBe(before);
    const none = createStackSampler({ limits: { maxOpenFiles: 0 } });
    const first = await sampleUntil(none, child.pid!, 'slow_report');
    expect(fds()).toBe(before);
    const reads = none.stats().memoryReads;
    expect(names(none.sample(child.pid!))).toEqual(names(first));
    expect(none.stats().memoryReads).toBe(reads); // the CPU check still spares the walk
    child.kill('SIGKILL');
  });

  test('bounds: frames beyond maxFrames are cut (innermost kept) and said so', async () => {
    const SRC = 'import time\ndef deep(n):\n    if n: return deep(n - 1)\n    print("ready", flush=True); time.sleep(3600)\ndeep(300)\n';
    const child = start(pyenvPython(11), ['-c', SRC], { stdio: ['ignore', 'pipe', 'pipe'] });
    await printed(child, /ready/);
    const sampler = createStackSampler({ limits: { maxFrames: 50 } });
    const s = sampler.sample(child.pid!);
    expect(s.error).toBe('');
    expect(s.threads[0].frames).toHaveLength(50);
    expect(s.threads[0].truncated).toBe(true);
    expect(s.threads[0].frames.every((f) => f.function === 'deep')).toBe(true);
    expect(s.threads[0].frames[0].line).toBe(4);
    child.kill('SIGKILL');
  });

  test('errors are samples with a stable code, never exceptions', async () => {
    const sampler = createStackSampler();
    const notPython = start('sleep', ['3600']);
    await waitFor(() => fs.existsSync(`/proc/${notPython.pid}/maps`), 2000, 'sleep');
    expect(sampler.sample(notPython.pid!).error).toMatch(/^PREMORTEM_ERR_NOT_PYTHON: /);
    const old = start(pyenvPython(8), ['-c', 'import time; print("ready", flush=True); time.sleep(3600)'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await printed(old, /ready/);
    expect(sampler.sample(old.pid!).error).toMatch(/^PREMORTEM_ERR_PYTHON_VERSION: .*3\.8/);
    notPython.kill('SIGKILL');
    old.kill('SIGKILL');
    await exited(old);
    expect(sampler.sample(old.pid!)).toMatchObject({ threads: [], error: expect.stringMatching(/^PREMORTEM_ERR_PROCESS_GONE: /) });
    expect(sampler.stats().errors).toBe(3);
  });
});
