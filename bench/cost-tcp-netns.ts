/**
 * Per-event cost of the tcp probe's programs, measured by the kernel
 * (kernel.bpf_stats_enabled: run_time_ns / run_cnt per program, read with
 * `bpftool prog show -j`), under one bounded load in two places:
 *   - host: gunicorn (sync, 2 workers) and wrk -t2 -c32 in the agent's own network namespace;
 *   - netns: the same pair inside a network namespace of their own (ip netns), the port
 *     watched in that namespace.
 * Only the tcp probe is loaded. It uses nothing but what every build of the
 * probe offers (TcpWatcher.watch({ port, serviceId, netns, pid })), so the same
 * compiled file run from an older build's dist/ measures that build: that is
 * how the namespace-aware path is compared with the port-only one
 * (docs/CONTAINERS.md). Not a test: root, `node dist/bench/cost-tcp-netns.js
 * [seconds]`; prints one JSON object. The sysctl is restored afterwards.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadAddon, addonPath } from '../agent/native';
import { TcpWatcher } from '../agent/probes/tcp';
// Only what bench/lib.ts has offered since its first version (not ./bpfstats): this
// compiled file also runs from an older build's dist/ (docs/CONTAINERS.md).
import { killGroup, output, run, start } from './lib';

const SECONDS = Number(process.argv[2] ?? 5);
const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
const PROGRAMS = ['inet_sock_set_state', 'tcp_retransmit_synack', 'tcp_retransmit_skb', 'tcp_send_reset', 'tcp_receive_reset'];
const PORT = 8000;

interface ProgStat { id: number; name: string; runTimeNs: number; runCnt: number }

/** bench/bpfstats.ts's progStats, kept here: see the import of ./lib above. */
function progStats(): Map<number, ProgStat> {
  const out = new Map<number, ProgStat>();
  for (const p of JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 })))
    out.set(p.id, { id: p.id, name: p.name ?? '', runTimeNs: p.run_time_ns ?? 0, runCnt: p.run_cnt ?? 0 });
  return out;
}

interface Place { name: string; prefix: string[]; netns?: number; cleanup(): void }

function place(kind: 'host' | 'netns'): Place {
  if (kind === 'host') return { name: 'host', prefix: [], cleanup: () => undefined };
  const name = `pm-bench-${process.pid}`;
  execFileSync('ip', ['netns', 'add', name]);
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name: 'netns', prefix: ['ip', 'netns', 'exec', name], netns: fs.statSync(`/run/netns/${name}`).ino,
    cleanup: () => {
      for (const pid of execFileSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).split('\n').filter(Boolean))
        try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
      execFileSync('ip', ['netns', 'del', name]);
    },
  };
}

async function measure(tracer: InstanceType<ReturnType<typeof loadAddon>['Tracer']>, ids: Map<string, number>, where: Place, appDir: string) {
  const [cmd, ...pre] = [...where.prefix, '/usr/bin/python3', '/usr/bin/gunicorn', '-w', '2', '-b', `127.0.0.1:${PORT}`, '--chdir', appDir, 'app:app'];
  const g = start(cmd, [...pre]);
  try {
    await output(g).wait(/Booting worker.*\n[^]*Booting worker/, 15000);
    const w = new TcpWatcher(tracer);
    w.watch({ port: PORT, serviceId: 1, netns: where.netns, pid: g.pid });
    const wrk = (s: number) => run(where.prefix[0] ?? 'wrk', [...(where.prefix.length ? [...where.prefix.slice(1), 'wrk'] : []), '-t2', '-c32', `-d${s}s`, `http://127.0.0.1:${PORT}/`], (s + 30) * 1000);
    await wrk(1); // warm-up
    const before = progStats();
    const out = await wrk(SECONDS);
    const after = progStats();
    const rows: Record<string, { events: number; nsPerEvent: number | null }> = {};
    for (const [prog, id] of ids) {
      const a = before.get(id)!, b = after.get(id)!;
      const n = b.runCnt - a.runCnt;
      rows[prog] = { events: n, nsPerEvent: n ? +((b.runTimeNs - a.runTimeNs) / n).toFixed(1) : null };
    }
    const st = w.stats(PORT, 'local', where.netns);
    w.unwatch(PORT, where.netns);
    return { rps: Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]), watchedTransitions: st.transitions, programs: rows };
  } finally {
    await killGroup(g);
  }
}

async function main(): Promise<void> {
  const previous = fs.readFileSync(SYSCTL, 'utf8').trim();
  const appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'premortem-bench-'));
  fs.writeFileSync(path.join(appDir, 'app.py'),
    "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'ok\\n']\n");
  let tracer: InstanceType<ReturnType<typeof loadAddon>['Tracer']> | null = null;
  const results: Record<string, unknown> = { build: addonPath(), machine: `${os.cpus().length} CPUs, kernel ${os.release()}`, seconds: SECONDS };
  try {
    fs.writeFileSync(SYSCTL, '1');
    const known = new Set(progStats().keys());
    tracer = new (loadAddon().Tracer)({ probes: ['tcp'], onRecords: () => undefined });
    const mine = [...progStats().values()].filter((p) => !known.has(p.id));
    const ids = new Map<string, number>();
    for (const prog of PROGRAMS) {
      const found = mine.find((p) => p.name === prog || p.name === prog.slice(0, 15));
      if (found) ids.set(prog, found.id);
    }
    for (const kind of ['host', 'netns'] as const) {
      const where = place(kind);
      try {
        results[kind] = await measure(tracer, ids, where, appDir);
      } finally {
        where.cleanup();
      }
    }
    console.log(JSON.stringify(results));
  } finally {
    tracer?.close();
    fs.writeFileSync(SYSCTL, previous);
    fs.rmSync(appDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
