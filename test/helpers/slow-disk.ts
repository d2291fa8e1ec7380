/**
 * A real slow block device for tests: a loop device over a file, with direct
 * I/O to its backing file, and a blkio cgroup whose read/write IOPS on the
 * backing disk are throttled. A process inside the cgroup reading the loop
 * device with O_DIRECT waits on every request: the loop device's requests
 * take ~1/iops seconds (the loop worker's I/O is charged to the cgroup of the
 * process that issued it) and the process sleeps in D state meanwhile.
 * Removed after the test: the cgroup's processes are killed, the loop device
 * detached, the file deleted.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { statDevName, wholeDiskName } from '../../agent/probes/disk';
import { createCgroup, TestCgroup } from './cgroup';

export interface SlowDisk {
  /** /dev/loopN */
  device: string;
  /** loopN, as the kernel names it */
  name: string;
  /** Processes started with this prefix run inside the throttled cgroup. */
  cgroup: TestCgroup;
  remove(): Promise<void>;
}

export function createSlowDisk(tag: string, opts: { iops: number; sizeMiB?: number }): SlowDisk {
  const file = path.join(os.tmpdir(), `pm-slowdisk-${tag}-${process.pid}.img`);
  const fd = fs.openSync(file, 'w');
  try {
    // Real blocks, not a sparse hole: reads must reach the backing disk.
    const chunk = Buffer.alloc(1 << 20, 0x5a);
    for (let i = 0; i < (opts.sizeMiB ?? 16); i++) fs.writeSync(fd, chunk);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const backing = wholeDiskName(statDevName(fs.statSync(file).dev));
  let device = '';
  let cgroup: TestCgroup | undefined;
  try {
    device = execFileSync('losetup', ['--direct-io=on', '--show', '-f', file]).toString().trim();
    cgroup = createCgroup('blkio', `pm-slowdisk-${tag}-${process.pid}`, [
      ['blkio.throttle.read_iops_device', `${backing} ${opts.iops}`],
      ['blkio.throttle.write_iops_device', `${backing} ${opts.iops}`],
    ]);
  } catch (e) {
    if (device) execFileSync('losetup', ['-d', device]);
    fs.rmSync(file, { force: true });
    throw new Error(`cannot make a slow disk (loop device + blkio throttle on ${backing}): ${(e as Error).message}`);
  }
  const cg = cgroup;
  return {
    device,
    name: path.basename(device),
    cgroup: cg,
    async remove() {
      await cg.remove();
      execFileSync('losetup', ['-d', device]);
      fs.rmSync(file, { force: true });
    },
  };
}

/** Python that reads the device with O_DIRECT, one 4 KiB block at a time, forever (prints "ready" first). */
export function directReader(device: string): string {
  return [
    'import mmap, os, sys',
    `fd = os.open(${JSON.stringify(device)}, os.O_RDONLY | os.O_DIRECT)`,
    'buf = mmap.mmap(-1, 4096)',
    'print("ready", flush=True)',
    'i = 0',
    'while True:',
    '    os.preadv(fd, [buf], (i % 1024) * 4096)',
    '    i += 1',
  ].join('\n');
}
