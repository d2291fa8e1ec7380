/** Sender roles and the killer's sentence in the verdict (pure logic; the real senders are in killer-roles.test.ts). */
import { classifySender, RoleInput, SenderProcess } from '../../agent/deaths/roles';
import { decideVerdict, DeathFacts, SignalFacts } from '../../agent/deaths/verdict';
import { createMasterLogReader, linesAbout, MASTER_LOG_LIMITS, serverTimeout } from '../../agent/deaths/master-log';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ttyName } from '../../agent/deaths/senders';

const T = Date.UTC(2026, 10, 26, 12, 3, 7, 412);
const WORKER = 4242;
const proc = (o: Partial<SenderProcess>): SenderProcess => ({
  pid: 500, comm: 'x', exe: '', cmdline: '', ppid: 1, tty: '', uid: 0, ancestors: [], ...o,
});
const role = (i: Partial<RoleInput>, masterPid = 100) =>
  classifySender({ senderPid: 500, senderComm: 'x', kernel: false, ...i }, { workerPid: WORKER, masterPid });

describe('classifySender', () => {
  test.each([
    [{ senderPid: 100, senderComm: 'gunicorn' }, 'master'],
    [{ senderPid: WORKER, senderComm: 'python3' }, 'self'],
    [{ kernel: true }, 'kernel'],
    [{ senderComm: 'systemd-oomd' }, 'systemd-oomd'],
    [{ senderPid: 1, senderComm: 'systemd' }, 'systemd'],
    [{ senderPid: 1, senderComm: 'process_api' }, 'init'],
    [{ senderComm: 'tini' }, 'init'],
    [{ senderComm: 'kubelet' }, 'kubelet'],
    [{ senderComm: 'containerd-shim' }, 'container-runtime'],
    [{ senderComm: 'conmon' }, 'container-runtime'],
    [{ senderComm: 'crun' }, 'container-runtime'],
    [{ senderComm: 'runc' }, 'container-runtime'],
    [{ senderComm: 'dockerd' }, 'container-runtime'],
    [{ senderComm: 'supervisord' }, 'supervisor'],
    [{ senderComm: 'circusd' }, 'supervisor'],
    [{ senderComm: 'bash' }, 'shell'],
    [{ senderComm: 'kill' }, 'shell'],
    [{ senderComm: 'node' }, 'other'],
  ] as Array<[Partial<RoleInput>, string]>)('%o is %s', (input, expected) => {
    expect(role(input).role).toBe(expected);
  });

  test('the kernel with an OOM record is the OOM killer, scope and cgroup named', () => {
    const r = classifySender({ senderPid: 0, senderComm: '', kernel: true }, { workerPid: WORKER, oom: { scope: 'cgroup', cgroupPath: '/app' } });
    expect(r).toEqual({ role: 'kernel-oom', reason: 'cgroup memory limit', description: 'the kernel OOM killer (cgroup /app)' });
  });

  test('a supervisor written in Python is known by its script, not its interpreter', () => {
    const p = proc({ comm: 'python3', exe: '/usr/bin/python3.11', cmdline: '/usr/bin/python3 /usr/bin/supervisord -c /etc/s.conf' });
    expect(role({ senderComm: 'python3', process: p })).toMatchObject({ role: 'supervisor', description: 'the supervisor supervisord' });
  });

  test('a shell at a terminal or under sshd is an operator; the command it ran is the reason', () => {
    const tty = role({ senderComm: 'bash', process: proc({ comm: 'bash', tty: 'pts/3', cmdline: 'bash -c kill -9 4242' }) });
    expect(tty).toEqual({ role: 'operator', reason: 'bash -c kill -9 4242', description: "an operator's shell (bash on pts/3)" });
    const ssh = role({ senderComm: 'kill', process: proc({ comm: 'kill', cmdline: 'kill -TERM 4242', ancestors: [
      { pid: 40, comm: 'bash', cmdline: '-bash', tty: '' }, { pid: 30, comm: 'sshd', cmdline: 'sshd: ops@notty', tty: '' }] }) });
    expect(ssh).toMatchObject({ role: 'operator', reason: 'kill -TERM 4242', description: "an operator's command (kill under sshd)" });
  });

  test('a shell with no terminal and no session is a script, named with its parent', () => {
    const r = role({ senderComm: 'sh', process: proc({ comm: 'sh', cmdline: 'sh -c pkill -f app', ancestors: [{ pid: 9, comm: 'cron', cmdline: 'cron', tty: '' }] }) });
    expect(r).toMatchObject({ role: 'script', description: 'a shell with no terminal (sh, started by cron: a script or automation)' });
  });

  test("a runtime's reason comes from its command or its parent's: podman kill, docker stop", () => {
    const crun = role({ senderComm: 'crun', process: proc({ comm: 'crun', cmdline: '/usr/bin/crun --root /run/crun kill abc123 9',
      ancestors: [{ pid: 7, comm: 'podman', cmdline: 'podman kill --signal KILL web', tty: 'pts/1' }] }) });
    expect(crun).toMatchObject({ role: 'container-runtime', reason: 'crun kill', description: 'the container runtime (crun)' });
    const gone = role({ senderComm: 'podman', process: proc({ comm: 'podman', cmdline: 'podman stop -t 2 web' }) });
    expect(gone.reason).toBe('podman stop');
  });
});

describe('the killer in the verdict', () => {
  const facts = (signals: SignalFacts[], o: Partial<DeathFacts> = {}): DeathFacts => ({
    exit: { pid: WORKER, comm: 'python3', tMs: T, exitStatus: 0, termSignal: 9, coreDumped: false, ...o.exit }, signals, masterPid: 100, ...o,
  });

  test("gunicorn's timeout: the role is master, the reason timeout, the log line cited", () => {
    const v = decideVerdict(facts([{ tMs: T - 20, sig: 6, senderPid: 100, senderComm: 'gunicorn', kernel: false }], {
      exit: { pid: WORKER, comm: 'gunicorn', tMs: T, exitStatus: 1, termSignal: 0, coreDumped: false },
      master: { pid: 100, comm: 'gunicorn', cmdline: 'gunicorn --timeout 4 app:app', timeoutS: 4, timeoutOption: '--timeout',
        logLines: [`[2026-11-26 12:03:07 +0000] [100] [CRITICAL] WORKER TIMEOUT (pid:${WORKER})`] },
    }));
    expect(v.kind).toBe('killed-by-master');
    expect(v.sender).toMatchObject({ role: 'master', pid: 100, reason: 'timeout' });
    expect(v.summary).toContain(`Why: the master's worker timeout (--timeout 4 s): its log says “[2026-11-26 12:03:07 +0000] [100] [CRITICAL] WORKER TIMEOUT (pid:${WORKER})”.`);
    expect(v.evidence.find((e) => e.what === 'master log')?.value).toContain('WORKER TIMEOUT');
  });

  test('no log: a SIGABRT from a gunicorn master is its timeout, said from what gunicorn does', () => {
    const v = decideVerdict(facts([{ tMs: T - 20, sig: 6, senderPid: 100, senderComm: 'gunicorn', kernel: false }],
      { exit: { pid: WORKER, comm: 'gunicorn', tMs: T, exitStatus: 1, termSignal: 0, coreDumped: false } }));
    expect(v.sender?.reason).toBe('timeout');
    expect(v.summary).toContain("gunicorn's worker timeout: its master sends SIGABRT only");
  });

  test("a master's SIGTERM after it received SIGHUP is a reload; SIGKILL after the grace is named too", () => {
    const reload = decideVerdict(facts([{ tMs: T - 10, sig: 15, senderPid: 100, senderComm: 'uvicorn', kernel: false }], {
      exit: { pid: WORKER, comm: 'python3', tMs: T, exitStatus: 0, termSignal: 0, coreDumped: false },
      masterSignals: [{ tMs: T - 50, sig: 1, senderPid: 77, senderComm: 'bash', kernel: false }],
    }));
    expect(reload).toMatchObject({ kind: 'exited', failure: false, sender: { role: 'master', reason: 'reload' } });
    expect(reload.summary).toContain('the master was reloading: it received SIGHUP from pid 77 (bash)');
    const late = decideVerdict(facts([
      { tMs: T - 30_000, sig: 15, senderPid: 100, senderComm: 'gunicorn', kernel: false },
      { tMs: T - 5, sig: 9, senderPid: 100, senderComm: 'gunicorn', kernel: false },
    ], { masterSignals: [{ tMs: T - 30_100, sig: 15, senderPid: 1, senderComm: 'systemd', kernel: false }] }));
    expect(late.sender).toMatchObject({ role: 'master', reason: 'shutdown, graceful-timeout' });
    expect(late.summary).toMatch(/shutting down: it received SIGTERM from pid 1 \(systemd\).*had not stopped 30\.0 s after its SIGTERM/);
  });

  test('a supervisor that escalated from SIGTERM to SIGKILL: role, grace and sentence', () => {
    const sup = { process: proc({ pid: 300, comm: 'supervisord', cmdline: '/usr/bin/python3 /usr/bin/supervisord' }) };
    const v = decideVerdict(facts([
      { tMs: T - 1010, sig: 15, senderPid: 300, senderComm: 'supervisord', kernel: false, ...sup },
      { tMs: T - 10, sig: 9, senderPid: 300, senderComm: 'supervisord', kernel: false, ...sup },
    ], { masterPid: undefined }));
    expect(v).toMatchObject({ kind: 'killed-by-other', sender: { role: 'supervisor', pid: 300, readAtSignal: true } });
    expect(v.summary).toContain('The SIGKILL came from the supervisor supervisord; it had sent SIGTERM 1.0 s before the SIGKILL.');
  });

  test('the OOM killer and a fault are named by role without another sentence', () => {
    const oom = decideVerdict(facts([], { oom: { tMs: T - 2, scope: 'global', cgroupPath: '', limitBytes: 0, usageBytes: 0, rssBytes: 1 } }));
    expect(oom.sender).toMatchObject({ role: 'kernel-oom', reason: 'host out of memory', description: 'the kernel OOM killer (global)' });
    expect(oom.summary).not.toContain('came from');
    const segv = decideVerdict(facts([{ tMs: T - 1, sig: 11, senderPid: WORKER, senderComm: 'python3', kernel: true }],
      { exit: { pid: WORKER, comm: 'python3', tMs: T, exitStatus: 0, termSignal: 11, coreDumped: false } }));
    expect(segv.sender?.role).toBe('kernel');
  });

  test('max-requests: an exit with no signal, explained by the master log', () => {
    const v = decideVerdict(facts([], {
      exit: { pid: WORKER, comm: 'gunicorn', tMs: T, exitStatus: 0, termSignal: 0, coreDumped: false },
      master: { pid: 100, comm: 'gunicorn', cmdline: '', maxRequests: 50, logLines: [`[${WORKER}] [INFO] Autorestarting worker after current request.`] },
    }));
    expect(v.sender).toBeUndefined();
    expect(v.summary).toContain('Why: max-requests recycling (--max-requests 50)');
  });
});

describe('master log and command line', () => {
  test('lines about one worker, with the reason line before a pid line (celery)', () => {
    const log = ['[1] Booting worker with pid: 4242', '[4242] [INFO] GET /', 'noise', '[ERROR] Hard time limit (5s) exceeded for app.slow[x]',
      "Process 'ForkPoolWorker-1' pid:4242 exited with 'signal 9 (SIGKILL)'", '[42424] other worker'].join('\n');
    expect(linesAbout(log, 4242)).toEqual(['[ERROR] Hard time limit (5s) exceeded for app.slow[x]',
      "Process 'ForkPoolWorker-1' pid:4242 exited with 'signal 9 (SIGKILL)'"]);
  });

  test('timeouts from command lines', () => {
    expect(serverTimeout(['/usr/bin/python3', '/usr/bin/gunicorn', '-t', '4', 'app:app'])).toEqual({ seconds: 4, option: '--timeout' });
    expect(serverTimeout(['gunicorn', '--timeout=30'])).toEqual({ seconds: 30, option: '--timeout' });
    expect(serverTimeout(['uwsgi', '--harakiri', '20'])).toEqual({ seconds: 20, option: '--harakiri' });
    expect(serverTimeout(['python3', '-m', 'uvicorn', '--timeout', '5'])).toBeUndefined();
  });

  test("a master's stderr file is read for its lines; deaths it did not signal share one read, a signalled one gets a fresh read", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-masterlog-'));
    const log = path.join(dir, 'err.log');
    fs.writeFileSync(log, '[100] [CRITICAL] WORKER TIMEOUT (pid:4242)\n');
    const master = spawn('sh', ['-c', `exec sleep 30 2>>${log}`], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      let t = Date.now();
      const reader = createMasterLogReader(() => t);
      expect(reader.factsFor('m', master.pid!, 'sleep', 4242, 0).logLines).toEqual(['[100] [CRITICAL] WORKER TIMEOUT (pid:4242)']);
      fs.appendFileSync(log, '[100] [CRITICAL] WORKER TIMEOUT (pid:4243)\n');
      t += MASTER_LOG_LIMITS.rereadMs - 1;
      expect(reader.factsFor('m', master.pid!, 'sleep', 4243, 0).logLines).toEqual([]); // the shared read predates the line
      expect(reader.reads).toBe(1);
      expect(reader.factsFor('m', master.pid!, 'sleep', 4243, t).logLines).toEqual(['[100] [CRITICAL] WORKER TIMEOUT (pid:4243)']);
      expect(reader.reads).toBe(2);
    } finally {
      master.kill('SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('terminal names from tty_nr', () => {
    expect(ttyName(0)).toBe('');
    expect(ttyName((136 << 8) | 3)).toBe('pts/3');
    expect(ttyName((4 << 8) | 1)).toBe('tty1');
    expect(ttyName((4 << 8) | 64)).toBe('ttyS0');
  });
});
