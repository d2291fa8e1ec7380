/**
 * Ingest benchmark: synthetic records (bpf/flood.bpf.c) through the whole path
 * — kernel ring buffer → native reader thread → batches → JS decode — at rising
 * paced rates, then an overload that forces loss on any machine (the reader is
 * held, Tracer.pause(), for the first half of the run, so a small ring buffer
 * overflows) to show exact loss accounting. Prints records/s delivered, drops
 * and agent CPU.
 *   node dist/bench/ingest.js [--seconds 4] [--json out.json]
 */
import * as fs from 'fs';
import { spawn } from 'child_process';
import { loadAddon, type Tracer } from '../agent/native';
import { decodeBatch, RecordType } from '../agent/records';
import { encodeFloodCfg, floodProducerCode } from '../agent/probes';

export interface Run {
  name: string;
  targetPerSec: number;
  seconds: number;
  produced: number;
  delivered: number;
  dropped: number;
  decoded: number;
  deliveredPerSec: number;
  agentCpuPct: number;
  exact: boolean;
}

const BATCH = 512; // records per getppid() call

/** A Python producer that paces getppid() calls to `perSec` records/s (0: flat out). */
function producer(perSec: number, seconds: number) {
  return spawn('/usr/bin/python3.11', ['-c', floodProducerCode(perSec, seconds, BATCH)], { stdio: ['pipe', 'ignore', 'inherit'] });
}

/** Holds the reader until the kernel has dropped a record and half the run has passed, then resumes. */
async function holdReader(tracer: Tracer, seconds: number): Promise<void> {
  const until = Date.now() + (seconds * 1000) / 2;
  const giveUp = Date.now() + seconds * 1000 + 30_000;
  try {
    while (Date.now() < until || tracer.stats().dropped[RecordType.Flood] === 0) {
      if (Date.now() > giveUp) throw new Error('the held reader saw no drop: the producer made no records');
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    tracer.resume();
  }
}

async function run(name: string, perSec: number, seconds: number, opts: { ringBufferBytes: number; holdReader: boolean }): Promise<Run> {
  const { Tracer } = loadAddon();
  let decoded = 0;
  let seqSum = 0;
  const tracer = new Tracer({
    probes: ['flood'],
    ringBufferBytes: opts.ringBufferBytes,
    onRecords(batch) {
      decoded += decodeBatch(batch, (r) => {
        seqSum += (r as unknown as { seq: number }).seq; // touch a decoded field
      });
    },
  });
  try {
    const child = producer(perSec, seconds);
    tracer.mapUpdate('flood', 'flood_cfg', 0, encodeFloodCfg(child.pid!, BATCH));
    const exit = new Promise((r) => child.once('exit', r));
    if (opts.holdReader) tracer.pause();
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    child.stdin!.write('go\n');
    if (opts.holdReader) await holdReader(tracer, seconds);
    await exit;
    // Drain: the producer has exited; one read pass delivers what is left in the ring buffer.
    if (!tracer.sync(30_000)) throw new Error('the reader did not drain the ring buffer within 30 s');
    const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const produced = Number(new BigUint64Array(tracer.mapLookup('flood', 'flood_produced', 0)!)[0]);
    const s = tracer.stats();
    const delivered = s.delivered[RecordType.Flood];
    const dropped = s.dropped[RecordType.Flood];
    void seqSum;
    return {
      name, targetPerSec: perSec, seconds: elapsed, produced, delivered, dropped, decoded,
      deliveredPerSec: delivered / seconds,
      agentCpuPct: ((cpu.user + cpu.system) / 1e6 / elapsed) * 100,
      exact: produced === delivered + dropped && decoded === delivered,
    };
  } finally {
    tracer.close();
  }
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${Math.round(n)}`;
}

export interface IngestResult {
  runs: Run[];
  /** Highest delivered rate among the runs without a single drop. */
  bestZeroLossPerSec: number;
  /** Every run: produced = delivered + dropped, and decoded = delivered. */
  accountingExact: boolean;
  overload: Run;
}

const OVERLOAD = 'reader held for half the run, 256 KiB ring';

/** Paced rates, flat out, then an overload (reader held, small ring) for the loss accounting. */
export async function runIngest(o: { seconds: number; rates?: number[] }): Promise<IngestResult> {
  const runs: Run[] = [];
  for (const rate of o.rates ?? [1_000_000, 2_000_000, 3_000_000, 4_000_000, 0]) {
    runs.push(await run(rate ? `paced ${fmt(rate)}/s` : 'flat out', rate, o.seconds, { ringBufferBytes: 16 << 20, holdReader: false }));
  }
  const overload = await run(OVERLOAD, 1_000_000, o.seconds, { ringBufferBytes: 256 << 10, holdReader: true });
  runs.push(overload);
  const lossless = runs.filter((r) => r.dropped === 0 && r.name !== OVERLOAD);
  const best = lossless.reduce((a, r) => (r.deliveredPerSec > a ? r.deliveredPerSec : a), 0);
  return { runs, bestZeroLossPerSec: Math.round(best), accountingExact: runs.every((r) => r.exact), overload };
}

async function main() {
  const args = process.argv.slice(2);
  const seconds = Number(args[args.indexOf('--seconds') + 1]) || 4;
  const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : undefined;
  const { runs } = await runIngest({ seconds });

  console.log('\npremortem ingest: kernel ring buffer -> native batches -> JS decode');
  console.log('run                            produced   delivered/s   dropped   agent CPU   produced = delivered + dropped');
  for (const r of runs)
    console.log(`${r.name.padEnd(30)} ${fmt(r.produced).padStart(9)} ${fmt(r.deliveredPerSec).padStart(12)} ${fmt(r.dropped).padStart(9)} ${r.agentCpuPct.toFixed(0).padStart(9)} %   ${r.exact ? 'exact' : 'MISMATCH'}`);
  const lossless = runs.filter((r) => r.dropped === 0 && r.name !== OVERLOAD);
  const best = lossless.reduce((a, r) => (r.deliveredPerSec > a ? r.deliveredPerSec : a), 0);
  console.log(`\nbest zero-loss delivery: ${fmt(best)} records/s (target >= 3 M/s)`);
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify({ runs, bestZeroLossPerSec: best }, null, 2));
  if (runs.some((r) => !r.exact)) process.exitCode = 1;
}

if (require.main === module)
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
