/** The help texts, derived from the table in spec.ts. */
import { COMMANDS, DATA_DIR_ENV, EXIT, GLOBAL_OPTIONS, TOKEN_ENV, type CommandSpec, type OptionSpec } from './spec';
import { LOG_FORMAT_ENV, LOG_LEVEL_ENV } from '../log';

const COL = 30;

function optionLine(o: OptionSpec): string {
  const names = `${o.short ? `-${o.short}, ` : '    '}--${o.name}${o.arg ? ` ${o.arg}` : ''}`;
  const notes: string[] = [];
  if (o.kind === 'choice' && o.arg) notes.push(o.choices!.join('|'));
  if (o.kind === 'int' && o.min !== undefined) notes.push(`${o.min}..${o.max}`);
  if (o.defaultText) notes.push(`default ${o.defaultText}`);
  if (o.env) notes.push(`env ${o.env}`);
  const text = `${o.help}${notes.length ? ` [${notes.join('; ')}]` : ''}`;
  const left = `  ${names}`;
  return left.length < COL ? left.padEnd(COL) + text : `${left}\n${' '.repeat(COL)}${text}`;
}

function usageLine(c: CommandSpec): string {
  return `usage: premortem ${c.name} [options]${c.positionals.map((p) => ` ${p.name}`).join('')}`;
}

const ENVIRONMENT = `environment:
  ${DATA_DIR_ENV.padEnd(COL - 2)}post-mortem directory for every command (--data-dir wins)
  ${TOKEN_ENV.padEnd(COL - 2)}access token of \`run\` (--token wins)
  ${LOG_LEVEL_ENV.padEnd(COL - 2)}log level: debug, info, warn, error (--log-level wins)
  ${LOG_FORMAT_ENV.padEnd(COL - 2)}log format: text, json (--log-format wins)
  OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME, OTEL_METRIC_EXPORT_INTERVAL
                              OpenTelemetry SDK settings, with --otlp-endpoint`;

const EXIT_CODES = `exit status: ${EXIT.ok} success, ${EXIT.failure} failure (doctor: the agent cannot run here), ${EXIT.usage} usage error,
             ${EXIT.brokenPipe} output pipe closed early (as a process killed by SIGPIPE; nothing is printed)`;

/** The end of every help text. */
const FOOTER = ['', ENVIRONMENT, '', EXIT_CODES, ''];

export function globalHelp(version: string): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  return [
    `premortem ${version}: eBPF post-mortems of Python web workers`,
    '',
    'usage: premortem <command> [options]',
    '       premortem <command> --help',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    'options of every command:',
    ...GLOBAL_OPTIONS.map(optionLine),
    ...FOOTER,
  ].join('\n');
}

export function commandHelp(c: CommandSpec): string {
  return [
    usageLine(c),
    '',
    c.summary,
    ...(c.positionals.length ? ['', 'arguments:', ...c.positionals.map((p) => `  ${p.name.padEnd(COL - 2)}${p.help}`)] : []),
    '',
    'options:',
    ...c.options.map(optionLine),
    ...GLOBAL_OPTIONS.map(optionLine),
    '',
    'examples:',
    ...c.examples.map((e) => `  ${e}`),
    ...FOOTER,
  ].join('\n');
}

/** One line pointing at the help, after a usage error. */
export function helpHint(command?: string): string {
  return command ? `see 'premortem ${command} --help'` : `see 'premortem --help'`;
}
