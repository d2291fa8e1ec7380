/**
 * The one logger: nothing else in the agent writes to the console. Lines go
 * to stderr (stdout is kept for command output such as `list --json`).
 *
 * Settings (the CLI's --log-level / --log-format override them):
 *   PREMORTEM_LOG         debug | info | warn | error   (default info)
 *   PREMORTEM_LOG_FORMAT  text | json                   (default text)
 * text:  `2025-11-26T17:00:03.412Z INFO  agent started probes=runqlat,tcp`
 * json:  one object per line: {"ts":"...","level":"info","msg":"agent started","probes":"runqlat,tcp"}
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export const LOG_LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];
export const LOG_LEVEL_ENV = 'PREMORTEM_LOG';
export const LOG_FORMAT_ENV = 'PREMORTEM_LOG_FORMAT';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  setLevel(level: Level): void;
  /** Changes the line format of this logger (every module holding it follows). */
  setFormat(format: LogFormat): void;
}

export interface LoggerOptions {
  level?: Level;
  json?: boolean;
  write?: (line: string) => void;
}

export const isLevel = (v: unknown): v is Level => typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
export const isLogFormat = (v: unknown): v is LogFormat => typeof v === 'string' && (LOG_FORMATS as readonly string[]).includes(v);

export function createLogger(opts: LoggerOptions = {}): Logger {
  const envLevel = process.env[LOG_LEVEL_ENV];
  let min = ORDER[opts.level ?? (isLevel(envLevel) ? envLevel : 'info')];
  let json = opts.json ?? process.env[LOG_FORMAT_ENV] === 'json';
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    const ts = new Date().toISOString();
    if (json) {
      write(JSON.stringify({ ts, level, msg, ...fields }));
      return;
    }
    const extra = fields && Object.keys(fields).length
      ? ' ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
      : '';
    write(`${ts} ${level.toUpperCase().padEnd(5)} ${msg}${extra}`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    setLevel: (l) => { min = ORDER[l]; },
    setFormat: (f) => { json = f === 'json'; },
  };
}

/** The process-wide logger. */
export const log = createLogger();
