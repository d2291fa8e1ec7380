/**
 * Cost per event of the disk, tcp and pygc programs, measured by the kernel
 * (kernel.bpf_stats_enabled: run_time_ns / run_cnt per program, read with
 * `bpftool prog show -j`) under short bounded loads on this machine:
 *   - wrk against a gunicorn sync app on 127.0.0.1 for 5 s (TCP transitions,
 *     and the D-state sched_switch/sched_wakeup programs under load),
 *     once without the tracer for the throughput ratio;
 *   - dd with oflag=direct on the real disk (block requests);
 *   - a tracked GC-heavy python3.11 with the gc probes attached.
 * The sysctl is restored afterwards. Not a test: run as root,
 * `node dist/bench/cost-disk-tcp-gc.js` after `npm run build`.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadAddon } from '../agent/native';
import { decodeBatch } from '../agent/records';
import '../agent/probes';
import { TcpWatcher } from '../agent/probes/tcp';
import { attachGcProbes, readGcStats } from '../agent/probes/pygc';
import { bpfName, progStats, ProgStat } from './bpfstats';
import { freePort, killGroup, output, run, start } from './lib';

const LOAD_SECONDS = 5;
const SYSCTL = '/proc/sys/kernel/bpf_stats_enabled';
const PROGRAMS: Record<string, string[]> = {
  disk: ['block_io_start', 'block_rq_issue', 'block_rq_complete', 'dstate_switch', 'dstate_wakeup'],
  tcp: ['inet_sock_set_state', 'tcp_retransmit_synack', 'tcp_retransmit_skb', 'tcp_send_reset', 'tcp_receive_reset'],
  pygc: ['gc_start', 'gc_done'],
};

async function wrk(port: number): Promise<number> {
  const out = await run('wrk', ['-t2', '-c32', `-d${LOAD_SECONDS}s`, `http://127.0.0.1:${port}/`], (LOAD_SECONDS + 30) * 1000);
  const m = out.match(/Requests\/sec:\s+([\d.]+)/);
  return m ? Number(m[1]) : NaN;
}

const GC_SCRIPT = `
import gc, sys, time
print('ready', flush=True); sys.stdin.readline()
t = time.perf_counter()
live = [[i] for i in range(100000)]
for i in range(2000000):
    a = []; b = [a]; a.append(b)
print('done %.6f' % (time.perf_counter() - t), flush=True)
`;

async function gcRun(tracer: InstanceType<ReturnType<typeof loadAddon>['Tracer']> | null): Promise<{ seconds: number; collections: number }> {
  const c = start('/usr/bin/python3.11', ['-c', GC_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  await output(c).wait(/ready/, 10000);
  let links: number[] = [];
  if (tracer) {
    tracer.track(c.pid!);
    links = attachGcProbes(tracer, '/usr/bin/python3.11', c.pid!);
  }
  let out = '';
  c.stdout!.on('data', (d) => (out += d));
  c.stdin!.write('go\n');
  await new Promise((r) => c.once('exit', r));
  const seconds = Number(out.match(/done ([\d.]+)/)?.[1]);
  let collections = 0;
  if (tracer) {
    collections = readGcStats(tracer, c.pid!)?.generations.reduce((n, g) => n + g.count, 0) ?? 0;
    for (const l of links) tracer.detach(l);
    tracer.untrack(c.pid!);
  }
  return { seconds, collections };
}

async function main(): Promise<void> {
  const previous = fs.readFileSync(SYSCTL, 'utf8').trim();
  const appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'premortem-bench-'));
  const ddFile = path.join('/var/tmp', `premortem-bench-${process.pid}.bin`);
  fs.writeFileSync(path.join(appDir, 'app.py'),
    "def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'ok\\n']\n");
  const port = await freePort();
  const gunicorn = start('/usr/bin/gunicorn', ['-w', '2', '-b', `127.0.0.1:${port}`, '--chdir', appDir, 'app:app']);
  let tracer: InstanceType<ReturnType<typeof loadAddon>['Tracer']> | null = null;
  const phases: Record<string, Map<number, ProgStat>> = {};
  try {
    await output(gunicorn).wait(/Booting worker.*\n[^]*Booting worker/, 10000);
    await wrk(port); // warm-up: the first run is slower whatever is attached
    const baselineRps = await wrk(port);
    const baseGc = [await gcRun(null), await gcRun(null)].sort((a, b) => a.seconds - b.seconds)[0];

    fs.writeFileSync(SYSCTL, '1');
    const before = new Set(progStats().keys());
    let records = 0;
    tracer = new (loadAddon().Tracer)({
      probes: ['disk', 'tcp', 'pygc'],
      rodata: { pygc: { targ_gc_min_us: 100000 } },
      onRecords(b) { records += decodeBatch(b, () => undefined); },
    });
    for (const p of tracer.probes()) if (!p.loaded) throw new Error(`${p.name}: ${p.error?.message}`);
    const mine = [...progStats().values()].filter((p) => !before.has(p.id));
    const ids = new Map<string, number>(); // "probe/prog" -> id
    for (const [probe, progs] of Object.entries(PROGRAMS))
      for (const prog of progs) {
        const found = mine.find((p) => p.name === prog || p.name === bpfName(prog)); // bpftool shows BTF names in full
        if (found) ids.set(`${probe}/${prog}`, found.id);
      }
    const w = new TcpWatcher(tracer);
    w.watch({ port, serviceId: 1 });
    tracer.track(gunicorn.pid!, undefined, 1);

    phases.start = progStats();
    const tracedRps = await wrk(port);
    phases.wrk = progStats();
    await run('dd', ['if=/dev/zero', `of=${ddFile}`, 'bs=64k', 'count=2048', 'oflag=direct']);
    phases.dd = progStats();
    const tracedGc = [await gcRun(tracer), await gcRun(tracer)].sort((a, b) => a.seconds - b.seconds)[0];
    phases.gc = progStats();

    const rows: Record<string, unknown>[] = [];
    const order = ['start', 'wrk', 'dd', 'gc'];
    for (const [key, id] of ids) {
      const row: Record<string, unknown> = { program: key };
      let cnt = 0, ns = 0;
      for (let i = 1; i < order.length; i++) {
        const a = phases[order[i - 1]].get(id)!, b = phases[order[i]].get(id)!;
        const dc = b.runCnt - a.runCnt, dn = b.runTimeNs - a.runTimeNs;
        row[`${order[i]}_events`] = dc;
        row[`${order[i]}_ns_per_event`] = dc ? Math.round(dn / dc) : null;
        cnt += dc; ns += dn;
      }
      row.total_events = cnt;
      row.ns_per_event = cnt ? Math.round(ns / cnt) : null;
      rows.push(row);
    }
    console.table(rows.map((r) => ({ program: r.program, events: r.total_events, 'ns/event': r.ns_per_event,
      'wrk ev': r.wrk_events, 'wrk ns': r.wrk_ns_per_event, 'dd ev': r.dd_events, 'dd ns': r.dd_ns_per_event,
      'gc ev': r.gc_events, 'gc ns': r.gc_ns_per_event })));
    const tcpStats = w.stats(port);
    const summary = {
      machine: `${os.cpus().length} CPUs, kernel ${os.release()}`,
      wrk: { baselineRps, tracedRps, ratio: +(tracedRps / baselineRps).toFixed(3), transitionsPerSecond: Math.round(tcpStats.transitions / LOAD_SECONDS) },
      gc: {
        baselineSeconds: baseGc.seconds, tracedSeconds: tracedGc.seconds, collections: tracedGc.collections,
        // Includes the uprobe trap, which run_time_ns does not see.
        wallNsPerCollection: tracedGc.collections ? Math.round(((tracedGc.seconds - baseGc.seconds) * 1e9) / tracedGc.collections) : null,
      },
      records,
      programs: rows,
    };
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    tracer?.close();
    await killGroup(gunicorn);
    fs.writeFileSync(SYSCTL, previous);
    fs.rmSync(appDir, { recursive: true, force: true });
    fs.rmSync(ddFile, { force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
