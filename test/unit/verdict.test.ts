/** Verdict rules over recorded evidence sequences (pure logic). */
import { decideVerdict, DeathFacts } from '../../agent/deaths/verdict';

const T = Date.UTC(2026, 10, 26, 12, 3, 7, 412);
const exit = (o: Partial<DeathFacts['exit']> = {}) => ({ pid: 4242, comm: 'gunicorn', tMs: T, exitStatus: 0, termSignal: 0, coreDumped: false, ...o });
const MiB = 1 << 20;

describe('decideVerdict', () => {
  test('an OOM victim record decides oom-killed, with limit, usage and the RSS rise in the summary', () => {
    const v = decideVerdict({
      exit: exit({ termSignal: 9 }),
      signals: [{ tMs: T - 1, sig: 9, senderPid: 4242, senderComm: 'python', kernel: true }],
      oom: { tMs: T - 2, scope: 'cgroup', cgroupPath: '/demo', limitBytes: 512 * MiB, usageBytes: 511 * MiB, rssBytes: 505 * MiB },
      rss: [[T - 40_000, 180 * MiB], [T - 20_000, 350 * MiB], [T - 1000, 505 * MiB]],
      masterPid: 100,
    });
    expect(v).toMatchObject({ kind: 'oom-killed', oomScope: 'cgroup', limitBytes: 512 * MiB, failure: true, signalName: 'SIGKILL' });
    expect(v.summary).toBe('RSS rose from 180 MiB to 505 MiB in 39 s; the cgroup /demo limit is 512 MiB (usage 511 MiB); the kernel OOM-killed pid 4242 at 12:03:07.410.');
  });

  test("gunicorn's timeout: SIGABRT from the master then exit(1) is killed-by-master, sender named", () => {
    const v = decideVerdict({
      exit: exit({ exitStatus: 1 }),
      signals: [{ tMs: T - 30, sig: 6, senderPid: 100, senderComm: 'gunicorn', kernel: false }],
      masterPid: 100,
    });
    expect(v).toMatchObject({ kind: 'killed-by-master', senderPid: 100, senderComm: 'gunicorn', signalName: 'SIGABRT', failure: true });
    expect(v.summary).toMatch(/master pid 100 \(gunicorn\) sent SIGABRT to worker pid 4242/);
  });

  test('SIGKILL from the master after SIGABRT is killed-by-master with both signals as evidence', () => {
    const v = decideVerdict({
      exit: exit({ termSignal: 9 }),
      signals: [
        { tMs: T - 30_000, sig: 6, senderPid: 100, senderComm: 'gunicorn', kernel: false },
        { tMs: T - 5, sig: 9, senderPid: 100, senderComm: 'gunicorn', kernel: false },
      ],
      masterPid: 100,
    });
    expect(v.kind).toBe('killed-by-master');
    expect(v.evidence.map((e) => e.what)).toEqual(['signal sender', 'earlier signal', 'sender role']);
  });

  test('a SIGKILL from another process is killed-by-other, sender named', () => {
    const v = decideVerdict({
      exit: exit({ termSignal: 9 }),
      signals: [{ tMs: T - 3, sig: 9, senderPid: 777, senderComm: 'kill', kernel: false }],
      masterPid: 100,
    });
    expect(v).toMatchObject({ kind: 'killed-by-other', senderPid: 777, senderComm: 'kill' });
  });

  test('SIGSEGV raised by the kernel on a fault is crashed', () => {
    const v = decideVerdict({
      exit: exit({ termSignal: 11, coreDumped: true }),
      signals: [{ tMs: T - 1, sig: 11, senderPid: 4242, senderComm: 'python', kernel: true }],
      masterPid: 100,
    });
    expect(v).toMatchObject({ kind: 'crashed', signalName: 'SIGSEGV', coreDumped: true });
    expect(v.summary).toMatch(/crashed with SIGSEGV raised by the kernel on a fault.*core was dumped/);
  });

  test('abort() in the process itself is crashed', () => {
    const v = decideVerdict({ exit: exit({ termSignal: 6 }), signals: [{ tMs: T - 1, sig: 6, senderPid: 4242, senderComm: 'python', kernel: false }] });
    expect(v.kind).toBe('crashed');
  });

  test('a clean exit with no signal is a planned exit, not a failure (max-requests recycling)', () => {
    const v = decideVerdict({ exit: exit(), signals: [], masterPid: 100 });
    expect(v).toMatchObject({ kind: 'exited', exitCode: 0, failure: false });
    expect(v.summary).toMatch(/exited on its own with code 0/);
  });

  test('SIGTERM from the master and exit 0 is a graceful stop', () => {
    const v = decideVerdict({ exit: exit(), signals: [{ tMs: T - 100, sig: 15, senderPid: 100, senderComm: 'gunicorn', kernel: false }], masterPid: 100 });
    expect(v).toMatchObject({ kind: 'exited', failure: false, senderPid: 100 });
  });

  test("uWSGI's graceful stop: SIGINT from the master then exit 30 is planned, not a failure", () => {
    const v = decideVerdict({ exit: exit({ exitStatus: 30 }), signals: [{ tMs: T - 50, sig: 2, senderPid: 100, senderComm: 'uwsgi', kernel: false }], masterPid: 100 });
    expect(v).toMatchObject({ kind: 'exited', failure: false, exitCode: 30, senderPid: 100 });
  });

  test('SIGKILL from a master that was itself asked to stop is part of the stop, not a failure', () => {
    const v = decideVerdict({
      exit: exit({ termSignal: 9 }), masterPid: 100,
      signals: [{ tMs: T - 5, sig: 9, senderPid: 100, senderComm: 'celery', kernel: false }],
      masterSignals: [{ tMs: T - 3000, sig: 15, senderPid: 1, senderComm: 'systemd', kernel: false }],
    });
    expect(v).toMatchObject({ kind: 'killed-by-master', failure: false, senderPid: 100 });
    expect(v.summary).toMatch(/sent SIGTERM by pid 1 \(systemd\).*during the shutdown: a planned stop/);
    // Without the master's own stop request the same SIGKILL is a failure (e.g. gunicorn's timeout).
    expect(decideVerdict({ exit: exit({ termSignal: 9 }), masterPid: 100, signals: [{ tMs: T - 5, sig: 9, senderPid: 100, senderComm: 'gunicorn', kernel: false }] }))
      .toMatchObject({ kind: 'killed-by-master', failure: true });
  });

  test('a stop request from someone else followed by a non-zero exit stays a failure', () => {
    const v = decideVerdict({ exit: exit({ exitStatus: 1 }), signals: [{ tMs: T - 50, sig: 15, senderPid: 1, senderComm: 'systemd', kernel: false }], masterPid: 100 });
    expect(v).toMatchObject({ kind: 'exited', failure: true, exitCode: 1 });
  });

  test.each([[15, 'SIGTERM', 'systemd'], [2, 'SIGINT', 'bash'], [1, 'SIGHUP', 'sshd']])(
    'a plain server dying of %s (%s from %s, the default action) is a planned stop',
    (sig, name, comm) => {
      const v = decideVerdict({ exit: exit({ termSignal: sig }), signals: [{ tMs: T - 5, sig, senderPid: 1, senderComm: comm, kernel: false }] });
      expect(v).toMatchObject({ kind: 'exited', failure: false, signal: sig, senderPid: 1, senderComm: comm });
      expect(v.summary).toMatch(new RegExp(`stopped with ${name} by pid 1 \\(${comm}\\).*a planned stop`));
    });

  test('SIGINT re-raised by python at itself after KeyboardInterrupt: the stop is credited to its first sender', () => {
    const v = decideVerdict({ exit: exit({ termSignal: 2 }), signals: [
      { tMs: T - 40, sig: 2, senderPid: 900, senderComm: 'bash', kernel: false },
      { tMs: T - 2, sig: 2, senderPid: 4242, senderComm: 'python3', kernel: false },
    ] });
    expect(v).toMatchObject({ kind: 'exited', failure: false, senderPid: 900, senderComm: 'bash' });
  });

  test('SIGKILL from a shell stays a failure (killed-by-other)', () => {
    const v = decideVerdict({ exit: exit({ termSignal: 9 }), signals: [{ tMs: T - 5, sig: 9, senderPid: 777, senderComm: 'bash', kernel: false }] });
    expect(v).toMatchObject({ kind: 'killed-by-other', failure: true });
  });

  test('a non-zero exit code is exited, and a failure', () => {
    expect(decideVerdict({ exit: exit({ exitStatus: 3 }), signals: [] })).toMatchObject({ kind: 'exited', failure: true, exitCode: 3 });
  });

  test('SIGKILL with no sender seen is unknown, never a guess', () => {
    const v = decideVerdict({ exit: exit({ termSignal: 9 }), signals: [], lostRecords: 12 });
    expect(v.kind).toBe('unknown');
    expect(v.summary).toMatch(/no sender was seen \(12 records were lost\)/);
  });

  test('a kernel SIGKILL without an OOM record is unknown', () => {
    const v = decideVerdict({ exit: exit({ termSignal: 9 }), signals: [{ tMs: T - 1, sig: 9, senderPid: 0, senderComm: '', kernel: true }] });
    expect(v.kind).toBe('unknown');
  });

  test('signals older than the look-back do not count', () => {
    const v = decideVerdict({ exit: exit({ termSignal: 9 }), signals: [{ tMs: T - 120_000, sig: 9, senderPid: 777, senderComm: 'kill', kernel: false }] });
    expect(v.kind).toBe('unknown');
  });
});
