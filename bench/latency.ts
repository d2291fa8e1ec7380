/**
 * Latency (item 4), with `premortem run` at its default 1 s buckets:
 *  - event -> viewer: the bench sends SIGUSR1 to a tracked idle worker (a
 *    python3.11 child that handles it) at random moments; the kernel's
 *    signal_generate becomes a record, the agent a 'signal' marker, and the
 *    marker travels in the next Delta frame. Latency = arrival of that frame at
 *    a WebSocket client - the moment kill() was called.
 *  - death -> bundle: the bench SIGKILLs a tracked worker (verdict
 *    killed-by-other, a failure, so a post-mortem is written); latency = the
 *    bundle file's appearance in the data directory (polled every 2 ms), and
 *    the BundleReady frame at the client, - the kill.
 */
import * as fs from 'fs';
import { connectViewer, startAgent, waitTracked } from './agentproc';
import { log, percentile, rng, round, sleep, waitFor } from './lib';
import { AppDir, idlePool } from './services';

export interface LatencyOptions {
  signals: number;
  deaths: number;
  seed: number;
}

export interface LatencyResult {
  intervalMs: number;
  signals: { sent: number; seen: number; p50Ms: number | null; p99Ms: number | null; maxMs: number | null };
  deaths: {
    killed: number; bundles: number;
    fileP50Ms: number | null; fileP99Ms: number | null; fileMaxMs: number | null;
    frameP50Ms: number | null; frameP99Ms: number | null;
  };
}

export async function runLatency(app: AppDir, o: LatencyOptions): Promise<LatencyResult> {
  const rand = rng(o.seed);
  const workersNeeded = 2 + o.deaths;
  const pool = await idlePool(app, workersNeeded);
  const agent = await startAgent({ match: app.match, intervalMs: 1000 });
  try {
    await waitTracked(agent, workersNeeded + 1, 30000);
    const sends: Array<{ pid: number; t: number; seenMs?: number }> = [];
    const kills = new Map<number, { t: number; fileMs?: number; frameMs?: number }>();
    const viewer = await connectViewer(agent.wsUrl!, (m, at) => {
      if (m.body === 'delta') {
        for (const mk of m.delta!.markers) {
          if (mk.kind !== 'signal' || mk.numbers.sig !== 10) continue;
          // The marker's time is the kernel's; pair it with the closest unmatched send to that pid.
          let best: (typeof sends)[number] | undefined;
          for (const s of sends)
            if (s.pid === mk.pid && s.seenMs === undefined && (!best || Math.abs(s.t - mk.tMs) < Math.abs(best.t - mk.tMs))) best = s;
          if (best && Math.abs(best.t - mk.tMs) < 200) best.seenMs = at - best.t;
        }
      } else if (m.body === 'bundleReady') {
        const k = kills.get(m.bundleReady!.incident!.pid);
        if (k && k.frameMs === undefined) k.frameMs = at - k.t;
      }
    });
    const workers = pool.workers();
    const targets = workers.slice(0, 2);
    log(`latency: ${o.signals} signals to tracked workers at random moments`);
    for (let i = 0; i < o.signals; i++) {
      const pid = targets[i % targets.length];
      const t = Date.now();
      process.kill(pid, 'SIGUSR1');
      sends.push({ pid, t });
      await sleep(80 + rand() * 320);
    }
    await waitFor(() => sends.every((s) => s.seenMs !== undefined), 4000, 'every signal marker').catch(() => undefined);

    log(`latency: ${o.deaths} tracked workers SIGKILLed, one at a time`);
    const victims = workers.slice(2, 2 + o.deaths);
    for (const pid of victims) {
      const before = new Set(fs.readdirSync(agent.dataDir));
      const k = { t: Date.now() } as { t: number; fileMs?: number; frameMs?: number };
      kills.set(pid, k);
      process.kill(pid, 'SIGKILL');
      await waitFor(() => {
        const fresh = fs.readdirSync(agent.dataDir).find((f) => f.endsWith('.pmb') && !before.has(f));
        if (fresh && k.fileMs === undefined) k.fileMs = Date.now() - k.t;
        return k.fileMs !== undefined;
      }, 5000, `bundle of pid ${pid}`, 2).catch(() => undefined);
      await waitFor(() => k.frameMs !== undefined, 2000, 'BundleReady frame').catch(() => undefined);
      await sleep(300 + rand() * 300);
    }
    viewer.close();
    const sig = sends.filter((s) => s.seenMs !== undefined).map((s) => s.seenMs!);
    const ks = [...kills.values()];
    const file = ks.filter((k) => k.fileMs !== undefined).map((k) => k.fileMs!);
    const frame = ks.filter((k) => k.frameMs !== undefined).map((k) => k.frameMs!);
    const r: LatencyResult = {
      intervalMs: 1000,
      signals: { sent: sends.length, seen: sig.length, p50Ms: round(percentile(sig, 50), 0), p99Ms: round(percentile(sig, 99), 0), maxMs: round(Math.max(...sig), 0) },
      deaths: {
        killed: ks.length, bundles: file.length,
        fileP50Ms: round(percentile(file, 50), 0), fileP99Ms: round(percentile(file, 99), 0), fileMaxMs: round(Math.max(...file), 0),
        frameP50Ms: round(percentile(frame, 50), 0), frameP99Ms: round(percentile(frame, 99), 0),
      },
    };
    log(`latency: signal -> viewer p50 ${r.signals.p50Ms} ms p99 ${r.signals.p99Ms} ms (${r.signals.seen}/${r.signals.sent}); death -> bundle p50 ${r.deaths.fileP50Ms} ms p99 ${r.deaths.fileP99Ms} ms (${r.deaths.bundles}/${r.deaths.killed})`);
    return r;
  } finally {
    await agent.stop();
    await pool.stop();
  }
}
