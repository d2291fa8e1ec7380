/**
 * Agent memory at idle (item 2): `premortem run` tracking 0, 16 and 256 idle
 * Python workers (python3.11 children forked by one master), with every
 * timeline ring full. The ring holds windowMs / intervalMs buckets (600 with
 * the defaults 10 min / 1 s); to fill it in a minute instead of ten, the agent
 * runs with --interval-ms 100 --window-s 60: the same 600 buckets per timeline,
 * so the same memory, filled 10x faster. The fill is checked by asking the
 * agent for one worker's history over the WebSocket.
 *
 * Reported for all the agent's processes (the tracer and its server process):
 * each one's RSS (/proc/PID/status VmRSS), their sum, and their resident
 * pages together with each page once (shared text such as the node binary,
 * mapped by both, counted once; the ring buffer's two mappings left out: it is
 * kernel memory, in the BPF figure); the tracer's V8 heap and timeline bytes
 * (/api/health); the BPF map memory it holds, map by map (bench/maps.ts).
 */
import * as fs from 'fs';
import type { ServerMessage } from '../proto/codec';
import { loadCodec } from '../proto/node';
import { connectViewer, startAgent, waitTracked } from './agentproc';
import { agentMaps, MapRow } from './maps';
import { childrenOf, cpuMeter, log, round, rssBytes, sleep, treeMemory } from './lib';
import { AppDir, idlePool, Service } from './services';

export interface MemoryOptions {
  counts: number[];
  intervalMs: number;
  windowS: number;
}

export interface MemoryResult {
  workers: number;
  trackedAlive: number;
  intervalMs: number;
  windowS: number;
  bucketsPerTimeline: number;
  /** Buckets the agent returned for one worker's whole window (== bucketsPerTimeline when full). */
  bucketsFilled: number | null;
  /** The tracer process's RSS. */
  rssMiB: number;
  /** The server process's RSS. */
  serverRssMiB: number | null;
  /** Sum of both processes' RSS (shared text twice, ring buffer mappings included). */
  rssSumMiB: number;
  /** Both processes' resident pages, each once, BPF mappings excluded (lib.ts treeMemory). */
  togetherMiB: number;
  /** Tracer's timeline bytes per tracked process. */
  timelineBytesPerProcess: number | null;
  /** From /proc/PID/smaps_rollup: proportional set size, private anonymous memory, and the RSS of BPF map mappings (the ring buffer, mapped twice). */
  pssMiB: number;
  anonMiB: number;
  bpfMappedRssMiB: number;
  heapUsedMiB: number;
  timelineMiB: number;
  bpfMapMiB: number;
  bpfMaps: number;
  maps: MapRow[];
  /** Agent CPU while idle-tracking, % of one core, at this (10x faster) interval. */
  agentCpuPct: number;
}

async function historyBuckets(wsUrl: string, windowS: number): Promise<number | null> {
  const codec = loadCodec();
  let key: string | undefined;
  let resolveHist: (n: number) => void;
  const got = new Promise<number>((r) => (resolveHist = r));
  const v = await connectViewer(wsUrl, (m: ServerMessage, _at, viewer) => {
    if (m.body === 'snapshot' && !key) {
      const w = m.snapshot!.workers.find((x) => x.state === 'alive' && x.identity?.role === 'worker');
      if (!w) return resolveHist(-1);
      key = `${w.identity!.pid}:${w.identity!.startTicks}`;
      const now = Date.now();
      viewer.ws.send(codec.encodeClientMessage({ historyRequest: { requestId: 1, workerKey: key, fromMs: now - windowS * 1000 - 5000, toMs: now + 1000 } }));
    } else if (m.body === 'history') resolveHist(m.history!.timelines[0]?.buckets.length ?? 0);
  });
  try {
    const n = await Promise.race([got, sleep(10000).then(() => -1)]);
    return n < 0 ? null : n;
  } finally {
    v.close();
  }
}

function smaps(pid: number): { pssMiB: number; anonMiB: number; bpfMappedRssMiB: number } {
  const kb = (text: string, key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  const roll = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  let bpf = 0, inBpf = false;
  for (const line of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inBpf = line.includes('anon_inode:bpf-map');
    else if (inBpf && line.startsWith('Rss:')) bpf += Number(line.split(/\s+/)[1]);
  }
  return { pssMiB: round(kb(roll, 'Pss') / 1024, 1)!, anonMiB: round(kb(roll, 'Anonymous') / 1024, 1)!, bpfMappedRssMiB: round(bpf / 1024, 1)! };
}

export async function runMemory(app: AppDir, o: MemoryOptions): Promise<MemoryResult[]> {
  const out: MemoryResult[] = [];
  for (const n of o.counts) {
    let pool: Service | undefined;
    let agent;
    try {
      if (n > 0) pool = await idlePool(app, n);
      agent = await startAgent({ match: app.match, intervalMs: o.intervalMs, windowS: o.windowS, bundleWindowS: Math.max(1, Math.floor(o.windowS / 2)) });
      if (n > 0) await waitTracked(agent, n + 1, 60000);
      const meter = cpuMeter([agent.pid]); // the process tree: tracer and server
      log(`memory: ${n} idle workers tracked; filling ${o.windowS * 1000 / o.intervalMs} buckets (${o.windowS} s)`);
      await sleep(o.windowS * 1000 + 3 * o.intervalMs + 1000);
      const cpu = meter.pct();
      const h = await agent.health();
      const maps = agentMaps(agent.pid);
      const mapBytes = maps.reduce((a, m) => a + m.memlockBytes, 0);
      const filled = n > 0 ? await historyBuckets(agent.wsUrl!, o.windowS) : null;
      const tree = treeMemory(agent.pid);
      const server = childrenOf(agent.pid)[0];
      const MiB = (b: number) => round(b / 2 ** 20, 1)!;
      const r: MemoryResult = {
        workers: n, trackedAlive: h.trackedWorkersAlive, intervalMs: o.intervalMs, windowS: o.windowS,
        bucketsPerTimeline: (o.windowS * 1000) / o.intervalMs, bucketsFilled: filled,
        rssMiB: MiB(rssBytes(agent.pid)), serverRssMiB: server ? MiB(rssBytes(server)) : null,
        rssSumMiB: MiB(tree.rssSumBytes), togetherMiB: MiB(tree.uniqueBytes),
        timelineBytesPerProcess: h.trackedProcesses ? Math.round(h.memory.timelineBytes / h.trackedProcesses) : null,
        ...smaps(agent.pid), heapUsedMiB: MiB(h.memory.heapUsedBytes),
        timelineMiB: round(h.memory.timelineBytes / 2 ** 20, 2)!, bpfMapMiB: MiB(mapBytes), bpfMaps: maps.length, maps,
        agentCpuPct: round(cpu, 2)!,
      };
      log(`memory: ${n} workers: together ${r.togetherMiB} MiB (tracer RSS ${r.rssMiB}, server ${r.serverRssMiB}), heap ${r.heapUsedMiB} MiB, timelines ${r.timelineMiB} MiB, BPF maps ${r.bpfMapMiB} MiB, buckets ${filled}/${r.bucketsPerTimeline}, cpu ${r.agentCpuPct} %`);
      out.push(r);
    } finally {
      await agent?.stop();
      await pool?.stop();
    }
  }
  return out;
}
