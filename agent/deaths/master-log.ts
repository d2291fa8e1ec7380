/**
 * What a master says about a worker it killed: the lines of its own log that
 * name the worker (gunicorn "WORKER TIMEOUT (pid:4242)", uWSGI "HARAKIRI ON
 * WORKER 1 (pid: 4242, ...)", celery "Hard time limit (30s) exceeded"), and the
 * timeout its command line sets. Read when the death is judged (the master is
 * normally alive): only its log files and a stdout/stderr that is a regular
 * file, only their tails, a bounded number of lines.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readCmdline } from '../procfs';

export const MASTER_LOG_LIMITS = {
  /** Bytes read from the end of each log. */
  tailBytes: 64 * 1024,
  /** Log files looked at per master. */
  maxFiles: 3,
  /** Lines kept about one worker. */
  maxLines: 6,
  /** A kept line is cut to this length. */
  maxLineLength: 300,
  /** Masters whose last read is kept. */
  maxMasters: 64,
  /**
   * A master's logs are read again at most this often (ms) for deaths it did not signal: under
   * fork churn thousands of deaths a second share one read. A death the master signalled always
   * gets a read made after that signal (its log line comes just before it).
   */
  rereadMs: 250,
};

/** Command-line options that name a master's log file. */
const LOG_OPTIONS = ['--error-logfile', '--log-file', '--logto', '--logto2', '--daemonize', '--logfile', '-f'];

export interface MasterFacts {
  pid: number;
  comm: string;
  cmdline: string;
  /** The server's worker timeout from its command line (s): gunicorn --timeout, uWSGI --harakiri, celery --time-limit. */
  timeoutS?: number;
  timeoutOption?: string;
  /** The server recycles workers after this many requests (--max-requests, uWSGI --max-requests). */
  maxRequests?: number;
  /** Lines of its logs about this worker, oldest first. */
  logLines: string[];
}

function optionValue(args: string[], names: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    for (const n of names) {
      if (args[i] === n && i + 1 < args.length) return args[i + 1];
      if (n.startsWith('--') && args[i].startsWith(`${n}=`)) return args[i].slice(n.length + 1);
    }
  }
  return undefined;
}

/** The worker timeout a master's command line sets (not its config file's). */
export function serverTimeout(args: string[]): { seconds: number; option: string } | undefined {
  const table: Array<[string[], string]> = [[['--timeout', '-t'], '--timeout'], [['--harakiri'], '--harakiri'], [['--time-limit'], '--time-limit']];
  const isGunicorn = args.some((a) => /(^|\/)gunicorn$/.test(a));
  for (const [names, option] of table) {
    if (option === '--timeout' && !isGunicorn) continue; // -t means other things elsewhere
    const v = Number(optionValue(args, names));
    if (Number.isFinite(v) && v > 0) return { seconds: v, option };
  }
  return undefined;
}

function logFiles(pid: number, args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    for (const n of LOG_OPTIONS) {
      const v = args[i] === n ? args[i + 1] : args[i].startsWith(`${n}=`) ? args[i].slice(n.length + 1) : undefined;
      if (v && v !== '-') out.push(path.resolve(`/proc/${pid}/cwd`, v));
    }
  }
  for (const fd of [2, 1]) {
    try {
      const target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (target.startsWith('/')) out.push(`/proc/${pid}/fd/${fd}`);
    } catch {
      /* closed, or the master is gone */
    }
  }
  return out;
}

function tail(file: string): string {
  let fd: number | undefined;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return '';
    fd = fs.openSync(file, 'r');
    const len = Math.min(st.size, MASTER_LOG_LIMITS.tailBytes);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, st.size - len);
    return buf.toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** What a line about a worker's end says (not "Booting worker", not its requests). */
const ABOUT_AN_END = /timeout|harakiri|time limit|kill|signal|sig[A-Z]{3}|exit|autorestart|max.?requests|memory|abort|error|critical|shutting|reload/i;

/** Lines that name the worker (pid:N, (pid: N), [N]) about its end, and the line before each when it says why (celery). */
export function linesAbout(text: string, workerPid: number): string[] {
  const names = new RegExp(`pid: ?${workerPid}\\b|\\[${workerPid}\\]|\\bpid ${workerPid}\\b`);
  const lines = text.split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (!names.test(line) || !ABOUT_AN_END.test(line)) return;
    const before = i > 0 ? lines[i - 1] : '';
    // The reason line before it (celery), unless that one is about another process.
    if (/time limit|timeout|harakiri/i.test(before) && !/\bpid:? ?\d/.test(before) && !out.includes(before)) out.push(before);
    out.push(line);
  });
  return out.slice(-MASTER_LOG_LIMITS.maxLines).map((l) => l.trim().slice(0, MASTER_LOG_LIMITS.maxLineLength));
}

interface MasterRead {
  readMs: number;
  args: string[];
  /** The tails of its log files. */
  tails: string[];
}

function readMaster(pid: number, readMs: number): MasterRead {
  const args = readCmdline(pid) ?? [];
  const seen = new Set<string>();
  const tails: string[] = [];
  for (const file of logFiles(pid, args)) {
    let key = file;
    try {
      const st = fs.statSync(file);
      key = `${st.dev}:${st.ino}`; // stderr and --error-logfile are often the same file
    } catch {
      continue;
    }
    if (seen.has(key) || seen.size >= MASTER_LOG_LIMITS.maxFiles) continue;
    seen.add(key);
    tails.push(tail(file));
  }
  return { readMs, args, tails };
}

function factsOf(pid: number, comm: string, workerPid: number, r: MasterRead): MasterFacts {
  const timeout = serverTimeout(r.args);
  const maxRequests = Number(optionValue(r.args, ['--max-requests']));
  const logLines = r.tails.flatMap((t) => linesAbout(t, workerPid));
  return {
    pid, comm, cmdline: r.args.join(' ').slice(0, 512), logLines: logLines.slice(-MASTER_LOG_LIMITS.maxLines),
    ...(timeout ? { timeoutS: timeout.seconds, timeoutOption: timeout.option } : {}),
    ...(maxRequests > 0 ? { maxRequests } : {}),
  };
}

export interface MasterLogReader {
  /**
   * What master `key` (pid `pid`) says about `workerPid`, from a read made at or after
   * `freshAfterMs` (its first signal to the worker), or for a death it did not signal
   * (freshAfterMs 0), from a read at most rereadMs old.
   */
  factsFor(key: string, pid: number, comm: string, workerPid: number, freshAfterMs: number): MasterFacts;
  readonly reads: number;
}

export function createMasterLogReader(now: () => number = Date.now): MasterLogReader {
  const cache = new Map<string, MasterRead>();
  let reads = 0;
  return {
    factsFor(key, pid, comm, workerPid, freshAfterMs) {
      const t = now();
      let r = cache.get(key);
      const fresh = r && (freshAfterMs ? r.readMs >= freshAfterMs : t - r.readMs < MASTER_LOG_LIMITS.rereadMs);
      if (!r || !fresh) {
        reads++;
        r = readMaster(pid, t);
        cache.delete(key);
        if (cache.size >= MASTER_LOG_LIMITS.maxMasters) cache.delete(cache.keys().next().value as string);
        cache.set(key, r);
      }
      return factsOf(pid, comm, workerPid, r);
    },
    get reads() {
      return reads;
    },
  };
}
