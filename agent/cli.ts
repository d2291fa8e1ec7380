#!/usr/bin/env node
/**
 * premortem command line: run, doctor, list, show, export.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import type { AgentOptionsInput } from './config';
import { DEFAULTS } from './config';
import { formatDoctor, runDoctor } from './doctor';
import { log } from './log';
import { runPremortem } from './run';
import { createBundleStore, bundleToJson } from './store';
import type { Bundle, Bucket } from './proto';
import { formatBytes } from './deaths/verdict';

const USAGE = `usage: premortem <command> [options]

commands:
  run                 trace Python workers, keep timelines, write post-mortems, serve the viewer
  doctor [--json] [--disable PROBE/PROG]...
                      check what the agent needs on this host (--disable: as if
                      that program's hook were missing)
  list [--json]       recent incidents (time, service, worker, verdict)
  show ID             an incident's summary and key series
  export ID --format json|pb|perfetto|html [--out FILE]

run options:
  --host H            bind address (default 127.0.0.1; anything else needs --token)
  --port N            viewer port (default 7070; 0 = any free port)
  --token T           access token (or PREMORTEM_TOKEN); required off loopback
  --token-file PATH   read the token from PATH; if absent, create it with a random
                      token, mode 0600 (refused if group/other can read it)
  --no-server         no HTTP/WebSocket server
  --pid N             track this process (repeatable)
  --match REGEX       track processes whose command line matches
  --cgroup PATH       track Python servers in this cgroup (and below)
  --exclude REGEX     never track processes whose command line matches
  --no-auto           only what --pid/--match/--cgroup select
  --interval-ms N     timeline bucket (default 1000)
  --window-s N        timeline length (default 600)
  --bundle-window-s N post-mortem length (default 300)
  --max-tracked N     cap on tracked processes (default 512)
  --data-dir DIR      post-mortems (default /var/lib/premortem)
  --quota-mb N        disk quota for post-mortems (default 256)
  --disable PROBE/PROG  do not load one BPF program (repeatable)
  --quiet             no live summary in the terminal
  --no-metrics        do not serve Prometheus /metrics (see docs/DEPLOY.md)
  --otlp-endpoint URL also export metrics and post-mortems over OTLP/HTTP protobuf (e.g. http://127.0.0.1:4318)
`;

interface Parsed {
  cmd: string;
  positional: string[];
  flags: Map<string, string[]>;
}

const BOOLEAN_FLAGS = new Set(['json', 'no-server', 'no-auto', 'quiet', 'help', 'no-metrics']);

export function parseArgs(argv: string[]): Parsed {
  const [cmd = 'help', ...rest] = argv;
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2);
    const value = BOOLEAN_FLAGS.has(name) ? 'true' : inline ?? rest[++i];
    if (value === undefined) throw new TypeError(`option --${name} needs a value`);
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { cmd, positional, flags };
}

function num(p: Parsed, name: string): number | undefined {
  const v = p.flags.get(name)?.at(-1);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new TypeError(`--${name} must be a number, got ${v}`);
  return n;
}

/**
 * The token kept in a file: read when present (it must be private to its
 * owner), created with 32 random bytes and mode 0600 when absent.
 */
export function loadTokenFile(file: string): string {
  try {
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    try {
      fs.writeSync(fd, randomBytes(32).toString('base64url') + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = fs.statSync(file);
  if (!st.isFile()) throw new TypeError(`--token-file ${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0)
    throw new TypeError(`--token-file ${file} has mode 0${(st.mode & 0o777).toString(8)}: others can read it; chmod 600 ${file}`);
  const token = fs.readFileSync(file, 'utf8').trim();
  if (token.length < 16) throw new TypeError(`--token-file ${file} holds fewer than 16 characters`);
  return token;
}

export function runOptions(p: Parsed): AgentOptionsInput {
  const o: AgentOptionsInput = {};
  const str = (n: string) => p.flags.get(n)?.at(-1);
  if (str('host')) o.host = str('host');
  if (p.flags.has('port')) o.port = num(p, 'port');
  if (p.flags.has('no-server')) o.port = null;
  o.token = str('token') ?? (str('token-file') ? loadTokenFile(str('token-file')!) : undefined) ?? process.env.PREMORTEM_TOKEN;
  if (p.flags.has('pid')) o.pids = p.flags.get('pid')!.map(Number);
  if (str('match')) o.match = new RegExp(str('match')!);
  if (str('exclude')) o.exclude = new RegExp(str('exclude')!);
  if (str('cgroup')) o.cgroup = str('cgroup');
  if (p.flags.has('no-auto')) o.autoDiscover = false;
  if (p.flags.has('interval-ms')) o.intervalMs = num(p, 'interval-ms');
  if (p.flags.has('window-s')) o.windowMs = num(p, 'window-s')! * 1000;
  if (p.flags.has('bundle-window-s')) o.bundleWindowMs = num(p, 'bundle-window-s')! * 1000;
  if (p.flags.has('max-tracked')) o.maxTrackedProcesses = num(p, 'max-tracked');
  if (str('data-dir')) o.dataDir = str('data-dir');
  if (p.flags.has('quota-mb')) o.quotaBytes = num(p, 'quota-mb')! * 1024 * 1024;
  if (p.flags.has('disable')) o.disablePrograms = p.flags.get('disable');
  return o;
}

async function cmdRun(p: Parsed): Promise<void> {
  const otlpEndpoint = p.flags.get('otlp-endpoint')?.at(-1);
  const running = await runPremortem(runOptions(p), { metrics: !p.flags.has('no-metrics'), otlp: otlpEndpoint ? { endpoint: otlpEndpoint } : undefined });
  if (running.url) process.stdout.write(`premortem viewer: ${running.url}\n`);
  const quiet = p.flags.has('quiet');
  let lastPrint = 0;
  running.agent.on('tick', (delta) => {
    if (quiet || Date.now() - lastPrint < 5000) return;
    lastPrint = Date.now();
    const snap = running.agent.snapshot();
    const lines = [`-- ${new Date(delta.tMs).toISOString().slice(11, 19)} ${snap.services.length} services, ${delta.workers.length} live processes`];
    for (const s of snap.services) {
      lines.push(`   ${s.name}`);
      for (const w of delta.workers.filter((x: { serviceId: string }) => x.serviceId === s.id)) {
        const b = w.bucket as Bucket;
        lines.push(`     pid ${String(w.pid).padEnd(7)} runq p50 ${String(b.runqP50Us).padStart(6)} µs  p99 ${String(b.runqP99Us).padStart(7)} µs  max ${String(b.runqMaxUs).padStart(7)} µs  invol ${String(b.involuntarySwitches).padStart(5)}  rss ${formatBytes(b.rssBytes)}`);
      }
    }
    process.stdout.write(lines.join('\n') + '\n');
  });
  running.agent.on('death', (d) => {
    if (!d.verdict || (quiet && !d.verdict.failure)) return; // planned exits (recycling) can come by the thousand
    process.stdout.write(`!! ${d.verdict.kind}: ${d.verdict.summary}\n`);
  });
  // The agent's own timers do not hold Node open (so tests can stop it); the command does.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const shutdown = (sig: string) => {
    log.info(`${sig}: shutting down`);
    clearInterval(keepAlive);
    running.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

function storeFor(p: Parsed) {
  return createBundleStore({ dir: p.flags.get('data-dir')?.at(-1) ?? DEFAULTS.dataDir });
}

async function cmdList(p: Parsed): Promise<void> {
  const store = storeFor(p);
  await store.ready();
  const list = await store.list();
  if (p.flags.has('json')) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
  else if (!list.length) process.stdout.write('no post-mortems yet\n');
  else for (const i of list)
    process.stdout.write(`${i.id}  ${new Date(i.tMs).toISOString().replace('T', ' ').slice(0, 23)}  ${i.verdictKind.padEnd(16)} pid ${String(i.pid).padEnd(7)} ${i.service}\n`);
  await store.close();
}

function sparkline(values: number[]): string {
  const ticks = '▁▂▃▄▅▆▇█';
  const max = Math.max(...values, 1);
  return values.map((v) => ticks[Math.min(7, Math.floor((v / max) * 7.999))]).join('');
}

export function formatBundle(b: Bundle): string {
  const v = b.verdict!;
  const dead = b.timelines[0]?.buckets ?? [];
  const last = dead.slice(-60);
  const out = [
    `post-mortem ${b.id}`,
    `worker    pid ${b.worker?.pid} (${b.worker?.comm}) generation ${b.worker?.generation}, ${b.service?.name ?? ''}`,
    `died      ${new Date(v.tMs).toISOString()}`,
    `verdict   ${v.kind}${v.failure ? '' : ' (planned)'}`,
    `summary   ${v.summary}`,
    'evidence',
    ...v.evidence.map((e) => `  - ${e.what}: ${e.value}${e.tMs ? ` at ${new Date(e.tMs).toISOString().slice(11, 23)}` : ''}`),
    `window    ${Math.round((b.windowEndMs - b.windowStartMs) / 1000)} s, ${b.timelines.length} timelines, ${b.markers.length} markers, ${b.lostRecords} records lost`,
    `last ${last.length} s:`,
    `  rss        ${sparkline(last.map((x) => x.rssBytes))}  ${formatBytes(last.at(-1)?.rssBytes ?? 0)}`,
    `  runq p99   ${sparkline(last.map((x) => x.runqP99Us))}  ${last.at(-1)?.runqP99Us ?? 0} µs`,
    `  faults     ${sparkline(last.map((x) => x.minorFaults + x.majorFaults))}`,
    `  cpu ms     ${sparkline(last.map((x) => x.cpuMs))}`,
  ];
  if (b.cgroupLimits?.memoryMaxBytes) out.push(`cgroup    ${b.cgroupLimits.path} limit ${formatBytes(b.cgroupLimits.memoryMaxBytes)}`);
  const notable = b.markers.filter((m) => m.severity !== 'info').slice(-10);
  if (notable.length) {
    out.push('markers');
    for (const m of notable) out.push(`  ${new Date(m.tMs).toISOString().slice(11, 23)} ${m.kind}: ${m.message}`);
  }
  return out.join('\n');
}

async function cmdShow(p: Parsed): Promise<void> {
  const id = p.positional[0];
  if (!id) throw new TypeError('premortem show ID: which incident? (see premortem list)');
  const store = storeFor(p);
  await store.ready();
  process.stdout.write(formatBundle(await store.read(id)) + '\n');
  await store.close();
}

async function cmdExport(p: Parsed): Promise<void> {
  const id = p.positional[0];
  const format = p.flags.get('format')?.at(-1) ?? 'json';
  if (!id) throw new TypeError('premortem export ID --format json|pb');
  const store = storeFor(p);
  await store.ready();
  let data: Uint8Array | string;
  if (format === 'pb') data = await store.readRaw(id);
  else if (format === 'json') data = JSON.stringify(bundleToJson(await store.read(id)), null, 2) + '\n';
  else {
    const exporters: Record<string, string> = { perfetto: './export-perfetto', html: './export-html' };
    if (!exporters[format]) throw new TypeError(`unknown format ${format}: use json, pb, perfetto or html`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(exporters[format]);
    data = await mod.exportBundle(await store.read(id));
  }
  const out = p.flags.get('out')?.at(-1);
  if (out) fs.writeFileSync(out, data, { mode: 0o600 });
  else process.stdout.write(data);
  await store.close();
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const p = parseArgs(argv);
  if (p.flags.has('help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  switch (p.cmd) {
    case 'run':
      await cmdRun(p);
      return -1; // keeps running
    case 'doctor': {
      const r = await runDoctor({ disablePrograms: p.flags.get('disable') ?? [] });
      process.stdout.write((p.flags.has('json') ? JSON.stringify(r, null, 2) : formatDoctor(r)) + '\n');
      return r.canRun ? 0 : 1;
    }
    case 'list': await cmdList(p); return 0;
    case 'show': await cmdShow(p); return 0;
    case 'export': await cmdExport(p); return 0;
    case 'help': case '--help': case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`unknown command ${p.cmd}\n${USAGE}`);
      return 2;
  }
}

/** Runs the CLI and sets the exit status. */
export function cliEntry(): void {
  main().then((code) => {
    if (code >= 0) process.exitCode = code;
  }, (e) => {
    const err = e as Error & { code?: string };
    process.stderr.write(`premortem: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
    process.exitCode = err instanceof TypeError ? 2 : 1;
  });
}

if (require.main === module) cliEntry();
