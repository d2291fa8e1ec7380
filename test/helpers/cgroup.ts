/**
 * Real cgroups created for one test and removed after it (their processes are
 * killed by pid first). v1 hierarchies because this machine's controllers are
 * bound there (/sys/fs/cgroup/<controller>); cgroup2 at /sys/fs/cgroup/unified
 * has none of them.
 */
import * as fs from 'fs';
import * as path from 'path';
import { cgroupMounts } from '../../agent/cgroup/memory';
import { sleep } from './procs';

export interface TestCgroup {
  dir: string;
  /** Path inside the hierarchy, as /proc/PID/cgroup shows it. */
  path: string;
  /** Inode number of dir (the kernel's cgroup id). */
  id: number;
  /** Runs a command inside the cgroup: `[...prefix, cmd, ...args]`. */
  prefix: string[];
  /** Kills what is left inside (by pid) and removes the directory. */
  remove(): Promise<void>;
}

export interface TestMemoryCgroup extends TestCgroup {
  limitBytes: number;
}

/** The mount point of a v1 controller (from /proc/self/mountinfo). */
export function v1Mount(controller: string): string {
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superopts = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup' && superopts.split(',').includes(controller)) return line.slice(0, sep).split(' ')[4];
  }
  throw new Error(`no v1 ${controller} controller mounted: this test needs /sys/fs/cgroup/${controller}`);
}

/** A cgroup in the v1 hierarchy of `controller`, with `settings` written in order (file → value). */
export function createCgroup(controller: string, name: string, settings: Array<[string, string]> = []): TestCgroup {
  const mount = v1Mount(controller);
  const dir = path.join(mount, name);
  fs.mkdirSync(dir);
  for (const [file, value] of settings) fs.writeFileSync(path.join(dir, file), value);
  return {
    dir,
    path: `/${name}`,
    id: fs.statSync(dir).ino,
    prefix: ['sh', '-c', `echo $$ > ${dir}/cgroup.procs && exec "$@"`, 'sh'],
    async remove() {
      for (let attempt = 0; attempt < 100; attempt++) {
        let pids: number[] = [];
        try {
          pids = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
        } catch {
          return; // already gone
        }
        for (const pid of pids) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* exited meanwhile */ }
        }
        try {
          fs.rmdirSync(dir);
          return;
        } catch {
          await sleep(50); // tasks still exiting
        }
      }
      throw new Error(`could not remove test cgroup ${dir}`);
    },
  };
}

export function createMemoryCgroup(name: string, limitBytes: number): TestMemoryCgroup {
  if (!cgroupMounts().v1Memory) throw new Error('no v1 memory controller mounted: this test needs /sys/fs/cgroup/memory');
  const cg = createCgroup('memory', name, [['memory.limit_in_bytes', String(limitBytes)]]);
  const limit = Number(fs.readFileSync(path.join(cg.dir, 'memory.limit_in_bytes'), 'utf8').trim());
  return { ...cg, limitBytes: limit };
}

/** A CPU cgroup with a CFS quota: `quotaUs` of CPU time per `periodUs` (20 % = 20000 of 100000). */
export function createCpuCgroup(name: string, quotaUs: number, periodUs = 100_000): TestCgroup {
  return createCgroup('cpu', name, [['cpu.cfs_period_us', String(periodUs)], ['cpu.cfs_quota_us', String(quotaUs)]]);
}
