#!/usr/bin/env node
/**
 * premortem command line: run, doctor, list, show, export (the table of
 * commands and options is agent/cli/spec.ts; parsing agent/cli/args.ts; each
 * command in agent/cli/commands/). `bin/premortem` and the package scripts
 * call this file's cliEntry().
 *
 * Exit status: 0 success, 1 failure, 2 usage error (unknown flag or command,
 * a bad value, a bad regex...), 141 when stdout was closed early.
 */
import { log } from './log';
import { earlyAction, get, parseCommandLine, UsageError, type ParsedCommand } from './cli/args';
import { commandHelp, globalHelp, helpHint } from './cli/help';
import { exitQuietlyOnBrokenPipe, writeOut } from './cli/output';
import { EXIT } from './cli/spec';
import type { Level, LogFormat } from './log';

// The first parser's names, still used by tests and tools.
export { parseCommandLine as parseArgs, UsageError } from './cli/args';
export { runOptions, loadTokenFile } from './cli/commands/run';
export { formatBundle } from './cli/format';

function version(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./agent') as typeof import('./agent')).AGENT_VERSION;
}

async function dispatch(p: ParsedCommand): Promise<number> {
  switch (p.cmd) {
    case 'run': return (await import('./cli/commands/run')).run(p);
    case 'doctor': return (await import('./cli/commands/doctor')).doctor(p);
    case 'list': return (await import('./cli/commands/read')).list(p);
    case 'show': return (await import('./cli/commands/read')).show(p);
    case 'export': return (await import('./cli/commands/read')).exportBundle(p);
    default: throw new UsageError(`no command '${p.cmd}'`);
  }
}

/** Runs one command line; resolves to its exit status (-1: still running, e.g. `run`). */
export async function main(argv = process.argv.slice(2)): Promise<number> {
  const early = earlyAction(argv);
  if (early?.action === 'version') {
    await writeOut(`premortem ${version()}\n`);
    return EXIT.ok;
  }
  if (early?.action === 'help') {
    if (!argv.length) {
      // No command at all: the usage, on stderr, as a usage error.
      process.stderr.write(globalHelp(version()));
      return EXIT.usage;
    }
    await writeOut(early.command ? commandHelp(early.command) : globalHelp(version()));
    return EXIT.ok;
  }
  const p = parseCommandLine(argv);
  if (get.flag(p, 'help')) {
    await writeOut(commandHelp(p.command));
    return EXIT.ok;
  }
  if (get.flag(p, 'version')) {
    await writeOut(`premortem ${version()}\n`);
    return EXIT.ok;
  }
  if (p.values.has('log-level')) log.setLevel(get.str(p, 'log-level') as Level);
  if (p.values.has('log-format')) log.setFormat(get.str(p, 'log-format') as LogFormat);
  return dispatch(p);
}

/** Runs the CLI and sets the exit status. */
export function cliEntry(): void {
  exitQuietlyOnBrokenPipe();
  main().then((code) => {
    if (code >= 0) process.exitCode = code;
  }, (e) => {
    const err = e as Error & { code?: string; command?: string };
    if (e instanceof UsageError) {
      process.stderr.write(`premortem: ${err.message}\n${helpHint(err.command)}\n`);
      process.exitCode = EXIT.usage;
      return;
    }
    process.stderr.write(`premortem: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
    process.exitCode = EXIT.failure;
  });
}

if (require.main === module) cliEntry();
