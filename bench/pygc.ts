/**
 * Cost of one garbage collection seen by premortem, per method: USDT
 * (Debian's python3.11: python:gc__start/gc__done) against uprobe + uretprobe
 * on gc_collect_main (pyenv's 3.11.7, no USDT). Same CPython minor version,
 * same workload: N young collections (gc.collect(0), a few µs each) timed
 * inside the process, in three modes taken in alternation:
 *   base      no probe attached;
 *   untracked probes attached (every process of the binary), process not tracked:
 *             the trap plus one pid lookup;
 *   tracked   probes attached and the process tracked: the full cost.
 * ns per collection = (mode - base) / N, medians over ROUNDS. The BPF
 * programs' own run time comes from kernel.bpf_stats_enabled (restored after).
 * Other agents on a shared host may attach their own programs to the same
 * binaries: their run time lands in the deltas too (not in bpf_ns).
 * Not a test: `node dist/bench/pygc.js` as root after `npm run build`.
 */
import { ChildProcess } from 'child_process';
import { loadAddon, Tracer } from '../agent/native';
import '../agent/probes';
import { createPythonGc } from '../agent/python/gc';
import { createLogger } from '../agent/log';
import { progStats } from './bpfstats';
import { bpfObjectsOf, cleanupAll, installSignalCleanup, log, median, round, setSysctl, start, waitFor } from './lib';

const N = 100_000;
const ROUNDS = 7;
const PYTHONS = { usdt: '/usr/bin/python3.11', uprobe: '/root/.pyenv/versions/3.11.7/bin/python3.11' };
const SCRIPT = `
import gc, sys, time
gc.disable()  # only the collections we ask for
print('ready', flush=True); sys.stdin.readline()
t = time.perf_counter_ns()
for _ in range(${N}): gc.collect(0)
print('done', time.perf_counter_ns() - t, flush=True)
`;

type Mode = 'base' | 'untracked' | 'tracked';

async function timed(exe: string, onReady: (c: ChildProcess) => void): Promise<number> {
  const c = start(exe, ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('ready'), 10_000, 'python ready');
  onReady(c);
  c.stdin!.write('go\n');
  const m = await waitFor(() => /done (\d+)/.exec(out), 120_000, 'python done');
  c.stdin!.end();
  return Number(m[1]);
}

/** Run time of this process's programs named `names` (other agents on the host load programs of the same names). */
function progRunTimes(names: string[]): Map<string, { ns: number; cnt: number }> {
  const mine = bpfObjectsOf(process.pid).progs;
  const out = new Map<string, { ns: number; cnt: number }>();
  for (const p of progStats().values())
    if (names.includes(p.name) && mine.has(p.id)) out.set(p.name, { ns: p.runTimeNs, cnt: p.runCnt });
  return out;
}

/** One run with the probes attached for it only (and the process tracked or not). */
async function attachedRun(tracer: Tracer, exe: string, track: boolean): Promise<{ ns: number; method: string }> {
  const gc = createPythonGc({ tracer, log: createLogger({ level: 'error' }) });
  try {
    const ns = await timed(exe, (c) => {
      gc.attachFor(c.pid!);
      if (track) tracer.track(c.pid!);
    });
    return { ns, method: gc.targets()[0]?.method ?? 'none' };
  } finally {
    gc.close();
  }
}

async function measure(tracer: Tracer, kind: 'usdt' | 'uprobe'): Promise<Record<string, number | null | string>> {
  const exe = PYTHONS[kind];
  const times: Record<Mode, number[]> = { base: [], untracked: [], tracked: [] };
  const progs = kind === 'usdt' ? ['gc_start', 'gc_done'] : ['gc_entry', 'gc_return'];
  let ns = 0;
  let cnt = 0;
  let method = '';
  for (let r = 0; r < ROUNDS; r++) {
    times.base.push(await timed(exe, () => undefined));
    times.untracked.push((await attachedRun(tracer, exe, false)).ns);
    const before = progRunTimes(progs);
    const t = await attachedRun(tracer, exe, true);
    const after = progRunTimes(progs);
    times.tracked.push(t.ns);
    method = t.method;
    for (const p of progs) {
      ns += (after.get(p)?.ns ?? 0) - (before.get(p)?.ns ?? 0);
      cnt += (after.get(p)?.cnt ?? 0) - (before.get(p)?.cnt ?? 0);
    }
  }
  const base = median(times.base);
  return {
    method, python: exe,
    base_ns_per_collection: round(base / N, 0),
    untracked_ns_per_collection: round((median(times.untracked) - base) / N, 0),
    tracked_ns_per_collection: round((median(times.tracked) - base) / N, 0),
    // Two programs run per collection (start and end).
    bpf_ns_per_collection: cnt ? round((2 * ns) / cnt, 0) : null,
  };
}

async function main(): Promise<void> {
  installSignalCleanup();
  setSysctl('/proc/sys/kernel/bpf_stats_enabled', '1');
  const tracer = new (loadAddon().Tracer)({ probes: ['pygc'], rodata: { pygc: { targ_gc_min_us: 1_000_000 } }, onRecords: () => undefined });
  try {
    const rows = [await measure(tracer, 'usdt'), await measure(tracer, 'uprobe')];
    log(`GC cost per collection, ${N} young collections x ${ROUNDS} rounds (medians):`);
    console.table(rows);
    process.stdout.write(JSON.stringify({ pygc: rows }) + '\n');
  } finally {
    tracer.close();
    await cleanupAll();
  }
}

main().catch(async (e) => {
  process.stderr.write(`${(e as Error).stack}\n`);
  await cleanupAll();
  process.exit(1);
});
