/**
 * The flood scenario (reliability item 2), shared by the short run in npm test
 * and the 30-s soak: the synthetic flood probe (bpf/flood.bpf.c) is loaded by a
 * real agent (runPremortem, probes + 'flood') with a deliberately small ring
 * buffer, and a tracked python calling getppid() in a paced loop makes it emit
 * up to `ratePerSec` records/s for `seconds` (as many as the machine manages:
 * the achieved rate is reported, not asserted). Loss is forced, not hoped for:
 * the agent's reader is held (Tracer.pause()) from the start of the flood until
 * the first drop and for at least `holdMs`, so the ring buffer overflows on any
 * machine, however fast it reads; then it reads again. Asserts:
 *   - produced (flood_produced, counted in the kernel before reserving)
 *     = delivered + dropped, exactly, per the tracer's counters;
 *   - the viewer gets a Lost frame within 2 s of the first drop, and the Lost
 *     frames add up to the agent's dropped total;
 *   - /metrics (when the metrics module is wired) shows the loss within 2 s;
 *   - the timeline marks the gap: records-lost markers in the Deltas, gap=true
 *     on the tracked worker's buckets, and in the history the viewer can fetch;
 *   - ticks keep coming during the flood (no interval skipped by > 2.5 s).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { loadAddon } from '../../agent/native';
import { RecordType } from '../../agent/records';
import type { ServerMessage } from '../../proto/codec';
import { encodeFloodCfg, floodProducerCode } from '../../agent/probes';
import { runPremortem, type Running } from '../../agent/run';
import { exited, start, sleep, waitFor } from '../helpers/procs';
import { connect, httpGet, quietLogger, ROOT } from './harness';

const BATCH = 512;

/** Sum of the premortem_*dropped*|*lost* samples in a Prometheus text page. */
export function metricsLoss(text: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    const m = /^(premortem_\w*(?:drop|lost)\w*)(\{[^}]*\})?\s+([0-9.e+]+)/.exec(line);
    if (m && !/_created$/.test(m[1])) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}

/** Polls /metrics until it shows a loss; ms from the first drop. */
async function metricsShowLoss(baseUrl: string, firstDropMs: number): Promise<number> {
  for (;;) {
    const r = await httpGet(baseUrl + 'metrics');
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
    if ((metricsLoss(r.body.toString()) ?? 0) > 0) return Date.now() - firstDropMs;
    if (Date.now() - firstDropMs > 5000) throw new Error(`/metrics shows no loss 5 s after the first drop:\n${r.body.toString().slice(0, 2000)}`);
    await sleep(100);
  }
}

export interface FloodResult {
  seconds: number; produced: number; delivered: number; dropped: number;
  /** Records per second the producer reached (asked: up to opts.ratePerSec). */
  ratePerSec: number;
  firstDropToLostMs: number; firstDropToMetricsMs: number | null; gapBuckets: number; lostMarkers: number; maxTickGapMs: number;
}

export async function runFloodScenario(opts: { seconds: number; ratePerSec: number; ringBufferBytes: number; holdMs?: number }): Promise<FloodResult> {
  const holdMs = opts.holdMs ?? 1500;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-flood-'));
  const probes = [...loadAddon().probeNames()];
  let running: Running | undefined;
  const producer = start('/usr/bin/python3.11', ['-c', floodProducerCode(opts.ratePerSec, opts.seconds, BATCH)], { stdio: ['pipe', 'ignore', 'inherit'] });
  try {
    running = await runPremortem({ port: 0, dataDir, probes, ringBufferBytes: opts.ringBufferBytes, autoDiscover: false,
      intervalMs: 1000, windowMs: 120_000, bundleWindowMs: 60_000 }, { logger: quietLogger() });
    const tracer = running.agent.nativeTracer()!;
    expect(running.agent.trackPid(producer.pid!)).toBe(true);
    const viewer = await connect(running.url!.replace(/^http/, 'ws') + 'ws');
    viewer.send({ subscribe: { all: true } });
    await waitFor(() => viewer.messages.some((m) => m.body === 'delta'), 5000, 'a first Delta');
    const metricsWired = fs.existsSync(path.join(ROOT, 'agent', 'metrics.ts'));

    tracer.mapUpdate('flood', 'flood_cfg', 0, encodeFloodCfg(producer.pid!, BATCH));
    // Held reader: the ring buffer fills after ringBufferBytes / 32 records, then the kernel drops.
    tracer.pause();
    const t0 = Date.now();
    producer.stdin!.write('go\n');
    // Watch for the first drop in the kernel's counters, and when the viewer and /metrics show it.
    const droppedTotal = () => tracer.stats().dropped.reduce((a, b) => a + b, 0);
    let firstDropMs = 0;
    let shown: Promise<[ServerMessage & { atMs: number }, number | null]>;
    try {
      firstDropMs = await waitFor(() => (droppedTotal() > 0 ? Date.now() : 0), 30_000, 'the first dropped record (reader held)');
      // The viewer and /metrics are watched from the first drop on, while the reader is still held.
      shown = Promise.all([
        waitFor(() => viewer.messages.find((m) => m.body === 'lost' && m.atMs >= firstDropMs - 1000), 5000, 'a Lost frame'),
        metricsWired ? metricsShowLoss(running.url!, firstDropMs) : Promise.resolve(null),
      ]);
      shown.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
      await sleep(Math.max(0, t0 + holdMs - Date.now()));
    } finally {
      tracer.resume();
    }
    const [lostFrame, firstDropToMetricsMs] = await shown;
    await exited(producer, opts.seconds * 1000 + 30_000);
    const elapsedS = (Date.now() - t0) / 1000;
    // Drain: the producer has exited, so everything it made is in the ring buffer or counted lost.
    expect(tracer.sync()).toBe(true);
    const produced = Number(new BigUint64Array(tracer.mapLookup('flood', 'flood_produced', 0)!)[0]);
    const s = tracer.stats();
    const delivered = s.delivered[RecordType.Flood];
    const dropped = s.dropped[RecordType.Flood];
    const total = droppedTotal();
    await waitFor(() => viewer.messages.filter((m) => m.body === 'lost').at(-1)?.lost?.droppedTotal === total, 3000, 'the last Lost frame');

    // Exact accounting.
    expect(produced).toBe(delivered + dropped);
    expect(dropped).toBeGreaterThan(0);
    expect(delivered).toBeGreaterThan(0);
    // The viewer: within 2 s, and Lost frames add up.
    const firstDropToLostMs = lostFrame.atMs - firstDropMs;
    expect(firstDropToLostMs).toBeLessThan(2000);
    const lostFrames = viewer.messages.filter((m) => m.body === 'lost').map((m) => m.lost!);
    expect(lostFrames.reduce((a, l) => a + l.dropped, 0)).toBe(total);
    if (firstDropToMetricsMs !== null) expect(firstDropToMetricsMs).toBeLessThan(2000);
    // The timeline marks the gap.
    // The Delta of the last lossy interval follows its Lost frame: wait for it.
    const markersOf = () => viewer.messages.filter((m) => m.body === 'delta').flatMap((m) => m.delta!.markers).filter((m) => m.kind === 'records-lost');
    await waitFor(() => markersOf().reduce((a, m) => a + Number(m.numbers?.dropped ?? 0), 0) >= total, 3000, 'records-lost markers adding up');
    const deltas = viewer.messages.filter((m) => m.body === 'delta').map((m) => m.delta!);
    const lostMarkers = markersOf();
    expect(lostMarkers.length).toBeGreaterThan(0);
    expect(lostMarkers.reduce((a, m) => a + Number(m.numbers?.dropped ?? 0), 0)).toBe(total);
    const workerBuckets = deltas.flatMap((d) => d.workers).filter((w) => w.pid === producer.pid);
    const gapBuckets = workerBuckets.filter((w) => w.bucket!.gap).length;
    expect(gapBuckets).toBeGreaterThan(0);
    const key = `${workerBuckets[0].pid}:${workerBuckets[0].startTicks}`;
    const hist = running.agent.history(key, t0 - 5000, Date.now());
    // The history also holds the final bucket sampled at the producer's exit.
    expect(hist.timelines[0].buckets.filter((b) => b.gap).length).toBeGreaterThanOrEqual(gapBuckets);
    const ticks = deltas.map((d) => d.tMs);
    const maxTickGapMs = Math.max(...ticks.slice(1).map((t, i) => t - ticks[i]));
    expect(maxTickGapMs).toBeLessThanOrEqual(2500);
    viewer.ws.terminate();
    return {
      seconds: elapsedS, produced, delivered, dropped, ratePerSec: Math.round(produced / opts.seconds), firstDropToLostMs,
      firstDropToMetricsMs, gapBuckets, lostMarkers: lostMarkers.length, maxTickGapMs,
    };
  } finally {
    try { process.kill(producer.pid!, 'SIGKILL'); } catch { /* exited */ }
    await running?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
