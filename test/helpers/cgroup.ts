/**
 * A v1 memory cgroup with a limit, created for one test and removed after it
 * (its processes are killed by pid first). v1 because this machine's memory
 * controller is v1 (/sys/fs/cgroup/memory); cgroup2 is at /sys/fs/cgroup/unified.
 */
import * as fs from 'fs';
import * as path from 'path';
import { cgroupMounts } from '../../agent/cgroup';
import { sleep } from './procs';

export interface TestMemoryCgroup {
  dir: string;
  /** Path inside the memory hierarchy, as /proc/PID/cgroup shows it. */
  path: string;
  /** Inode number of dir (the kernel's cgroup id). */
  id: number;
  limitBytes: number;
  /** Kills what is left inside (by pid) and removes the directory. */
  remove(): Promise<void>;
}

export function createMemoryCgroup(name: string, limitBytes: number): TestMemoryCgroup {
  const mount = cgroupMounts().v1Memory;
  if (!mount) throw new Error('no v1 memory controller mounted: this test needs /sys/fs/cgroup/memory');
  const cgPath = `/${name}`;
  const dir = path.join(mount, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  const limit = Number(fs.readFileSync(path.join(dir, 'memory.limit_in_bytes'), 'utf8').trim());
  return {
    dir,
    path: cgPath,
    id: fs.statSync(dir).ino,
    limitBytes: limit,
    async remove() {
      for (let attempt = 0; attempt < 50; attempt++) {
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
          await sleep(20); // tasks still exiting
        }
      }
      throw new Error(`could not remove test cgroup ${dir}`);
    },
  };
}
