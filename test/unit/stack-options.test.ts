/** Stack sampling options (config and `run --stack-interval-ms`) and `show`'s killer and stack sections (pure). */
import { resolveOptions, DEFAULTS } from '../../agent/config';
import { parseCommandLine } from '../../agent/cli/args';
import { runOptions } from '../../agent/cli/commands/run';
import { formatBundle } from '../../agent/cli/format';
import { loadCodec } from '../../proto/node';
import type { Bundle } from '../../proto/codec';

describe('options', () => {
  test('defaults: 1 s per worker, 200 ms bursts for 5 s, 8 stacks kept', () => {
    expect(DEFAULTS).toMatchObject({ stackIntervalMs: 1000, stackBurstIntervalMs: 200, stackBurstMs: 5000, maxStacksPerWorker: 8 });
  });

  test.each([
    [{ stackIntervalMs: 50 }, /stackIntervalMs must be 0 \(off\) or at least 100 ms, got 50/],
    [{ stackIntervalMs: 500, stackBurstIntervalMs: 800 }, /stackBurstIntervalMs must be between 50 ms and stackIntervalMs \(500 ms\), got 800/],
    [{ maxStacksPerWorker: 0 }, /maxStacksPerWorker must be between 1 and 64, got 0/],
    [{ stackBurstMs: -1 }, /stackBurstMs must be a whole number of ms >= 0, got -1/],
  ])('%o is refused with the reason', (input, re) => {
    expect(() => resolveOptions(input)).toThrow(re);
  });

  test('0 turns sampling off whatever the burst settings', () => {
    expect(resolveOptions({ stackIntervalMs: 0, stackBurstIntervalMs: 5 }).stackIntervalMs).toBe(0);
  });

  test('run --stack-interval-ms: the rate, a burst never slower than it, errors named by the flag', () => {
    const opts = (...args: string[]) => runOptions(parseCommandLine(['run', '--no-server', ...args], {}));
    expect(opts('--stack-interval-ms', '5000')).toMatchObject({ stackIntervalMs: 5000, stackBurstIntervalMs: 200 });
    expect(opts('--stack-interval-ms', '100')).toMatchObject({ stackIntervalMs: 100, stackBurstIntervalMs: 100 });
    expect(opts('--stack-interval-ms', '0')).toMatchObject({ stackIntervalMs: 0 });
    expect(() => opts('--stack-interval-ms', '20')).toThrow(/--stack-interval-ms must be 0 \(off\) or at least 100 ms, got 20/);
  });
});

describe('premortem show', () => {
  const T = Date.UTC(2026, 10, 26, 12, 3, 7, 412);
  const frames = [
    { file: '/srv/app.py', function: 'slow_report', line: 8 }, { file: '/srv/app.py', function: 'report', line: 12 },
  ];
  const handler = { file: '/usr/lib/python3/dist-packages/gunicorn/workers/base.py', function: 'handle_abort', line: 200 };
  const bundle = (o: Partial<Bundle> = {}): Bundle => loadCodec().normalize<Bundle>('Bundle', {
    id: 'x', worker: { pid: 4242, comm: 'gunicorn' },
    verdict: {
      kind: 'killed-by-master', tMs: T, summary: 's', lastFrame: frames[0], lastFrameSinceMs: T - 4000, lastFrameUntilMs: T - 20,
      sender: { role: 'master', pid: 100, comm: 'gunicorn', exe: '/usr/bin/python3.11', cmdline: 'gunicorn -t 3 app:app', reason: 'timeout',
        description: 'its master (gunicorn, pid 100)', readAtSignal: true, ancestors: ['bash[90]'] },
    },
    stacks: [
      { tMs: T - 4000, pid: 4242, pythonVersion: '3.11.2', threads: [{ tid: 4242, name: 'gunicorn', isMain: true, frames }] },
      { tMs: T - 10, pid: 4242, pythonVersion: '3.11.2', threads: [{ tid: 4242, name: 'gunicorn', isMain: true, frames: [handler, ...frames] },
        { tid: 4250, name: 'heartbeat', frames: [] }] },
    ],
    stackSampling: { intervalMs: 1000, burstIntervalMs: 200, samples: 6, empty: 1, failed: 1, lastFramesMs: T - 10, lastSampleMs: T },
    ...o,
  });

  test('the killer, then the stack when the kill began and the last one, innermost frame first, per thread', () => {
    const text = formatBundle(bundle());
    expect(text).toContain('killer    master: its master (gunicorn, pid 100) (timeout)');
    expect(text).toContain('          command: gunicorn -t 3 app:app');
    expect(text).toContain('          parents: bash[90]');
    expect(text).toContain('python    6 samples (every 1000 ms, 200 ms in bursts), 1 empty, 1 failed; the last stack with frames was still current at 12:03:07.402');
    const at = text.indexOf('stack when the kill began, first sampled at 12:03:03.412, Python 3.11.2');
    const last = text.indexOf('last stack, first sampled at 12:03:07.402');
    expect(at).toBeGreaterThan(0);
    expect(last).toBeGreaterThan(at);
    const lastLines = text.slice(last).split('\n');
    expect(lastLines.slice(1, 6)).toEqual([
      '  thread 4242 gunicorn (main)',
      `    ${'handle_abort()'.padEnd(28)} ${handler.file}:200`,
      `    ${'slow_report()'.padEnd(28)} /srv/app.py:8`,
      `    ${'report()'.padEnd(28)} /srv/app.py:12`,
      '  thread 4250 heartbeat',
    ]);
  });

  test('old bundles (no sampling) print neither section; sampling without frames says so', () => {
    const old = formatBundle(bundle({ stackSampling: undefined, stacks: [], verdict: { kind: 'exited', tMs: T, summary: 's' } as Bundle['verdict'] }));
    expect(old).not.toMatch(/^killer|^python/m);
    const none = formatBundle(bundle({ stacks: [], stackSampling: { intervalMs: 1000, burstIntervalMs: 200, samples: 2, empty: 0, failed: 2,
      lastError: 'PREMORTEM_ERR_PYTHON_VERSION: no stack layout for Python 3.8', lastSampleMs: T, lastFramesMs: 0, dropped: 0 } }));
    expect(none).toContain('python    no stack with frames was sampled: 2 samples');
    expect(none).toContain('last error PREMORTEM_ERR_PYTHON_VERSION');
  });
});
