/**
 * The Python interpreters of this host (PATH, /usr/bin, /usr/local/bin, pyenv
 * versions) and what premortem can do with each: the GC method (usdt, uprobe,
 * none and why) and whether its stacks can be read. For `premortem doctor`;
 * the agent itself decides per running process (gc.ts, stacks.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { ElfError, withElf } from './elf';
import { chooseGcEntries } from './gc-entry';
import type { GcMethod } from './gc';
import { inspectBinary, PythonBinary, versionString } from './interpreter';
import { stackLayout, STACK_VERSIONS } from './offsets';

export interface PythonInterpreter {
  /** Where it was found (e.g. /usr/bin/python3). */
  path: string;
  /** The file it resolves to. */
  realPath: string;
  /** The file holding the runtime (the binary, or the libpython it loads). */
  runtimeFile: string;
  version: string;
  gcMethod: GcMethod;
  /** What the GC method uses, or why there is none. */
  gcReason: string;
  /** Every python:* USDT probe name (only gc__* are used). */
  usdtProbes: string[];
  stacks: boolean;
  stacksReason: string;
}

const PYTHON_NAME = /^python[23](\.\d+)?$/;

function candidateDirs(): string[] {
  const dirs = new Set<string>((process.env.PATH ?? '').split(':').filter(Boolean));
  for (const d of ['/usr/bin', '/usr/local/bin', '/bin']) dirs.add(d);
  const pyenv = process.env.PYENV_ROOT ?? path.join(process.env.HOME ?? '/root', '.pyenv');
  try {
    for (const v of fs.readdirSync(path.join(pyenv, 'versions'))) dirs.add(path.join(pyenv, 'versions', v, 'bin'));
  } catch {
    /* no pyenv */
  }
  return [...dirs];
}

/** The libpython an interpreter needs, found next to it (<prefix>/lib) or in the usual library dirs. */
function findLibpython(realPath: string, needed: string[]): string | null {
  const lib = needed.find((n) => /^libpython3\.\d+/.test(n));
  if (!lib) return null;
  const dirs = [path.join(path.dirname(path.dirname(realPath)), 'lib'), '/usr/lib/x86_64-linux-gnu', '/usr/local/lib', '/usr/lib', '/lib/x86_64-linux-gnu'];
  for (const d of dirs) if (fs.existsSync(path.join(d, lib))) return path.join(d, lib);
  return null;
}

/** The GC method a binary gets, as the agent would decide it (without attaching). */
export function gcMethodOf(b: PythonBinary): { method: GcMethod; reason: string } {
  if (b.gcUsdt) return { method: 'usdt', reason: `python:gc__start/gc__done USDT probes in ${b.path}` };
  const noUsdt = `no python:gc__* USDT probes (built without --with-dtrace); `;
  if (!b.version) return { method: 'none', reason: `${noUsdt}its CPython version is unknown` };
  const c = chooseGcEntries(b.version.major, b.version.minor, b.gcSymbols, b.hasSymtab, b.debugOffsets);
  return c.entries.length ? { method: 'uprobe', reason: `${noUsdt}uprobe on ${c.reason}` } : { method: 'none', reason: noUsdt + c.reason };
}

function describe(p: string, real: string): PythonInterpreter | null {
  let needed: string[];
  try {
    needed = withElf(real, (elf) => elf.needed());
  } catch (e) {
    if (e instanceof ElfError) return null; // a script (pyenv shim) or not ours to read
    throw e;
  }
  const runtimeFile = findLibpython(real, needed) ?? real;
  let b: PythonBinary;
  try {
    const st = fs.statSync(runtimeFile);
    b = inspectBinary(runtimeFile, runtimeFile, `${st.dev}:${st.ino}`, runtimeFile === real ? 'executable' : 'libpython');
  } catch {
    return null;
  }
  const gc = gcMethodOf(b);
  const layout = b.version ? stackLayout(b.version.major, b.version.minor, b.debugOffsets) : null;
  const stacks = layout !== null && b.runtimeAddress !== null;
  return {
    path: p, realPath: real, runtimeFile, version: versionString(b), gcMethod: gc.method, gcReason: gc.reason, usdtProbes: b.usdtProbes,
    stacks,
    stacksReason: stacks ? `_PyRuntime and the ${layout!.version} layout (${layout!.source})`
      : b.runtimeAddress === null ? `${runtimeFile} has no _PyRuntime symbol` : `premortem reads stacks of ${STACK_VERSIONS}`,
  };
}

/** Every interpreter found, once per real file. Scripts such as pyenv shims are skipped. */
export function scanPythonInterpreters(): PythonInterpreter[] {
  const seen = new Set<string>();
  const out: PythonInterpreter[] = [];
  for (const dir of candidateDirs()) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => PYTHON_NAME.test(n)).sort()) {
      const p = path.join(dir, name);
      let real: string;
      try {
        real = fs.realpathSync(p);
      } catch {
        continue;
      }
      if (seen.has(real)) continue;
      seen.add(real);
      const d = describe(p, real);
      if (d) out.push(d);
    }
  }
  return out;
}
