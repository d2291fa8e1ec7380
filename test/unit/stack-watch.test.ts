/** The stack watch's schedule (rates, bursts and their cap, pass bounds, freeze) over a fake registry and sampler (pure). */
import { resolveOptions } from '../../agent/config';
import { createStackWatch, STACK_PASS } from '../../agent/sampling/stacks';
import type { StackSampler } from '../../agent/python/stacks';
import type { Registry } from '../../agent/registry/registry';
import type { WorkerState } from '../../agent/registry/state';
import type { Marker, PyStackSample } from '../../proto/codec';
import type { SignalFacts } from '../../agent/deaths/verdict';
import { createErrorCounter } from '../../agent/core/errors';
import { createLogger } from '../../agent/log';

function setup(n: number, opts = {}, sample?: (pid: number, t: number) => Partial<PyStackSample>) {
  let t = 1_000_000;
  const workers = new Map<string, WorkerState>();
  for (let i = 0; i < n; i++) {
    const pid = 1000 + i;
    workers.set(`${pid}:1`, { key: `${pid}:1`, alive: true, judging: false, signals: [] as SignalFacts[],
      identity: { pid, startTicks: 1, role: 'worker' } } as unknown as WorkerState);
  }
  const taken: Array<[number, number]> = [];
  const sampler: StackSampler = {
    sample(pid): PyStackSample {
      taken.push([pid, t]);
      return { tMs: t, pid, error: '', pythonVersion: '3.11', threads: [{ tid: pid, name: 'w', isMain: true, holdsGil: false, truncated: false,
        frames: [{ file: '/a.py', function: `f${Math.floor(t / 10_000)}`, line: 1 }] }], ...sample?.(pid, t) };
    },
    forget: () => undefined, close: () => undefined, stats: () => ({}) as ReturnType<StackSampler['stats']>,
  };
  const watch = createStackWatch({ options: resolveOptions(opts), registry: { workers } as unknown as Registry, sampler,
    errors: createErrorCounter(createLogger({ level: 'error' })), now: () => t });
  /** Runs a pass every 50 ms for `ms`. */
  const run = (ms: number) => {
    for (const end = t + ms; t < end; t += 50) watch.passNow();
  };
  const countOf = (pid: number) => taken.filter(([p]) => p === pid).length;
  return { watch, workers, taken, run, countOf, now: () => t, advance: (ms: number) => { t += ms; } };
}

test('each worker once per interval, spread over it (not all at once)', () => {
  const { run, taken, countOf } = setup(100);
  run(10_000);
  for (let i = 0; i < 100; i++) expect(countOf(1000 + i)).toBeGreaterThanOrEqual(9);
  expect(taken.length).toBeLessThanOrEqual(100 * 11);
  // Spread: no pass of the steady state takes more than a fifth of the pool.
  const perPass = new Map<number, number>();
  for (const [, at] of taken.filter(([, at]) => at > 1_002_000)) perPass.set(at, (perPass.get(at) ?? 0) + 1);
  expect(Math.max(...perPass.values())).toBeLessThanOrEqual(20);
});

test('a stop or abort signal makes the worker due at once and samples it at the burst rate for stackBurstMs', () => {
  const { run, workers, countOf, watch } = setup(2);
  run(2000);
  const before = countOf(1000);
  workers.get('1000:1')!.signals.push({ tMs: 0, sig: 6, senderPid: 1, senderComm: 'gunicorn', kernel: false });
  run(5000);
  expect(countOf(1000) - before).toBeGreaterThanOrEqual(5000 / 200 - 1);
  expect(countOf(1001)).toBeLessThanOrEqual(8);
  expect(watch.stats().bursts).toBe(1);
});

test('warning markers start bursts, at most maxBurstWorkers at once; the rest are counted', () => {
  const { watch, run, countOf } = setup(40);
  run(1000); // every worker known
  const markers = Array.from({ length: 40 }, (_, i) => ({ pid: 1000 + i, startTicks: 1, severity: 'warning' }) as Marker);
  watch.onMarkers([{ pid: 1000, startTicks: 1, severity: 'info' } as Marker]); // info: no burst
  expect(watch.stats().bursts).toBe(0);
  watch.onMarkers(markers);
  expect(watch.stats()).toMatchObject({ bursts: STACK_PASS.maxBurstWorkers, burstsRefused: 40 - STACK_PASS.maxBurstWorkers });
  const before = Array.from({ length: 40 }, (_, i) => countOf(1000 + i));
  run(4000);
  const during = before.map((b, i) => countOf(1000 + i) - b);
  expect(during.filter((n) => n >= 15)).toHaveLength(STACK_PASS.maxBurstWorkers);
});

test('a pass takes at most maxSamplesPerPass samples; the overdue rest are counted and taken next', () => {
  const { watch, advance } = setup(STACK_PASS.maxSamplesPerPass + 36, { stackIntervalMs: 100, stackBurstIntervalMs: 100 });
  watch.passNow(); // every worker known, due within the next 100 ms
  advance(150); // ...and all of them overdue
  expect(watch.passNow()).toBe(STACK_PASS.maxSamplesPerPass);
  expect(watch.stats().deferred).toBe(36);
  expect(watch.passNow()).toBe(36);
});

test('sampling takes at most budgetMsPerSecond of each second, however many workers are due', () => {
  const spin = (ms: number) => { const end = process.hrtime.bigint() + BigInt(ms * 1e6); while (process.hrtime.bigint() < end); };
  const { run, taken, watch } = setup(200, {}, () => { spin(2); return {}; }); // 2 ms per sample: 200 workers want 400 ms/s
  run(3000);
  const perSecond = (taken.length / 3) * 2; // ms of sampling per second
  expect(perSecond).toBeLessThanOrEqual(STACK_PASS.budgetMsPerSecond * 1.3 + 2 * STACK_PASS.maxSamplesPerPass / 3);
  expect(watch.stats().deferred).toBeGreaterThan(0);
});

test('a process that is not a Python this agent reads is asked again only every unreadableRetryMs', () => {
  const { run, countOf } = setup(2, {}, (pid) => (pid === 1000 ? { threads: [], error: 'PREMORTEM_ERR_NOT_PYTHON: /usr/bin/sleep has no _PyRuntime symbol' } : {}));
  run(20_000);
  expect(countOf(1000)).toBe(1);
  expect(countOf(1001)).toBeGreaterThanOrEqual(19);
  run(STACK_PASS.unreadableRetryMs);
  expect(countOf(1000)).toBe(2);
});

test('freeze hands over the ring and forgets the worker; dead workers are swept', () => {
  const { watch, workers, run } = setup(2);
  run(25_000);
  const w = workers.get('1000:1')!;
  const frozen = watch.freeze(w)!;
  expect(frozen.stacks.map((k) => k.sample.threads[0].frames[0].function)).toEqual(['f100', 'f101', 'f102']);
  expect(frozen.sampling.samples).toBeGreaterThanOrEqual(24);
  expect(watch.freeze(w)).toBeUndefined();
  workers.get('1001:1')!.alive = false;
  run(6000);
  expect(watch.stats().workers).toBe(1); // 1000 came back (still alive in the fake registry), 1001 swept
});
