/**
 * The window a death is explained over: the server's own timeout, read from
 * its master's command line or config file, else DEFAULT_WINDOW_MS.
 *   gunicorn: --timeout N, -t N (command line, GUNICORN_CMD_ARGS, or `timeout = N`
 *             in the -c/--config file, ./gunicorn.conf.py by default); 0 = none
 *   uvicorn:  --timeout-graceful-shutdown N
 *   uWSGI:    --harakiri N, -t N, or `harakiri = N` in the --ini file
 * Pure: the caller hands in the argv and a way to read a config file.
 */
import type { ServiceKind } from '../../proto/codec';

export const DEFAULT_WINDOW_MS = 30_000;

export interface ServerWindow {
  ms: number;
  /** Why this span: "gunicorn --timeout 45", "timeout = 60 in gunicorn.conf.py", "default". */
  source: string;
}

/** What the parser may read: a config file by path as the master sees it (relative to its cwd). */
export type ConfigReader = (path: string) => string | null;

/** The value of a long option (--name N, --name=N) or a short one (-x N, -xN); the last one wins. */
export function optionValue(argv: readonly string[], long: string, short?: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === `--${long}` || (short && a === `-${short}`)) found = argv[i + 1];
    else if (a.startsWith(`--${long}=`)) found = a.slice(long.length + 3);
    else if (short && a.startsWith(`-${short}`) && !a.startsWith('--') && a.length > 2) found = a.slice(2);
  }
  return found;
}

const seconds = (v: string | undefined): number | undefined => {
  if (v === undefined || !/^\s*\d+(\.\d+)?\s*$/.test(v)) return undefined;
  return Number(v);
};

/** `name = N` in a Python config file (gunicorn) or an ini file (uWSGI), ignoring comments. */
export function configValue(text: string, name: string): number | undefined {
  const re = new RegExp(`^\\s*${name}\\s*[=:]\\s*(\\d+(?:\\.\\d+)?)\\s*(?:[#;].*)?$`, 'gm');
  let last: number | undefined;
  for (const m of text.matchAll(re)) last = Number(m[1]);
  return last;
}

/** Splits GUNICORN_CMD_ARGS the way a shell would for simple values (no quoting games). */
const splitArgs = (s: string) => s.trim().split(/\s+/).filter(Boolean);

function window(ms: number, source: string): ServerWindow {
  return { ms, source };
}

function gunicorn(argv: readonly string[], env: Record<string, string>, read: ConfigReader): ServerWindow | undefined {
  // Precedence as gunicorn applies it: command line, then GUNICORN_CMD_ARGS, then the config file.
  let v = seconds(optionValue(argv, 'timeout', 't'));
  let source = `gunicorn --timeout ${v}`;
  if (v === undefined && env.GUNICORN_CMD_ARGS) {
    v = seconds(optionValue(splitArgs(env.GUNICORN_CMD_ARGS), 'timeout', 't'));
    source = `GUNICORN_CMD_ARGS --timeout ${v}`;
  }
  if (v === undefined) {
    const given = optionValue(argv, 'config', 'c');
    const file = given === undefined ? 'gunicorn.conf.py' : given.replace(/^file:/, '');
    const text = file.startsWith('python:') ? null : read(file);
    v = text === null ? undefined : configValue(text, 'timeout');
    source = `timeout = ${v} in ${file}`;
  }
  if (v === undefined) return undefined;
  // gunicorn's own meaning of 0: no timeout (workers are never killed for silence).
  if (v === 0) return window(DEFAULT_WINDOW_MS, `default (${source}: no timeout)`);
  return window(v * 1000, source);
}

function uwsgi(argv: readonly string[], read: ConfigReader): ServerWindow | undefined {
  const v = seconds(optionValue(argv, 'harakiri', 't'));
  if (v) return window(v * 1000, `uwsgi --harakiri ${v}`);
  const ini = optionValue(argv, 'ini') ?? argv.slice(1).find((a) => a.endsWith('.ini') && !a.startsWith('-'));
  if (!ini) return undefined;
  const text = read(ini.replace(/:[^/]*$/, '')); // "file.ini:section"
  const h = text === null ? undefined : configValue(text, 'harakiri');
  return h ? window(h * 1000, `harakiri = ${h} in ${ini}`) : undefined;
}

/**
 * The window for a worker of a service of `kind` whose master runs `argv`
 * (with environment `env`).
 */
export function serverWindow(kind: ServiceKind, argv: readonly string[], env: Record<string, string>, read: ConfigReader): ServerWindow {
  let w: ServerWindow | undefined;
  if (kind === 'gunicorn') w = gunicorn(argv, env, read);
  else if (kind === 'uwsgi') w = uwsgi(argv, read);
  else if (kind === 'uvicorn') {
    const v = seconds(optionValue(argv, 'timeout-graceful-shutdown'));
    if (v) w = window(v * 1000, `uvicorn --timeout-graceful-shutdown ${v}`);
  }
  return w ?? window(DEFAULT_WINDOW_MS, 'default');
}
