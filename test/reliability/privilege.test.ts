/**
 * Reliability 9: least privilege. (a) As root, `premortem run` serves
 * HTTP/WebSocket from a separate process (agent/server/process.ts) that runs as
 * nobody with CapEff = CapPrm = CapAmb = 0 and no_new_privs, while the tracer
 * process keeps its capabilities. (b) The agent runs as a non-root user with
 * only CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (setpriv,
 * ambient set): it loads its programs and tracks a process (runqueue waits and
 * CPU in the live stream), and its server child again holds nothing.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../../agent/run';
import { killGroup, printed, start, stopAll, waitFor } from '../helpers/procs';
import { capsOf, childPids, connect, healthOf, quietLogger, startCliAgent } from '../soak/harness';

const CAP = { DAC_READ_SEARCH: 2, SYS_PTRACE: 19, PERFMON: 38, BPF: 39 };
const AGENT_CAPS = (1n << BigInt(CAP.BPF)) | (1n << BigInt(CAP.PERFMON)) | (1n << BigInt(CAP.SYS_PTRACE)) | (1n << BigInt(CAP.DAC_READ_SEARCH));
const noNewPrivs = (pid: number) => /^NoNewPrivs:\s+1/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));

let running: Running | undefined;
const dirs: string[] = [];
afterAll(async () => {
  await running?.stop();
  await stopAll();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

test('as root: the HTTP/WebSocket process runs as nobody with no capabilities; the tracer keeps them', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-priv-'));
  dirs.push(dataDir);
  running = await runPremortem({ port: 0, dataDir, autoDiscover: false, intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000 }, { logger: quietLogger() });
  const serverPid = (running.server as unknown as { pid: number }).pid;
  expect(serverPid).toBeGreaterThan(0);
  expect(serverPid).not.toBe(process.pid);
  const server = capsOf(serverPid);
  expect(server).toEqual({ eff: 0n, prm: 0n, amb: 0n, uid: 65534 });
  expect(noNewPrivs(serverPid)).toBe(true);
  expect(capsOf(process.pid).eff).not.toBe(0n);
  // It is the process that listens: the socket is among its fds, not ours.
  const port = Number(new URL(running.url!).port);
  const inode = fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
    .find((f) => f[1]?.endsWith(`:${port.toString(16).toUpperCase().padStart(4, '0')}`) && f[3] === '0A')?.[9];
  const holds = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).some((fd) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`; } catch { return false; } });
  expect(holds(serverPid)).toBe(true);
  expect(holds(process.pid)).toBe(false);
  // And it works: health and the stream through IPC.
  const h = await healthOf(running.url!);
  expect(h.features.some((f: { name: string }) => f.name === 'runqlat')).toBe(true);
  const v = await connect(running.url!.replace(/^http/, 'ws') + 'ws');
  v.send({ subscribe: { all: true } });
  await waitFor(() => v.messages.some((m) => m.body === 'delta'), 3000, 'a Delta through the server process');
  v.ws.terminate();
  console.log(`privilege separation: tracer pid ${process.pid} CapEff=0x${capsOf(process.pid).eff.toString(16)}; server pid ${serverPid} uid 65534 CapEff=0 CapPrm=0 NoNewPrivs=1`);
  await running.stop();
  running = undefined;
  expect(fs.existsSync(`/proc/${serverPid}`)).toBe(false);
});

test('as nobody with only CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH: loads, tracks; its server holds nothing', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-priv-nobody-'));
  dirs.push(dataDir);
  fs.chownSync(dataDir, 65534, 65534);
  const busy = start('/usr/bin/python3.11', ['-c', 'print("ready", flush=True)\nwhile True: pass'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const busy2 = start('taskset', ['-c', String(0), '/usr/bin/python3.11', '-c', 'while True: pass'], { stdio: 'ignore' });
  await printed(busy, /ready/);
  require('child_process').execFileSync('taskset', ['-p', '-c', '0', String(busy.pid)], { stdio: 'ignore' });
  const caps = '+bpf,+perfmon,+sys_ptrace,+dac_read_search';
  const agent = await startCliAgent(['--no-auto', '--pid', String(busy.pid), '--interval-ms', '500', '--window-s', '60', '--bundle-window-s', '30', '--data-dir', dataDir], {
    prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', `--inh-caps=${caps}`, `--ambient-caps=${caps}`],
  });
  try {
    const agentCaps = capsOf(agent.child.pid!);
    expect(agentCaps.uid).toBe(65534);
    expect(agentCaps.eff).toBe(AGENT_CAPS);
    const serverPid = await waitFor(() => childPids(agent.child.pid!).find((p) => /server\/child\.js/.test(fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'))), 5000, 'the server child');
    expect(capsOf(serverPid)).toEqual({ eff: 0n, prm: 0n, amb: 0n, uid: 65534 });
    expect(noNewPrivs(serverPid)).toBe(true);
    const h = await healthOf(agent.url);
    expect(h.trackedProcesses).toBeGreaterThanOrEqual(1);
    const v = await connect(agent.url.replace(/^http/, 'ws') + 'ws');
    v.send({ subscribe: { all: true } });
    const b = await waitFor(() => v.messages.filter((m) => m.body === 'delta').flatMap((m) => m.delta!.workers)
      .find((w) => w.pid === busy.pid && w.bucket!.runqCount > 0 && w.bucket!.cpuMs > 0), 20_000, 'runqueue waits of the tracked process');
    v.ws.terminate();
    // Every probe loads (CO-RE relocations to types absent from this kernel must not make
    // libbpf search kernel-module BTF: iterating BTF objects needs CAP_SYS_ADMIN).
    // GC probes per interpreter are not probes of the tracer: uprobes (USDT included) fail with
    // EACCES for an agent with CAP_BPF + CAP_PERFMON only (perf_event_open of the uprobe PMU).
    const off = (h.features as Array<{ name: string; enabled: boolean }>).filter((f) => !f.name.startsWith('gc-') && !f.enabled);
    expect(off).toEqual([]);
    console.log(`non-root agent: uid 65534 CapEff=0x${agentCaps.eff.toString(16)} (bpf, perfmon, sys_ptrace, dac_read_search); server child CapEff=0; tracked pid ${busy.pid}: runq ${b.bucket!.runqCount} waits, cpu ${b.bucket!.cpuMs} ms in one bucket`);
  } finally {
    await killGroup(agent.child, 'SIGTERM');
    await killGroup(busy);
    await killGroup(busy2);
  }
}, 40_000);
