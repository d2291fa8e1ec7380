/**
 * The premortem agent as users run it — `premortem run` in its own process
 * (so that its CPU and memory are its own) — and a viewer client that drains
 * its WebSocket stream, decoding every frame as the browser viewer would.
 */
import { ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { WebSocket } from 'ws';
import { TRACER_NODE_FLAGS } from '../agent/config';
import { loadCodec } from '../proto/node';
import type { ServerMessage } from '../proto/codec';
import { killGroup, onCleanup, output, start, waitFor } from './lib';

const CLI = path.resolve(__dirname, '..', 'agent', 'cli.js'); // dist/bench -> dist/agent

export interface AgentProc {
  child: ChildProcess;
  pid: number;
  url?: string;
  wsUrl?: string;
  dataDir: string;
  log: () => string;
  health(): Promise<AgentHealthJson>;
  stop(): Promise<void>;
}

export interface AgentHealthJson {
  trackedProcesses: number;
  trackedWorkersAlive: number;
  records: { delivered: Record<string, number>; dropped: Record<string, number>; droppedTotal: number };
  memory: { rssBytes: number; heapUsedBytes: number; timelineBytes: number };
  features: Array<{ name: string; enabled: boolean; reason: string }>;
  errors: Record<string, number>;
}

export interface AgentOpts {
  /** Track only processes whose command line matches (the benchmark's own services). */
  match: string;
  intervalMs?: number;
  windowS?: number;
  bundleWindowS?: number;
  /** false: --no-server. */
  server?: boolean;
  extra?: string[];
  /** Node flags for the agent (e.g. --cpu-prof); NODE_OPTIONS in `env` reaches its server process too. */
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

export function getJson<T>(url: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch (e) {
          reject(new Error(`GET ${url}: ${res.statusCode} ${body.slice(0, 200)}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

export async function startAgent(o: AgentOpts): Promise<AgentProc> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-bench-data-'));
  const dropDir = onCleanup(`rm ${dataDir}`, () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const args = [CLI, 'run', '--no-auto', '--match', o.match, '--data-dir', dataDir, '--quiet',
    ...(o.server === false ? ['--no-server'] : ['--port', '0']),
    ...(o.intervalMs ? ['--interval-ms', String(o.intervalMs)] : []),
    ...(o.windowS ? ['--window-s', String(o.windowS)] : []),
    ...(o.bundleWindowS ? ['--bundle-window-s', String(o.bundleWindowS)] : []),
    ...(o.extra ?? [])];
  // Started as the unit starts it: the agent's node flags first.
  const child = start(process.execPath, [...TRACER_NODE_FLAGS, ...(o.nodeArgs ?? []), ...args], o.env ? { env: { ...process.env, ...o.env } } : {});
  const out = output(child);
  let url: string | undefined;
  if (o.server !== false) url = (await out.wait(/premortem viewer: (http:\/\/\S+)/, 30000))[1];
  else await out.wait(/agent started/, 30000);
  const wsUrl = url ? url.replace(/^http/, 'ws').replace(/\/?$/, '/ws') : undefined;
  const a: AgentProc = {
    child, pid: child.pid!, url, wsUrl, dataDir, log: out.text,
    health: () => {
      if (!url) return Promise.reject(new Error('agent runs without a server'));
      return getJson<AgentHealthJson>(new URL('api/health', url).toString());
    },
    async stop() {
      await killGroup(child, 'SIGTERM', 5000);
      fs.rmSync(dataDir, { recursive: true, force: true });
      dropDir();
    },
  };
  return a;
}

/** Waits until the agent tracks at least `n` live processes. */
export async function waitTracked(a: AgentProc, n: number, ms = 20000): Promise<void> {
  await waitFor(async () => (await a.health().catch(() => undefined))?.trackedWorkersAlive! >= n, ms, `agent tracking ${n} processes`, 100);
}

export interface Viewer {
  ws: WebSocket;
  frames: number;
  bytes: number;
  /** Called with every decoded message, its arrival time (Date.now()) and this viewer (messages may come before the promise resolves). */
  onMessage?: (m: ServerMessage, atMs: number, v: Viewer) => void;
  close(): void;
}

/** Connects, subscribes to everything, decodes every frame. */
export function connectViewer(wsUrl: string, onMessage?: Viewer['onMessage']): Promise<Viewer> {
  const codec = loadCodec();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl);
    const v: Viewer = { ws, frames: 0, bytes: 0, onMessage, close: () => ws.terminate() };
    ws.on('message', (data: Buffer) => {
      const at = Date.now();
      v.frames++;
      v.bytes += data.length;
      const m = codec.decodeServerMessage(data);
      try {
        v.onMessage?.(m, at, v);
      } catch (e) {
        process.stderr.write(`[bench] viewer message handler failed: ${(e as Error).stack}\n`);
      }
    });
    ws.on('error', (e) => reject(e));
    ws.on('unexpected-response', (_q, res) => reject(new Error(`WebSocket upgrade refused: HTTP ${res.statusCode}`)));
    ws.on('open', () => {
      ws.send(codec.encodeClientMessage({ subscribe: { all: true } }));
      resolve(v);
    });
  });
}
