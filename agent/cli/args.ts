/**
 * Command-line parsing: Node's util.parseArgs in strict mode (unknown options,
 * missing values and stray positionals are refused), then every value typed
 * and range-checked from the table in spec.ts. Every refusal is a UsageError
 * naming the flag (or the environment variable) the user wrote; the CLI exits
 * 2 for it.
 */
import { parseArgs as nodeParseArgs } from 'util';
import { COMMANDS, findCommand, optionsOf, type CommandSpec, type OptionSpec } from './spec';

export class UsageError extends Error {
  readonly code = 'PREMORTEM_ERR_USAGE';
  /** The command whose help explains the mistake, when known. */
  readonly command?: string;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

export type Value = boolean | string | number | RegExp | Array<string | number>;

export interface ParsedCommand {
  /** The command name (kept as `cmd` for callers of the first parser). */
  cmd: string;
  command: CommandSpec;
  values: Map<string, Value>;
  positionals: string[];
  /** Options given on the command line (not from the environment). */
  given: Set<string>;
}

/** The early exits that need no command: help and version. */
export type EarlyAction = { action: 'help'; command?: CommandSpec } | { action: 'version' };

const INT_RE = /^[+-]?\d+$/;

function where(o: OptionSpec, fromEnv: boolean): string {
  return fromEnv ? `${o.env} (used for --${o.name})` : `--${o.name}`;
}

/** One value, typed and checked; `fromEnv` changes only what the error names. */
export function convert(o: OptionSpec, raw: string, fromEnv = false, command?: string): Value {
  const name = where(o, fromEnv);
  const bad = (why: string) => new UsageError(`${name} ${why}, got '${raw}'`, command);
  switch (o.kind) {
    case 'int': {
      const n = Number(raw.trim());
      if (!INT_RE.test(raw.trim()) || !Number.isSafeInteger(n)) throw bad('must be an integer');
      if ((o.min !== undefined && n < o.min) || (o.max !== undefined && n > o.max))
        throw bad(`must be an integer from ${o.min} to ${o.max}`);
      return n;
    }
    case 'regex':
      try {
        return new RegExp(raw);
      } catch (e) {
        throw new UsageError(`${name} is not a valid regular expression: ${(e as Error).message}`, command);
      }
    case 'choice':
      if (!o.choices!.includes(raw)) throw bad(`must be one of ${o.choices!.join(', ')}`);
      return raw;
    case 'url': {
      let u: URL;
      try { u = new URL(raw); } catch { throw bad('must be a URL such as http://127.0.0.1:4318'); }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw bad('must be an http:// or https:// URL');
      return raw;
    }
    case 'probe':
      if (!/^[a-z0-9_]+\/[a-z0-9_]+$/.test(raw)) throw bad('must be PROBE/PROGRAM, e.g. runqlat/sched_switch (see premortem doctor)');
      return raw;
    case 'path': case 'string':
      if (raw === '') throw bad('must not be empty');
      return raw;
    default:
      return raw;
  }
}

/** The closest option name, for "did you mean". */
function closest(word: string, names: string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++)
      for (let j = 1; j <= b.length; j++)
        d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length][b.length];
  };
  let best: string | undefined;
  let bestD = 3;
  for (const n of names) {
    const d = dist(word, n);
    if (d < bestD) { best = n; bestD = d; }
  }
  return best;
}

function nodeError(e: Error & { code?: string }, cmd: CommandSpec): UsageError {
  const names = optionsOf(cmd).map((o) => o.name);
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const opt = /'([^']+)'/.exec(e.message)?.[1] ?? '';
    const hint = closest(opt.replace(/^-+/, '').split('=')[0], names);
    return new UsageError(`unknown option ${opt} for '${cmd.name}'${hint ? ` (did you mean --${hint}?)` : ''}`, cmd.name);
  }
  if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /'([^']+)'/.exec(e.message)?.[1] ?? '';
    return new UsageError(`unexpected argument '${arg}' for '${cmd.name}'`, cmd.name);
  }
  // ERR_PARSE_ARGS_INVALID_OPTION_VALUE: Node's message names the option ("Option '-p, --pid <value>' argument missing").
  const flag = /--([a-z0-9-]+)/.exec(e.message)?.[1] ?? '?';
  if (/does not take an argument/.test(e.message)) return new UsageError(`--${flag} takes no value`, cmd.name);
  if (/ambiguous/.test(e.message))
    return new UsageError(`--${flag} needs a value; one starting with '-' is written --${flag}=VALUE`, cmd.name);
  return new UsageError(`--${flag} needs a value`, cmd.name);
}

/** Help and version requested without a command (`premortem --help`, `premortem -V`, `premortem help run`). */
export function earlyAction(argv: string[]): EarlyAction | undefined {
  const [first, second] = argv;
  if (first === undefined || first === '-h' || first === '--help') return { action: 'help' };
  if (first === '-V' || first === '--version' || first === 'version') return { action: 'version' };
  if (first === 'help') {
    if (second === undefined) return { action: 'help' };
    const command = findCommand(second);
    if (!command) throw new UsageError(`no command '${second}': commands are ${COMMANDS.map((c) => c.name).join(', ')}`);
    return { action: 'help', command };
  }
  return undefined;
}

/**
 * Parses `<command> [options] [positionals]`. Throws UsageError for anything
 * the table refuses. `env` supplies the fallbacks of options with an `env`.
 */
export function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedCommand {
  const [name, ...rest] = argv;
  if (name === undefined) throw new UsageError('missing command');
  if (name.startsWith('-')) throw new UsageError(`missing command before ${name}: commands are ${COMMANDS.map((c) => c.name).join(', ')}`);
  const command = findCommand(name);
  if (!command) {
    const hint = closest(name, COMMANDS.map((c) => c.name));
    throw new UsageError(`unknown command '${name}'${hint ? ` (did you mean '${hint}'?)` : ''}: commands are ${COMMANDS.map((c) => c.name).join(', ')}`);
  }
  const specs = optionsOf(command);
  const nodeOptions: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const o of specs) {
    nodeOptions[o.name] = { type: o.kind === 'flag' ? 'boolean' : 'string' };
    if (o.short) nodeOptions[o.name].short = o.short;
    if (o.multiple) nodeOptions[o.name].multiple = true;
  }
  let parsed: { values: Record<string, string | boolean | Array<string | boolean> | undefined>; positionals: string[] };
  try {
    parsed = nodeParseArgs({ args: rest, options: nodeOptions, strict: true, allowPositionals: true }) as typeof parsed;
  } catch (e) {
    if (!String((e as { code?: string }).code).startsWith('ERR_PARSE_ARGS_')) throw e;
    throw nodeError(e as Error & { code?: string }, command);
  }
  const values = new Map<string, Value>();
  const given = new Set<string>();
  // Help wins over every other mistake on the line.
  if (parsed.values.help) return { cmd: command.name, command, values: new Map([['help', true]]), positionals: [], given: new Set(['help']) };
  for (const o of specs) {
    const v = parsed.values[o.name];
    if (v === undefined) {
      const fromEnv = o.env ? env[o.env] : undefined;
      if (fromEnv !== undefined && fromEnv !== '') values.set(o.name, convert(o, fromEnv, true, command.name));
      continue;
    }
    given.add(o.name);
    if (o.kind === 'flag') values.set(o.name, true);
    else if (o.multiple) values.set(o.name, (v as string[]).map((x) => convert(o, x, false, command.name) as string | number));
    else values.set(o.name, convert(o, v as string, false, command.name));
  }
  const pos = parsed.positionals;
  if (pos.length > command.positionals.length) {
    throw new UsageError(`unexpected argument '${pos[command.positionals.length]}' for '${command.name}'`, command.name);
  }
  if (!values.has('version') && pos.length < command.positionals.length) {
    const missing = command.positionals[pos.length];
    throw new UsageError(`'${command.name}' needs ${missing.name}: ${missing.help}`, command.name);
  }
  return { cmd: command.name, command, values, positionals: pos, given };
}

/** Typed accessors over a ParsedCommand's values. */
export const get = {
  flag: (p: ParsedCommand, n: string): boolean => p.values.get(n) === true,
  str: (p: ParsedCommand, n: string): string | undefined => p.values.get(n) as string | undefined,
  int: (p: ParsedCommand, n: string): number | undefined => p.values.get(n) as number | undefined,
  regex: (p: ParsedCommand, n: string): RegExp | undefined => p.values.get(n) as RegExp | undefined,
  list: <T extends string | number>(p: ParsedCommand, n: string): T[] => (p.values.get(n) as T[] | undefined) ?? [],
};
