/**
 * Per-program cost (item 5): ns per kernel event of every premortem BPF
 * program, next to the libbpf-tools that users would run instead, attached
 * at the same time to the same load, from the kernel's own accounting
 * (kernel.bpf_stats_enabled: run_time_ns / run_cnt per program, read with
 * `bpftool prog show -j`; the sysctl is restored afterwards).
 *
 * Which program belongs to whom comes from the prog fds each process holds
 * (/proc/PID/fdinfo). The load, all bounded in time, on 127.0.0.1:
 *   - wrk -t2 -c32 on gunicorn + Flask (2 sync workers, --max-requests
 *     recycling) tracked by the agent: scheduler, TCP, fork/exit, faults;
 *   - dd oflag=direct to /var/tmp: block I/O;
 *   - a tracked python3.11 that touches 128 MiB and churns the GC: faults,
 *     RSS changes, GC probes (USDT: run_time_ns does not see the uprobe trap).
 * run_time_ns excludes the tracepoint's own dispatch, for both sides alike.
 */
import * as fs from 'fs';
import * as path from 'path';
import { startAgent, waitTracked } from './agentproc';
import { bpfObjectsOf, ensureTracefs, killGroup, log, output, round, run, setSysctl, sleep, start, waitFor, wrk } from './lib';
import { progStats } from './bpfstats';
import { AppDir, gunicornFlask } from './services';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
const TOOLS = ['runqlat', 'runqslower', 'tcpstates', 'biolatency', 'exitsnoop'];

export interface ProgCost {
  owner: string;          // 'premortem/<probe>' or the tool's name
  program: string;
  hook: string;
  events: number;
  nsPerEvent: number | null;
}

export interface ProgCostResult {
  seconds: number;
  programs: ProgCost[];
  /** Sum over every premortem program on one scheduler hook: the cost of that hook's event. */
  schedulerHooks: Array<{ hook: string; premortemNsPerEvent: number | null; premortemPrograms: string[]; libbpfToolsNsPerEvent: number | null; libbpfToolsPrograms: string[] }>;
}

/** program name -> { probe, hook } from the sources: SEC("tp_btf/x") int BPF_PROG(name, ...). */
function premortemPrograms(): Map<string, { probe: string; hook: string }> {
  const dir = path.resolve(__dirname, '..', '..', 'bpf');
  const out = new Map<string, { probe: string; hook: string }>();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.bpf.c'))) {
    const src = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const m of src.matchAll(/SEC\("([^"]+)"\)\s*\n\s*int\s+BPF_(?:PROG|USDT)\((\w+)/g)) {
      const hook = m[1] === 'usdt' ? `usdt python:${m[2].replace('_', '__')}` : m[1].replace(/^(tp_btf|raw_tp|tp)\//, '');
      out.set(m[2], { probe: f.replace('.bpf.c', ''), hook });
    }
  }
  return out;
}

/** libbpf-tools program names -> the hook they sit on (tp_btf and raw_tp variants). */
function toolHook(name: string): string {
  if (/wakeup_new/.test(name)) return 'sched_wakeup_new';
  if (/wakeup/.test(name)) return 'sched_wakeup';
  if (/switch/.test(name)) return 'sched_switch';
  if (/set_state/.test(name)) return 'inet_sock_set_state';
  if (/process_exit/.test(name)) return 'sched_process_exit';
  if (/block_rq_issue|rq_issue/.test(name)) return 'block_rq_issue';
  if (/block_rq_insert|rq_insert/.test(name)) return 'block_rq_insert';
  if (/block_rq_complete|rq_complete/.test(name)) return 'block_rq_complete';
  return name;
}

const TOUCH_PY = `
import gc, mmap, sys, time
time.sleep(float(sys.argv[1]))  # the agent discovers and tracks this process first
for _ in range(2):
    m = mmap.mmap(-1, 64 << 20)
    for i in range(0, 64 << 20, 4096): m[i] = 1
    m.close()
live = [[i] for i in range(100000)]
for i in range(300000):
    a = []; b = [a]; a.append(b)
`;

export async function runProgCost(app: AppDir, o: { seconds: number }): Promise<ProgCostResult> {
  ensureTracefs();
  const restore = setSysctl(SYSCTL, '1');
  const touchPath = path.join(app.dir, 'touch_gc.py');
  fs.writeFileSync(touchPath, TOUCH_PY);
  const ddFile = path.join('/var/tmp', `pm-bench-dd-${process.pid}.bin`);
  const svc = await gunicornFlask(app, { workers: 2, args: ['--max-requests', '1000', '--max-requests-jitter', '100'] });
  const agent = await startAgent({ match: app.match });
  const tools: Array<{ name: string; pid: number; stop: () => Promise<void> }> = [];
  try {
    for (const name of TOOLS) {
      const c = start(`/usr/sbin/${name}`, [], { stdio: ['ignore', 'ignore', 'pipe'] });
      const out = output(c);
      await waitFor(() => {
        if (c.exitCode !== null) throw new Error(`${name} exited ${c.exitCode}: ${out.text().slice(-300)}`);
        return bpfObjectsOf(c.pid!).links > 0;
      }, 15000, `${name} attached`);
      tools.push({ name, pid: c.pid!, stop: () => killGroup(c, 'SIGINT', 3000) });
    }
    await waitTracked(agent, 3);
    await sleep(500);
    const owners = new Map<number, string>();
    const names = premortemPrograms();
    for (const id of bpfObjectsOf(agent.pid).progs) owners.set(id, 'premortem');
    for (const t of tools) for (const id of bpfObjectsOf(t.pid).progs) owners.set(id, t.name);

    const s0 = progStats();
    const t0 = Date.now();
    log(`program cost: wrk ${o.seconds} s on tracked gunicorn, dd oflag=direct, tracked python touching memory + GC churn`);
    const touch = start('/usr/bin/python3.11', [touchPath, '2.5'], { cwd: app.dir });
    await wrk(svc.port, o.seconds, { close: true });
    await run('dd', ['if=/dev/zero', `of=${ddFile}`, 'bs=64k', 'count=1024', 'oflag=direct']);
    await waitFor(() => touch.exitCode !== null, 60000, 'the memory/GC toucher');
    const s1 = progStats();
    const seconds = (Date.now() - t0) / 1000;

    const programs: ProgCost[] = [];
    for (const [id, owner] of owners) {
      const a = s0.get(id), b = s1.get(id);
      if (!a || !b) continue;
      const events = b.runCnt - a.runCnt;
      const ns = b.runTimeNs - a.runTimeNs;
      const pm = owner === 'premortem' ? names.get(b.name) : undefined;
      programs.push({
        owner: pm ? `premortem/${pm.probe}` : owner, program: b.name, hook: pm ? pm.hook : toolHook(b.name),
        events, nsPerEvent: events ? round(ns / events, 0) : null,
      });
    }
    programs.sort((x, y) => (x.owner.startsWith('premortem') === y.owner.startsWith('premortem') ? x.owner.localeCompare(y.owner) || x.hook.localeCompare(y.hook) : x.owner.startsWith('premortem') ? -1 : 1));
    const schedulerHooks = ['sched_switch', 'sched_wakeup', 'sched_wakeup_new'].map((hook) => {
      const pm = programs.filter((p) => p.owner.startsWith('premortem') && p.hook === hook && p.nsPerEvent !== null);
      // libbpf-tools runqlat alone (runqslower does the same work on the same hooks).
      const tl = programs.filter((p) => p.owner === 'runqlat' && p.hook === hook && p.nsPerEvent !== null);
      return {
        hook,
        premortemNsPerEvent: pm.length ? pm.reduce((a, p) => a + p.nsPerEvent!, 0) : null, premortemPrograms: pm.map((p) => `${p.owner}/${p.program}`),
        libbpfToolsNsPerEvent: tl.length ? tl.reduce((a, p) => a + p.nsPerEvent!, 0) : null, libbpfToolsPrograms: tl.map((p) => `${p.owner}/${p.program}`),
      };
    });
    return { seconds: round(seconds, 1)!, programs, schedulerHooks };
  } finally {
    await Promise.all(tools.map((t) => t.stop()));
    await agent.stop();
    await svc.stop();
    restore();
    fs.rmSync(ddFile, { force: true });
  }
}
