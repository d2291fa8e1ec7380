/**
 * The command line's one table: every command, its positionals and its
 * options with their types, ranges, environment fallbacks and help. The
 * parser (args.ts) and the help text (help.ts) are both derived from it.
 */
import { LOG_FORMATS, LOG_FORMAT_ENV, LOG_LEVELS, LOG_LEVEL_ENV } from '../log';
import { EXPORT_FORMATS } from '../export';

/**
 * flag: no value. string/path: any text. int: a decimal integer within
 * [min, max]. regex: a JavaScript regular expression. choice: one of choices.
 * url: an http:// or https:// URL. probe: PROBE/PROGRAM.
 */
export type OptionKind = 'flag' | 'string' | 'path' | 'int' | 'regex' | 'choice' | 'url' | 'probe';

export interface OptionSpec {
  /** Long name without the dashes. */
  name: string;
  short?: string;
  kind: OptionKind;
  multiple?: boolean;
  min?: number;
  max?: number;
  choices?: readonly string[];
  /** Placeholder in the help (N, REGEX, PATH). */
  arg?: string;
  help: string;
  /** Environment variable read when the option is absent. */
  env?: string;
  /** Default value as shown in the help (the value itself lives in config.ts or the command). */
  defaultText?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Required positionals, in order. */
  positionals: Array<{ name: string; help: string }>;
  options: OptionSpec[];
  examples: string[];
}

/** Linux's PID_MAX_LIMIT: no pid is larger. */
export const PID_MAX = 4_194_304;
export const DATA_DIR_ENV = 'PREMORTEM_DATA_DIR';
export const TOKEN_ENV = 'PREMORTEM_TOKEN';

/** Exit codes of every command. */
export const EXIT = { ok: 0, failure: 1, usage: 2, brokenPipe: 141 } as const;

/** Accepted by every command. */
export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'help', short: 'h', kind: 'flag', help: 'show this help and exit' },
  { name: 'version', short: 'V', kind: 'flag', help: 'print the version and exit' },
  { name: 'log-level', kind: 'choice', choices: LOG_LEVELS, arg: 'LEVEL', env: LOG_LEVEL_ENV, defaultText: 'info', help: 'least severe log lines written to stderr' },
  { name: 'log-format', kind: 'choice', choices: LOG_FORMATS, arg: 'FORMAT', env: LOG_FORMAT_ENV, defaultText: 'text', help: 'log line format on stderr (json: one object per line)' },
];

const DATA_DIR: OptionSpec = {
  name: 'data-dir', kind: 'path', arg: 'DIR', env: DATA_DIR_ENV, defaultText: '/var/lib/premortem', help: 'the post-mortem directory',
};
const JSON_OUT: OptionSpec = { name: 'json', kind: 'flag', help: 'machine-readable output (JSON) on stdout' };
const DISABLE: OptionSpec = {
  name: 'disable', kind: 'probe', multiple: true, arg: 'PROBE/PROG', help: 'do not load this BPF program, as if its hook were missing (repeatable)',
};
const ID = { name: 'ID', help: 'a post-mortem id, as `premortem list` prints it' };

export const COMMANDS: CommandSpec[] = [
  {
    name: 'run',
    summary: 'trace Python workers, keep their timelines, write post-mortems, serve the viewer and /metrics',
    positionals: [],
    options: [
      { name: 'host', kind: 'string', arg: 'ADDR', defaultText: '127.0.0.1', help: 'bind address of the viewer (anything but loopback needs a token)' },
      { name: 'port', kind: 'int', min: 0, max: 65535, arg: 'N', defaultText: '7070', help: 'viewer and /metrics port (0: any free port)' },
      { name: 'token', kind: 'string', arg: 'TOKEN', env: TOKEN_ENV, help: 'access token; required off loopback' },
      { name: 'token-file', kind: 'path', arg: 'PATH', help: 'read the token from PATH; if absent, create it (random, mode 0600)' },
      { name: 'no-server', kind: 'flag', help: 'no HTTP/WebSocket server (no viewer, no /metrics)' },
      { name: 'pid', short: 'p', kind: 'int', min: 1, max: PID_MAX, multiple: true, arg: 'PID', help: 'track this process (repeatable)' },
      { name: 'match', kind: 'regex', arg: 'REGEX', help: 'track processes whose command line matches' },
      { name: 'cgroup', kind: 'path', arg: 'PATH', help: 'track Python servers in this cgroup and below' },
      { name: 'exclude', kind: 'regex', arg: 'REGEX', help: 'never track processes whose command line matches' },
      { name: 'no-auto', kind: 'flag', help: 'track only what --pid/--match/--cgroup select' },
      { name: 'interval-ms', kind: 'int', min: 100, max: 3_600_000, arg: 'N', defaultText: '1000', help: 'timeline bucket length' },
      { name: 'window-s', kind: 'int', min: 1, max: 7 * 86_400, arg: 'N', defaultText: '600', help: 'timeline length kept in memory' },
      { name: 'bundle-window-s', kind: 'int', min: 1, max: 7 * 86_400, arg: 'N', defaultText: '300', help: 'history frozen into a post-mortem (at most --window-s)' },
      { name: 'max-tracked', kind: 'int', min: 1, max: 8192, arg: 'N', defaultText: '512', help: 'cap on tracked processes' },
      { name: 'stack-interval-ms', kind: 'int', min: 0, max: 3_600_000, arg: 'N', defaultText: '1000', help: "sample each worker's Python stack this often (0: never); faster for 5 s after a warning or a stop signal" },
      DATA_DIR,
      { name: 'quota-mb', kind: 'int', min: 1, max: 1_048_576, arg: 'N', defaultText: '256', help: 'disk quota of the post-mortem directory' },
      DISABLE,
      { name: 'quiet', kind: 'flag', help: 'no live summary on stdout' },
      { name: 'no-metrics', kind: 'flag', help: 'do not serve Prometheus /metrics' },
      { name: 'metrics-pid-label', kind: 'flag', help: 'add a pid label to per-worker series (default: slot only, stable across worker recycling)' },
      { name: 'otlp-endpoint', kind: 'url', arg: 'URL', help: 'also send metrics and post-mortems over OTLP/HTTP protobuf (e.g. http://127.0.0.1:4318)' },
    ],
    examples: [
      'premortem run                                   # every Python web service on this host',
      'premortem run -p 4242 -p 4243 --no-auto         # only these processes',
      'premortem run --host 0.0.0.0 --token-file /etc/premortem/token',
    ],
  },
  {
    name: 'doctor',
    summary: 'check what the agent needs on this host (loads every probe for real); exits 1 when it cannot run',
    positionals: [],
    options: [JSON_OUT, DISABLE],
    examples: ['premortem doctor', 'premortem doctor --json | jq .canRun'],
  },
  {
    name: 'list',
    summary: 'recent post-mortems, newest first: id, time (UTC), verdict, pid, service (reads only)',
    positionals: [],
    options: [JSON_OUT, DATA_DIR],
    examples: ['premortem list', 'premortem list --json | jq ".[0].id"'],
  },
  {
    name: 'show',
    summary: 'one post-mortem: verdict, evidence, who sent the signal (by role), the last Python stack, key series as sparklines, markers (reads only)',
    positionals: [ID],
    options: [JSON_OUT, DATA_DIR],
    examples: ['premortem show 20251126-170003-412-4242-ab12', 'premortem show ID --json'],
  },
  {
    name: 'export',
    summary: 'write one post-mortem as JSON, protobuf, a Perfetto trace or a self-contained HTML page (reads only)',
    positionals: [ID],
    options: [
      { name: 'format', short: 'f', kind: 'choice', choices: EXPORT_FORMATS, arg: 'FORMAT', defaultText: 'json', help: 'output format' },
      { name: 'out', short: 'o', kind: 'path', arg: 'FILE', help: 'write to FILE (mode 0600) instead of stdout' },
      DATA_DIR,
    ],
    examples: ['premortem export ID --format perfetto -o trace.json', 'premortem export ID --format html -o report.html'],
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** Every option a command accepts: its own, then the global ones. */
export function optionsOf(cmd: CommandSpec): OptionSpec[] {
  return [...cmd.options, ...GLOBAL_OPTIONS];
}
