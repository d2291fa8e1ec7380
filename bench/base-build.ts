/**
 * An older build of the kernel side and the addon, for before/after cost
 * comparisons in one run: `git archive REF` of bpf/, native/, CMakeLists.txt
 * and package.json into a temporary directory, built there with cmake-js
 * against this checkout's node_modules. Removed at cleanup.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { log, onCleanup, run } from './lib';

const ROOT = path.resolve(__dirname, '..', '..');

/** The commit this branch started from: where main and HEAD last met. */
export function mergeBase(branch = 'main'): string {
  return execFileSync('git', ['-C', ROOT, 'merge-base', 'HEAD', branch], { encoding: 'utf8' }).trim();
}

/** Builds REF's addon; returns the path of its premortem.node. */
export async function buildBase(ref: string): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-bench-base-'));
  onCleanup(`rm ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  const tar = path.join(dir, 'src.tar');
  execFileSync('git', ['-C', ROOT, 'archive', '-o', tar, ref, 'bpf', 'native', 'CMakeLists.txt', 'package.json']);
  execFileSync('tar', ['-xf', tar, '-C', dir]);
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  log(`building the base (${ref.slice(0, 12)}) kernel objects and addon in ${dir}`);
  await run('/bin/sh', ['-c', `cd ${JSON.stringify(dir)} && ${JSON.stringify(path.join(ROOT, 'node_modules', '.bin', 'cmake-js'))} compile --log-level warn`], 600_000);
  const addon = path.join(dir, 'build', 'Release', 'premortem.node');
  if (!fs.existsSync(addon)) throw new Error(`the base build made no addon at ${addon}`);
  return addon;
}
