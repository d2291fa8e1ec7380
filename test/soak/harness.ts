/**
 * Shared by the reliability tests (test/reliability-*.test.ts) and the soak
 * (test/soak/*.test.ts): viewers that decode the real protocol, HTTP helpers,
 * and what the kernel says about a process's memory, fds, BPF links and maps.
 */
import { ChildProcess, execFileSync } from 'child_process';
import { TRACER_NODE_FLAGS } from '../../agent/config';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { WebSocket, type ClientOptions } from 'ws';
import { loadCodec } from '../../proto/node';
import { PROTOCOL_VERSION, type ClientMessage, type DeepPartial, type ServerMessage } from '../../proto/codec';
import { createLogger } from '../../agent/log';
import { projectRoot } from '../../agent/native';
import { start } from '../helpers/procs';

export const codec = loadCodec();
export const ROOT = projectRoot();
export const CLI = path.join(ROOT, 'dist', 'agent', 'cli.js');
export const quietLogger = () => createLogger({ level: (process.env.PREMORTEM_TEST_LOG as 'info') || 'error' });
export const MiB = 1024 * 1024;

/** Minutes for the soak tests (PREMORTEM_SOAK_MINUTES, default 30). */
export function soakMinutes(def = 30): number {
  const v = Number(process.env.PREMORTEM_SOAK_MINUTES);
  return Number.isFinite(v) && v > 0 ? v : def;
}
/** A number from the environment, or its default. */
export function envNumber(name: string, def: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : def;
}

// ---------------------------------------------------------------- viewers

export interface Viewer {
  ws: WebSocket;
  messages: Array<ServerMessage & { atMs: number }>;
  closed: Promise<{ code: number; reason: string }>;
  send(msg: DeepPartial<ClientMessage>): void;
  /** Keep decoded messages (off for viewers that only count). */
  collect: boolean;
  frames: number;
}

export function connect(url: string, opts: ClientOptions = {}): Promise<Viewer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts);
    const messages: Viewer['messages'] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    const viewer: Viewer = {
      ws, messages, closed, collect: true, frames: 0,
      send: (m) => ws.send(codec.encodeClientMessage({ protocolVersion: PROTOCOL_VERSION, ...m })),
    };
    ws.on('message', (data) => {
      viewer.frames++;
      if (viewer.collect) messages.push(Object.assign(codec.decodeServerMessage(data as Buffer), { atMs: Date.now() }));
    });
    ws.on('error', () => undefined);
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { status: res.statusCode })));
    ws.on('open', () => resolve(viewer));
  });
}

/** The HTTP status of a WebSocket upgrade (101 when accepted). */
export async function upgradeStatus(url: string, opts: ClientOptions = {}): Promise<number> {
  try {
    const v = await connect(url, opts);
    v.ws.terminate();
    return 101;
  } catch (err) {
    return (err as { status: number }).status;
  }
}

export function httpGet(url: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET', timeoutMs = 10_000):
Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

export async function healthOf(baseUrl: string, headers: http.OutgoingHttpHeaders = {}): Promise<Record<string, any>> {
  const r = await httpGet(new URL('api/health', baseUrl).toString(), headers);
  if (r.status !== 200) throw new Error(`GET /api/health: ${r.status} ${r.body.toString().slice(0, 200)}`);
  return JSON.parse(r.body.toString());
}

// ---------------------------------------------------------------- a process as the kernel sees it

export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export function capsOf(pid: number): { eff: bigint; prm: bigint; amb: bigint; uid: number } {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const hex = (k: string) => BigInt('0x' + (new RegExp(`^${k}:\\s+([0-9a-f]+)`, 'm').exec(s)?.[1] ?? '0'));
  return { eff: hex('CapEff'), prm: hex('CapPrm'), amb: hex('CapAmb'), uid: Number(/^Uid:\s+(\d+)/m.exec(s)?.[1]) };
}

/** Ids of the BPF maps and programs a process holds open (fdinfo). */
export function bpfObjectsOf(pid: number): { maps: number[]; progs: number[]; links: number[] } {
  const out = { maps: [] as number[], progs: [] as number[], links: [] as number[] };
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      const info = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8');
      if (target === 'anon_inode:bpf-map') out.maps.push(Number(/^map_id:\s+(\d+)/m.exec(info)?.[1]));
      else if (target === 'anon_inode:bpf-prog') out.progs.push(Number(/^prog_id:\s+(\d+)/m.exec(info)?.[1]));
      else if (target === 'anon_inode:bpf_link') out.links.push(Number(/^link_id:\s+(\d+)/m.exec(info)?.[1]));
    } catch { /* closed meanwhile */ }
  }
  return out;
}

interface BpftoolMap { id: number; name?: string; bytes_memlock?: number; max_entries?: number; type?: string }

/** Kernel memory charged to a process's BPF maps (bpftool map show -j: bytes_memlock). */
export function bpfMapBytes(pid: number): { bytes: number; maps: number } {
  const ids = new Set(bpfObjectsOf(pid).maps);
  const all = JSON.parse(execFileSync('bpftool', ['map', 'show', '-j']).toString() || '[]') as BpftoolMap[];
  let bytes = 0;
  for (const m of all) if (ids.has(m.id)) bytes += m.bytes_memlock ?? 0;
  return { bytes, maps: ids.size };
}

/** Every BPF program / link id on the host. */
export function allProgIds(): Set<number> {
  return new Set((JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j']).toString() || '[]') as Array<{ id: number }>).map((p) => p.id));
}
export function allLinkIds(): Set<number> {
  return new Set((JSON.parse(execFileSync('bpftool', ['link', 'show', '-j']).toString() || '[]') as Array<{ id: number }>).map((p) => p.id));
}

// ---------------------------------------------------------------- the CLI agent as a child

export interface CliAgent {
  child: ChildProcess;
  url: string;
  output(): string;
}

/** `node dist/agent/cli.js run ...` in its own process group; resolves once it printed its URL. */
export function startCliAgent(args: string[], opts: { env?: NodeJS.ProcessEnv; prefix?: string[]; timeoutMs?: number } = {}): Promise<CliAgent> {
  // Started as the unit and the image start it: the tracer's node flags first.
  const argv = [...(opts.prefix ?? []), process.execPath, ...TRACER_NODE_FLAGS, CLI, 'run', '--port', '0', '--quiet', ...args];
  const child = start(argv[0], argv.slice(1), { env: { ...process.env, PREMORTEM_LOG: 'warn', ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the agent printed no URL within ${opts.timeoutMs ?? 20000} ms: ${out.slice(-1500)}`)), opts.timeoutMs ?? 20000);
    const on = (d: Buffer) => {
      out += d.toString();
      if (out.length > 200_000) out = out.slice(-100_000);
      const m = /premortem viewer: (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: m[1], output: () => out });
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code, sig) => { clearTimeout(t); reject(new Error(`the agent exited (${code ?? sig}) before printing its URL: ${out.slice(-1500)}`)); });
  });
}

/** Children of a process (from /proc/PID/task/PID/children). */
export function childPids(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Median of numbers (for RSS samples). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}
