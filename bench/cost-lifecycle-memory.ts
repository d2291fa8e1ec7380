/**
 * Cost of the lifecycle and memory programs, in ns per event, from the
 * kernel's own accounting (kernel.bpf_stats_enabled: run_time_ns / run_cnt
 * per program, read with `bpftool prog show -j`). The sysctl is restored on exit.
 *
 * Phases (each program's numbers are the delta over the phase):
 *  untracked  a Python process touches 256 MiB and 200 short processes run, none tracked:
 *             the cost every other process on the host pays (one pid-filter lookup);
 *  tracked    the same, tracked (with follow-forks): counting, RSS writes, records.
 *
 * Run: node dist/bench/cost-lifecycle-memory.js   (root; after npm run build)
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import { loadAddon, Tracer } from '../agent/native';
import { decodeBatch } from '../agent/records';
import '../agent/probes';
import { bpfName, progStats, ProgStat } from './bpfstats';
import { bpfObjectsOf } from './lib';

const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
const PROGRAMS = ['sched_process_fork', 'sched_process_exec', 'sched_process_exit', 'signal_generate',
  'mark_victim', 'page_fault_user', 'page_fault_kernel', 'rss_stat'];

/** Our programs' counters, by full name (names may be cut at 15 characters on older kernels). */
function ownProgStats(): Map<string, ProgStat> {
  const own = bpfObjectsOf(process.pid).progs;
  const out = new Map<string, ProgStat>();
  for (const p of progStats().values()) {
    if (!own.has(p.id) || !p.name) continue;
    const full = PROGRAMS.find((n) => n === p.name || bpfName(n) === p.name);
    if (full) out.set(full, p);
  }
  return out;
}

async function phase(name: string, tracked: boolean, tracer: Tracer): Promise<void> {
  const before = ownProgStats();
  // Memory workload: a process touching 256 MiB, tracked or not.
  const py = spawn('/usr/bin/python3.11', ['-c', [
    'import sys, mmap',
    'sys.stdin.readline()',
    'for _ in range(4):',
    '    m = mmap.mmap(-1, 64 << 20)',
    '    for i in range(0, 64 << 20, 4096): m[i] = 1',
    '    m.close()',
    // 200 short children: fork, exec, exit
    'import subprocess',
    'for _ in range(200): subprocess.run(["/bin/true"])',
  ].join('\n')], { stdio: ['pipe', 'inherit', 'inherit'] });
  if (tracked) tracer.track(py.pid!, 0, 1);
  py.stdin!.end('go\n');
  await new Promise((r) => py.once('exit', r));
  const after = ownProgStats();
  const cols: string[] = [];
  for (const prog of PROGRAMS) {
    const a = after.get(prog), b = before.get(prog);
    if (!a || !b) continue;
    const cnt = a.runCnt - b.runCnt;
    const ns = a.runTimeNs - b.runTimeNs;
    cols.push(`${prog} ${cnt ? (ns / cnt).toFixed(0) : '-'} ns/event (${cnt} events)`);
  }
  process.stdout.write(`${name}:\n  ${cols.join('\n  ')}\n`);
}

async function main(): Promise<void> {
  const saved = fs.readFileSync(SYSCTL, 'utf8').trim();
  const restore = () => fs.writeFileSync(SYSCTL, saved);
  process.on('SIGINT', () => { restore(); process.exit(130); });
  fs.writeFileSync(SYSCTL, '1');
  const addon = loadAddon();
  let records = 0;
  const tracer = new addon.Tracer({ probes: ['lifecycle', 'memory'], onRecords(batch) { records += decodeBatch(batch, () => undefined); } });
  try {
    await phase('untracked', false, tracer);
    await phase('tracked', true, tracer);
    tracer.flush();
    process.stdout.write(`records delivered: ${records}; dropped: ${tracer.stats().dropped.reduce((a, b) => a + b, 0)}\n`);
  } finally {
    tracer.close();
    restore();
  }
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  process.exitCode = 1;
});
