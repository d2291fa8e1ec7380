/**
 * `premortem run`: the flags turned into agent options (every check names the
 * flag the user wrote), then the agent, its server and the live summary.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import { isLoopback, resolveOptions, DEFAULTS, type AgentOptionsInput } from '../../config';
import { log } from '../../log';
import type { Bucket } from '../../../proto/codec';
import { formatBytes } from '../../../proto/format';
import { get, UsageError, type ParsedCommand } from '../args';
import { writeOut } from '../output';
import { TOKEN_ENV } from '../spec';

/** Internal option names -> the flags that set them, for messages from resolveOptions. */
const FLAG_OF: Array<[RegExp, string]> = [
  [/\bbundleWindowMs\b/g, '--bundle-window-s'], [/\bwindowMs\b/g, '--window-s'], [/\bintervalMs\b/g, '--interval-ms'],
  [/\bmaxTrackedProcesses\b/g, '--max-tracked'], [/\bstackIntervalMs\b/g, '--stack-interval-ms'], [/\bquotaBytes\b/g, '--quota-mb'], [/\bport\b/g, '--port'],
];

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

function tokenOf(p: ParsedCommand): string | undefined {
  const token = get.str(p, 'token');
  const file = get.str(p, 'token-file');
  if (p.given.has('token') && file) throw new UsageError('--token and --token-file are exclusive: give one', 'run');
  if (file) {
    try {
      return loadTokenFile(file);
    } catch (e) {
      throw e instanceof TypeError ? new UsageError(e.message, 'run') : e;
    }
  }
  // Read at use, not at parse: the environment may be set in between (deploy tests, wrappers).
  return token ?? (process.env[TOKEN_ENV] || undefined);
}

/** Checks between flags, with the flags' own names and units. */
function crossCheck(o: AgentOptionsInput, p: ParsedCommand): void {
  const interval = o.intervalMs ?? DEFAULTS.intervalMs;
  const window = o.windowMs ?? DEFAULTS.windowMs;
  const bundle = o.bundleWindowMs ?? DEFAULTS.bundleWindowMs;
  if (window % interval !== 0)
    throw new UsageError(`--window-s (${window / 1000} s) must be a whole number of --interval-ms (${interval} ms) buckets`, 'run');
  if (window / interval > 100_000)
    throw new UsageError(`--window-s / --interval-ms gives ${window / interval} buckets per timeline; at most 100000`, 'run');
  if (bundle > window)
    throw new UsageError(`--bundle-window-s (${bundle / 1000} s) cannot exceed --window-s (${window / 1000} s)`, 'run');
  if (get.flag(p, 'no-server')) {
    for (const f of ['host', 'port', 'token', 'token-file'])
      if (p.given.has(f)) throw new UsageError(`--no-server and --${f} contradict each other: there is no server`, 'run');
  } else if (o.host && !isLoopback(o.host) && !o.token) {
    throw new UsageError(`--host ${o.host} is not loopback: it requires a token (--token, --token-file or ${TOKEN_ENV})`, 'run');
  }
}

/** Agent options from `run` flags; throws UsageError naming the flag. */
export function runOptions(p: ParsedCommand): AgentOptionsInput {
  const o: AgentOptionsInput = {};
  const str = (n: string) => get.str(p, n);
  const int = (n: string) => get.int(p, n);
  if (str('host')) o.host = str('host');
  if (int('port') !== undefined) o.port = int('port');
  if (get.flag(p, 'no-server')) o.port = null;
  o.token = tokenOf(p);
  if (p.values.has('pid')) o.pids = get.list<number>(p, 'pid');
  if (get.regex(p, 'match')) o.match = get.regex(p, 'match');
  if (get.regex(p, 'exclude')) o.exclude = get.regex(p, 'exclude');
  if (str('cgroup')) o.cgroup = str('cgroup');
  if (get.flag(p, 'no-auto')) o.autoDiscover = false;
  if (int('interval-ms') !== undefined) o.intervalMs = int('interval-ms');
  if (int('window-s') !== undefined) o.windowMs = int('window-s')! * 1000;
  if (int('bundle-window-s') !== undefined) o.bundleWindowMs = int('bundle-window-s')! * 1000;
  if (int('max-tracked') !== undefined) o.maxTrackedProcesses = int('max-tracked');
  if (int('stack-interval-ms') !== undefined) {
    o.stackIntervalMs = int('stack-interval-ms');
    // A slower base rate keeps the default burst; a faster one bursts at its own rate.
    o.stackBurstIntervalMs = Math.min(DEFAULTS.stackBurstIntervalMs, o.stackIntervalMs || DEFAULTS.stackBurstIntervalMs);
  }
  if (str('data-dir')) o.dataDir = str('data-dir');
  if (int('quota-mb') !== undefined) o.quotaBytes = int('quota-mb')! * 1024 * 1024;
  if (p.values.has('disable')) o.disablePrograms = get.list<string>(p, 'disable');
  crossCheck(o, p);
  try {
    resolveOptions(o);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    let msg = e.message.replace(/^option /, '');
    for (const [re, flag] of FLAG_OF) msg = msg.replace(re, flag);
    throw new UsageError(msg, 'run');
  }
  return o;
}

function summaryLines(running: import('../../run').Running, delta: { tMs: number; workers: Array<{ pid: number; serviceId: string; bucket?: unknown }> }): string {
  const snap = running.agent.snapshot();
  const lines = [`-- ${new Date(delta.tMs).toISOString().slice(11, 19)} ${snap.services.length} services, ${delta.workers.length} live processes`];
  for (const s of snap.services) {
    lines.push(`   ${s.name}`);
    for (const w of delta.workers.filter((x) => x.serviceId === s.id)) {
      const b = w.bucket as Bucket;
      lines.push(`     pid ${String(w.pid).padEnd(7)} runq p50 ${String(b.runqP50Us).padStart(6)} µs  p99 ${String(b.runqP99Us).padStart(7)} µs  max ${String(b.runqMaxUs).padStart(7)} µs  invol ${String(b.involuntarySwitches).padStart(5)}  rss ${formatBytes(b.rssBytes)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** Starts the agent; resolves once it runs (the process then lives until SIGINT/SIGTERM). */
export async function run(p: ParsedCommand): Promise<number> {
  const options = runOptions(p);
  // Loaded here: --help, --version and the read commands never load the agent.
  const { runPremortem } = await import('../../run');
  const otlpEndpoint = get.str(p, 'otlp-endpoint');
  // Signals are handled from the start: a SIGTERM while the probes load stops the agent once it runs.
  let running: import('../../run').Running | undefined;
  let stopRequested: string | undefined;
  // The agent's own timers do not hold Node open (so tests can stop it); the command does.
  const keepAlive = setInterval(() => undefined, 1 << 30);
  const shutdown = (sig: string) => {
    if (!running) { stopRequested = sig; return; }
    log.info(`${sig}: shutting down`);
    clearInterval(keepAlive);
    running.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  try {
    running = await runPremortem(options, {
      metrics: get.flag(p, 'no-metrics') ? false : { pidLabel: get.flag(p, 'metrics-pid-label') },
      otlp: otlpEndpoint ? { endpoint: otlpEndpoint } : undefined,
    });
  } catch (e) {
    clearInterval(keepAlive);
    throw e;
  }
  const live = running;
  if (stopRequested) {
    shutdown(stopRequested);
    return -1;
  }
  if (live.url) await writeOut(`premortem viewer: ${live.url}\n`);
  const quiet = get.flag(p, 'quiet');
  let lastPrint = 0;
  live.agent.on('tick', (delta) => {
    if (quiet || Date.now() - lastPrint < 5000) return;
    lastPrint = Date.now();
    void writeOut(summaryLines(live, delta)).catch(() => undefined);
  });
  live.agent.on('death', (d) => {
    if (!d.verdict || (quiet && !d.verdict.failure)) return; // planned exits (recycling) can come by the thousand
    void writeOut(`!! ${d.verdict.kind}: ${d.verdict.summary}\n`).catch(() => undefined);
  });
  return -1; // keeps running
}
