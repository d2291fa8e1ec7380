/**
 * The stack ring (what survives a worker's death), the frame the verdict
 * names, and the settle queue that judges deaths after one reader sync per
 * batch (pure logic; the real workers are in killer-stack.test.ts).
 */
import { createStackRing } from '../../agent/sampling/stack-ring';
import { decideVerdict, DeathFacts } from '../../agent/deaths/verdict';
import { shortPlace, stackAt } from '../../agent/deaths/last-stack';
import { createSettleQueue, PASSES_AFTER_MARK, tracerBarrier } from '../../agent/deaths/settle';
import type { Tracer } from '../../agent/native';
import type { PyFrame, PyStackSample } from '../../proto/codec';

const T = Date.UTC(2026, 10, 26, 12, 3, 7, 412);
const APP = '/srv/app/app.py';
const FLASK = '/usr/lib/python3/dist-packages/flask/app.py';
const frame = (fn: string, line: number, file = APP): PyFrame => ({ file, function: fn, line });
const sample = (tMs: number, frames: PyFrame[], o: Partial<PyStackSample> = {}): PyStackSample => ({
  tMs, pid: 4242, error: '', pythonVersion: '3.11.2',
  threads: [{ tid: 4242, name: 'gunicorn', isMain: true, holdsGil: false, truncated: false, frames }], ...o,
});
const SLOW = [frame('slow_report', 12), frame('report', 14), frame('dispatch_request', 1469, FLASK)];

describe('stack ring', () => {
  test('keeps distinct stacks with frames, first and last seen; counts empty and failed samples; bounded', () => {
    const ring = createStackRing({ maxStacks: 2, intervalMs: 1000, burstIntervalMs: 200 });
    ring.push(sample(T, [frame('index', 3)]));
    ring.push(sample(T + 1000, SLOW));
    const same = sample(T + 2000, SLOW);
    ring.push(same);
    ring.push({ ...same, tMs: T + 2200 }); // the sampler's answer for a process whose threads did not run
    ring.push(sample(T + 2400, [frame('handle_abort', 200, '/usr/lib/python3/dist-packages/gunicorn/workers/base.py'), ...SLOW]));
    ring.push(sample(T + 2500, [], { threads: [] })); // tearing down
    ring.push(sample(T + 2600, [], { threads: [], error: 'PREMORTEM_ERR_PROCESS_GONE: process 4242 is gone' }));
    const { stacks, sampling } = ring.freeze();
    expect(stacks.map((k) => [k.sample.tMs, k.untilMs, k.sample.threads[0].frames[0].function])).toEqual([
      [T + 1000, T + 2200, 'slow_report'], [T + 2400, T + 2400, 'handle_abort']]);
    expect(sampling).toEqual({ intervalMs: 1000, burstIntervalMs: 200, samples: 7, empty: 1, failed: 1, dropped: 1,
      lastError: 'PREMORTEM_ERR_PROCESS_GONE: process 4242 is gone', lastSampleMs: T + 2600, lastFramesMs: T + 2400 });
  });

  test('the stack current at a time: the newest first seen by then', () => {
    const kept = [{ sample: sample(T, SLOW), untilMs: T + 900 }, { sample: sample(T + 1000, [frame('x', 1)]), untilMs: T + 1000 }];
    expect(stackAt(kept, T + 999)).toBe(kept[0]);
    expect(stackAt(kept, T + 1000)).toBe(kept[1]);
    expect(stackAt(kept, T - 1)).toBe(kept[0]);
  });

  test('places: application files by name, libraries by their package path', () => {
    expect(shortPlace(frame('f', 12))).toBe('app.py:12');
    expect(shortPlace(frame('f', 1469, FLASK))).toBe('flask/app.py:1469');
    expect(shortPlace(frame('f', 706, '/root/.pyenv/versions/3.12.1/lib/python3.12/socket.py'))).toBe('socket.py:706');
  });
});

describe('the frame in the verdict', () => {
  const facts = (o: Partial<DeathFacts>): DeathFacts => ({
    exit: { pid: 4242, comm: 'gunicorn', tMs: T, exitStatus: 1, termSignal: 0, coreDumped: false }, masterPid: 100,
    signals: [{ tMs: T - 20, sig: 6, senderPid: 100, senderComm: 'gunicorn', kernel: false }], ...o,
  });

  test('stuck: the stack before the SIGABRT, not the handler after it; since and until', () => {
    const v = decideVerdict(facts({ stacks: [
      { sample: sample(T - 4520, SLOW), untilMs: T - 15 }, // sampled once more after the signal, unchanged
      { sample: sample(T - 10, [frame('handle_abort', 200, '/usr/lib/python3/dist-packages/gunicorn/workers/base.py'), ...SLOW]), untilMs: T - 10 },
    ] }));
    expect(v.lastFrame).toEqual(SLOW[0]);
    expect(v).toMatchObject({ lastFrameSinceMs: T - 4520, lastFrameUntilMs: T - 20 });
    expect(v.summary).toContain('It was stuck in slow_report() at app.py:12: its Python stack did not change for the last 4.5 s before the SIGABRT.');
    expect(v.evidence.find((e) => e.what === 'python stack')?.value).toBe('slow_report() at app.py:12 ← report() at app.py:14 ← dispatch_request() at flask/app.py:1469');
  });

  test('in a library below application code: both named; only library code: said so', () => {
    const socket = frame('readinto', 706, '/usr/lib/python3.11/socket.py');
    const v = decideVerdict(facts({ stacks: [{ sample: sample(T - 3000, [socket, frame('fetch', 30), frame('report', 14)]), untilMs: T - 100 }] }));
    expect(v.summary).toContain('It was stuck in readinto() at socket.py:706, called from fetch() at app.py:30');
    expect(v.lastFrame).toEqual(socket);
    const idle = decideVerdict(facts({ stacks: [{ sample: sample(T - 3000, [frame('wait', 45, '/usr/lib/python3/dist-packages/gunicorn/workers/sync.py')]), untilMs: T - 100 }] }));
    expect(idle.summary).toContain("was in the server's or a library's code: wait() at gunicorn/workers/sync.py:45.");
  });

  test('a short-lived stack is "its last stack", with how long before the kill; a thread other than main is named', () => {
    const threads = [
      { tid: 4242, name: 'main', isMain: true, holdsGil: false, truncated: false, frames: [] },
      { tid: 4250, name: 'worker-1', isMain: false, holdsGil: true, truncated: false, frames: [frame('crunch', 7)] },
    ];
    const v = decideVerdict(facts({ stacks: [{ sample: { ...sample(T - 800, []), threads }, untilMs: T - 800 }] }));
    expect(v.summary).toContain('Its last Python stack (thread worker-1), 0.8 s before the SIGABRT, was in crunch() at app.py:7.');
  });

  test('no stacks: no sentence and no frame', () => {
    const v = decideVerdict(facts({}));
    expect(v.lastFrame).toBeUndefined();
    expect(v.summary).not.toMatch(/stack/);
  });
});

describe('settle queue', () => {
  /** A fake record reader: passes counted, paused or not, syncs that succeed only when it runs. */
  const reader = () => {
    const r = { polls: 0, paused: false, flushes: 0, syncCalls: 0 };
    const tracer = {
      stats: () => ({ polls: r.polls, paused: r.paused }),
      flush: () => { r.flushes++; },
      sync: () => { r.syncCalls++; return !r.paused; },
    } as unknown as Tracer;
    return { r, barrier: tracerBarrier(tracer) };
  };

  test('deaths due together are judged together; a reader that ran on is trusted with a flush, no blocking sync', async () => {
    const { r, barrier } = reader();
    const judged: Array<[number[], boolean]> = [];
    const q = createSettleQueue<number>(barrier, (items, synced) => judged.push([items, synced]));
    const now = Date.now();
    for (let i = 0; i < 50; i++) q.add(i, now + 10);
    r.polls += PASSES_AFTER_MARK;
    await new Promise((res) => setTimeout(res, 40));
    expect(judged).toEqual([[[...Array(50).keys()], true]]);
    expect(r).toMatchObject({ flushes: 1, syncCalls: 0 });
    expect(q.stats()).toMatchObject({ batches: 1, syncs: 0, unsynced: 0, pending: 0 });
    q.stop();
  });

  test('a reader that did not run since: one sync for the batch; paused, the batch waits until it runs again', async () => {
    const { r, barrier } = reader();
    const judged: Array<[number[], boolean]> = [];
    const q = createSettleQueue<number>(barrier, (items, synced) => judged.push([items, synced]), { retryMs: 20, maxWaitMs: 10_000 });
    r.paused = true;
    for (let i = 0; i < 5; i++) q.add(i, Date.now() + 5);
    await new Promise((res) => setTimeout(res, 80));
    expect(judged).toEqual([]);
    expect(r.syncCalls).toBeGreaterThanOrEqual(2);
    r.paused = false;
    await new Promise((res) => setTimeout(res, 60));
    expect(judged).toEqual([[[0, 1, 2, 3, 4], true]]);
    expect(q.stats()).toMatchObject({ batches: 1, unsynced: 0 });
    q.stop();
  });

  test('a reader that stays behind: judged after maxWaitMs, counted as unsynced', async () => {
    const { r, barrier } = reader();
    r.paused = true;
    const judged: Array<[number[], boolean]> = [];
    const q = createSettleQueue<number>(barrier, (items, synced) => judged.push([items, synced]), { retryMs: 10, maxWaitMs: 50 });
    q.add(1, Date.now());
    await new Promise((res) => setTimeout(res, 150));
    expect(judged).toEqual([[[1], false]]);
    expect(q.stats()).toMatchObject({ unsynced: 1, batches: 1 });
    q.stop();
  });
});
