/** The run flags of issue 15 become agent options; contradictions are refused naming the flags (pure). */
import { parseCommandLine, UsageError } from '../../agent/cli/args';
import { runOptions } from '../../agent/cli/commands/run';
import { formatRequests, formatTimeBreakdown } from '../../agent/cli/why';
import { zeroShares } from '../../agent/deaths/why-time';

test('--no-requests and --request-query', () => {
  expect(runOptions(parseCommandLine(['run', '--no-requests'], {}))).toMatchObject({ requests: false });
  expect(runOptions(parseCommandLine(['run', '--request-query'], {}))).toMatchObject({ requestQuery: true });
  const both = () => runOptions(parseCommandLine(['run', '--no-requests', '--request-query'], {}));
  expect(both).toThrow(UsageError);
  expect(both).toThrow(/--no-requests and --request-query contradict each other/);
});

test('show: the breakdown as a table with bars and details, threads, requests or why there are none', () => {
  const lines = formatTimeBreakdown({
    windowMs: 30_000, endMs: 0, windowSource: 'gunicorn --timeout 30', total: { ...zeroShares(), blockedIoNs: 27.9e9, runqWaitNs: 1.1e9, onCpuNs: 1e9 },
    threads: 2, gcNs: 0, majorFaults: 0, blockedSyscall: 'read', blockedDevice: 'vda', bioOps: 212, bioLatMaxUs: 1.9e6,
    bioReadBytes: 1, bioWriteBytes: 0, scaled: false,
    threadTimes: [{ tid: 8, name: 'worker', isMain: false, time: { ...zeroShares(), blockedIoNs: 27.9e9 } },
      { tid: 7, name: 'gunicorn', isMain: true, time: zeroShares() }],
  });
  expect(lines[0]).toBe('last 30 s (gunicorn --timeout 30), 2 threads (thread time)');
  expect(lines.find((l) => l.includes('blocked (D state)'))).toMatch(/27\.9 s  █{22}·{2}  vda, 212 block requests, longest 1\.9 s, in read\(\)$/);
  expect(lines).toContain('    8 worker                   D 27.9 s');
  expect(lines).toContain('    (1 of them idle)');
  expect(formatRequests([], 'not captured (--no-requests)')).toEqual(['requests  not captured (--no-requests)']);
  expect(formatRequests([], '')).toEqual(['requests  none in flight']);
  expect(formatRequests([{ method: 'GET', path: '/r', protocol: 'HTTP/1.1', startedMs: 0, ageMs: 31_200, tid: 7, fd: 9, truncated: false, queryDropped: true }], ''))
    .toEqual(['requests in flight (1)', '  GET /r (query dropped)                   HTTP/1.1    31.2 s  fd 9, thread 7']);
});
