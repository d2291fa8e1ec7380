/**
 * systemd unit files as systemd reads them, and SystemCallFilter= expanded
 * with systemd's own group definitions (`systemd-analyze syscall-filter`).
 */
import { execFileSync } from 'child_process';

export type UnitFile = Map<string, Map<string, string[]>>;

/** INI as systemd reads it: [Section], Key=Value (keys may repeat), # and ; comments. */
export function parseUnit(src: string): UnitFile {
  const out: UnitFile = new Map();
  let section: Map<string, string[]> | undefined;
  src.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) return;
    const s = /^\[([A-Za-z]+)\]$/.exec(line);
    if (s) {
      if (out.has(s[1])) throw new Error(`line ${i + 1}: section [${s[1]}] repeated`);
      out.set(s[1], (section = new Map()));
      return;
    }
    const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    if (!kv || !section) throw new Error(`line ${i + 1}: not Key=Value inside a section: ${raw}`);
    section.set(kv[1], [...(section.get(kv[1]) ?? []), kv[2]]);
  });
  return out;
}

/** The last value of a [Service] key, as systemd applies it. */
export function serviceValue(unit: UnitFile, key: string): string | undefined {
  return unit.get('Service')?.get(key)?.at(-1);
}

/** systemd's syscall groups: `@name` -> its entries (system calls and nested groups). */
export function syscallGroups(): Map<string, string[]> {
  const text = execFileSync('/usr/bin/systemd-analyze', ['syscall-filter', '--no-pager'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const groups = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    if (/^@[a-z-]+$/.test(line)) groups.set(line, (current = []));
    else if (/^ {4}[@a-z0-9_-]+$/.test(line) && current) current.push(line.trim());
  }
  return groups;
}

/**
 * The system calls an allow-list SystemCallFilter= permits (groups expanded;
 * systemd also always permits @default). Throws on a name systemd does not know
 * as a group; plain system call names are returned as written.
 */
export function allowedSyscalls(filter: string, groups = syscallGroups()): Set<string> {
  if (filter.startsWith('~')) throw new Error(`SystemCallFilter=${filter} is a deny list, not an allow list`);
  const out = new Set<string>();
  const add = (name: string, depth: number) => {
    if (depth > 10) throw new Error(`syscall group nesting too deep at ${name}`);
    if (!name.startsWith('@')) return void out.add(name);
    const entries = groups.get(name);
    if (!entries) throw new Error(`systemd does not know the syscall group ${name}`);
    for (const e of entries) add(e, depth + 1);
  };
  for (const name of [...filter.split(/\s+/).filter(Boolean), '@default']) add(name, 0);
  return out;
}
