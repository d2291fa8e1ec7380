/**
 * A small C forker (test/helpers/forker.c), compiled at test time with the C
 * compiler scripts/setup.sh installs: measures how fast this machine forks,
 * then churns at a pace it can keep. See forker.c for the two modes.
 */
import { ChildProcess, execFileSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { start } from './procs';

const SOURCE = path.join(__dirname, 'forker.c');

/** Path of the compiled forker; built once per source version (in the temp dir). */
export function forkerBinary(): string {
  const src = fs.readFileSync(SOURCE);
  const hash = crypto.createHash('sha256').update(src).digest('hex').slice(0, 12);
  const bin = path.join(os.tmpdir(), `premortem-forker-${hash}`);
  if (fs.existsSync(bin)) return bin;
  const tmp = `${bin}.${process.pid}.tmp`;
  try {
    execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', tmp, SOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`cannot compile ${SOURCE} (cc from scripts/setup.sh): ${err.stderr?.toString() || err.message}`);
  }
  fs.renameSync(tmp, bin); // atomic: a concurrent run sees the whole binary or none
  return bin;
}

/** Forks and reaps one child at a time for `ms` ms: what this machine can do right now. */
export function calibrateForks(ms: number): { forks: number; perSec: number } {
  const out = execFileSync(forkerBinary(), ['calibrate', String(ms)]).toString();
  const m = /forks (\d+) seconds ([\d.]+)/.exec(out);
  if (!m) throw new Error(`forker calibrate printed: ${out}`);
  return { forks: Number(m[1]), perSec: Math.round(Number(m[1]) / Number(m[2])) };
}

/**
 * A master (with one sleeping keeper child) that, after a line on stdin, forks
 * children paced to `rate`/s for `seconds` of wall time and prints "forks N seconds S";
 * after a second line it ends. `tag` lands in its argv, for --match.
 */
export function startForkMaster(rate: number, seconds: number, tag: string, stderr: 'inherit' | 'ignore' = 'inherit'): ChildProcess {
  return start(forkerBinary(), ['churn', String(rate), String(seconds), tag], { stdio: ['pipe', 'pipe', stderr] });
}

/** Parses the master's "forks N seconds S" line. */
export function forksDone(line: string): { forks: number; seconds: number } {
  const m = /forks (\d+) seconds ([\d.]+)/.exec(line);
  if (!m) throw new Error(`not a forker result: ${line}`);
  return { forks: Number(m[1]), seconds: Number(m[2]) };
}
