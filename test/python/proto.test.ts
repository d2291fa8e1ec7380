/**
 * Python stacks in the bundle format (proto/premortem.proto PyStackSample,
 * Bundle.stacks = 19): the sampler's plain objects encode and decode unchanged,
 * and a bundle written before the field existed still opens, with no stacks.
 */
import { loadCodec } from '../../proto/node';
import type { PyStackSample } from '../../agent/python/stack-types';

const sample: PyStackSample = {
  tMs: 1_780_000_000_123, pid: 4242, error: '', pythonVersion: '3.11.2',
  threads: [
    {
      tid: 4242, name: 'gunicorn: worke', isMain: true, holdsGil: false, truncated: false,
      frames: [
        { file: '/srv/app/app.py', function: 'slow_report', line: 8 },
        { file: '/srv/app/app.py', function: 'report', line: 12 },
        { file: '/usr/lib/python3/dist-packages/gunicorn/workers/sync.py', function: 'handle_request', line: 179 },
      ],
    },
    { tid: 4250, name: 'pm-a', isMain: false, holdsGil: true, truncated: true, frames: [{ file: '<string>', function: 'spin', line: 0 }] },
  ],
};

test('PyStackSample round-trips through Bundle.stacks', () => {
  const codec = loadCodec();
  const failed: PyStackSample = { tMs: 1_780_000_001_000, pid: 4242, threads: [], error: 'PREMORTEM_ERR_PROCESS_GONE: process 4242 is gone', pythonVersion: '' };
  const back = codec.decodeBundle(codec.encodeBundle({ id: 'b1', stacks: [sample, failed] }));
  expect(back.stacks).toEqual([sample, failed]);
});

test('a bundle without stacks (written before field 19) decodes with none', () => {
  const codec = loadCodec();
  const old = codec.decodeBundle(codec.encodeBundle({ id: 'old', kernel: '6.1' }));
  expect(old).toMatchObject({ id: 'old', kernel: '6.1' });
  expect(old.stacks).toEqual([]);
});
