/**
 * Installing the real Debian package in a test, on a machine other engineers
 * share: one package test at a time (a lock directory), dpkg retried while
 * another dpkg or apt holds its own lock, and a PATH that has every command of
 * the system except compilers.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { sleep } from './procs';

const LOCK_DIR = '/run/lock/premortem-package-test';
const DPKG_LOCK_WAIT_MS = 180_000;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Holds the machine-wide package-test lock until the returned release() (a dead holder's lock is taken over). */
export async function acquirePackageLock(timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      fs.mkdirSync(LOCK_DIR);
      fs.writeFileSync(path.join(LOCK_DIR, 'pid'), String(process.pid));
      return () => fs.rmSync(LOCK_DIR, { recursive: true, force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number(fs.readFileSync(path.join(LOCK_DIR, 'pid'), { encoding: 'utf8', flag: 'a+' }) || 0);
    if (holder && !pidAlive(holder)) fs.rmSync(LOCK_DIR, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`${LOCK_DIR} is held by pid ${holder}: another package test is running`);
    await sleep(500);
  }
}

/** Runs dpkg, waiting while another package manager holds dpkg's lock. Returns stdout. */
export async function dpkg(args: string[]): Promise<string> {
  const deadline = Date.now() + DPKG_LOCK_WAIT_MS;
  for (;;) {
    const r = spawnSync('dpkg', args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status === 0) return r.stdout;
    const locked = /lock/i.test(r.stderr) && /(locked|held|unable to acquire)/i.test(r.stderr);
    if (!locked || Date.now() > deadline) throw new Error(`dpkg ${args.join(' ')} exited ${r.status}: ${r.stderr.trim()}`);
    await sleep(1000);
  }
}

/** The package's dpkg status ('install ok installed', 'deinstall ok config-files'), or '' when dpkg does not know it. */
export function packageStatus(name: string): string {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** Commands a toolchain brings: none of them may be reachable on the no-compiler PATH. */
export const COMPILER_COMMANDS = /^(clang|clang\+\+|clang-\d+|clang\+\+-\d+|clang-cpp.*|llc.*|llvm-.*|lld.*|ld|ld\..*|as|gcc.*|g\+\+.*|cc|c\+\+|c89.*|c99.*|cpp.*|x86_64-linux-gnu-.*|bpftool|cmake.*|make|gmake|tcc|nvcc)$/;

/**
 * A directory of symlinks to every command in /usr/bin and /usr/sbin except
 * compilers, linkers, bpftool and build tools: a PATH on which the system's
 * tools work and no toolchain can be found.
 */
export function noCompilerPathDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  for (const src of ['/usr/bin', '/usr/sbin']) {
    for (const name of fs.readdirSync(src)) {
      if (COMPILER_COMMANDS.test(name) || fs.existsSync(path.join(dir, name))) continue;
      fs.symlinkSync(path.join(src, name), path.join(dir, name));
    }
  }
  return dir;
}

/** `command -v NAME` in /bin/sh with exactly this environment: the path found, or '' when none. */
export function commandV(name: string, env: NodeJS.ProcessEnv): string {
  const r = spawnSync('/bin/sh', ['-c', `command -v "$1" || true`, 'sh', name], { encoding: 'utf8', env });
  return r.stdout.trim();
}

/** dpkg-deb --field output as a record. */
export function debFields(deb: string): Record<string, string> {
  const text = execFileSync('dpkg-deb', ['--field', deb], { encoding: 'utf8' });
  const out: Record<string, string> = {};
  let key = '';
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z-]+): ?(.*)$/.exec(line);
    if (m) out[(key = m[1])] = m[2];
    else if (key && line.startsWith(' ')) out[key] += '\n' + line.slice(1);
  }
  return out;
}
