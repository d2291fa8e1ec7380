/**
 * Real containers for tests, with Debian's podman (scripts/setup.sh --test
 * installs it): no image can be pulled here, so the root filesystem is a
 * directory assembled for the test — the usual top-level directories, the
 * merged-/usr symlinks (bin, lib, lib64, sbin -> usr/...), a passwd and group
 * — with the host's /usr mounted read-only into it: Debian's python3 and
 * gunicorn run inside as they would from an image.
 *
 * Facts of this machine that shape the command line (docs/CONTAINERS.md):
 *   - crun 1.8 refuses a hybrid cgroup layout whose cgroup2 has a controller
 *     (hugetlb here): the runtime is runc;
 *   - no systemd: the cgroup manager is cgroupfs (/libpod_parent/libpod-<id>);
 *   - root lacks CAP_SYS_RESOURCE and podman lowers its own RLIMIT_NPROC: the
 *     container's limits are set below the host's, never above.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const PODMAN = '/usr/bin/podman';
const BASE = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export interface TestContainer {
  name: string;
  /** Full container id (64 hex). */
  id: string;
  /** Host pid of the container's first process. */
  pid: number;
  /** Removes the container (killed at once) and its root filesystem. */
  remove(): void;
}

function podman(args: string[], timeoutMs = 60_000): string {
  return execFileSync(PODMAN, [...BASE, ...args], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/**
 * podman's cgroupfs driver leaves its parent cgroups (libpod_parent, libpod_parent/conmon) in
 * every hierarchy; once empty they go too (rmdir refuses a cgroup still in use: left alone then).
 */
function removeEmptyParents(): void {
  const top = '/sys/fs/cgroup';
  let hierarchies: string[] = [];
  try { hierarchies = fs.readdirSync(top); } catch { return; }
  for (const h of hierarchies)
    for (const d of ['libpod_parent/conmon', 'libpod_parent'])
      try { fs.rmdirSync(path.join(top, h, d)); } catch { /* absent or in use */ }
}

/** A root filesystem directory for one container: empty top-level dirs and symlinks into the mounted /usr. */
export function assembleRootfs(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-rootfs-'));
  for (const d of ['usr', 'etc', 'tmp', 'proc', 'sys', 'dev', 'run', 'root', 'var/tmp']) fs.mkdirSync(path.join(root, d), { recursive: true });
  for (const d of ['bin', 'lib', 'lib64', 'sbin']) fs.symlinkSync(`usr/${d}`, path.join(root, d));
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
  return root;
}

/**
 * Runs `command` detached in a new container named `name`, with its own network
 * (`--network none`: loopback only), PID, mount and UTS namespaces and its own cgroup;
 * `mounts` are host directories visible at the same path inside (read-write).
 */
export function runContainer(name: string, command: string[], mounts: string[] = []): TestContainer {
  if (!fs.existsSync(PODMAN)) throw new Error(`${PODMAN} is missing: scripts/setup.sh --test installs Debian's podman and runc`);
  const rootfs = assembleRootfs();
  const remove = () => {
    try { podman(['rm', '-f', '-t', '0', name], 30_000); } catch { /* not created */ }
    fs.rmSync(rootfs, { recursive: true, force: true });
    removeEmptyParents();
  };
  try {
    const id = podman(['run', '-d', '--name', name, '--network', 'none', ...LIMITS, '-v', '/usr:/usr:ro',
      ...mounts.flatMap((m) => ['-v', `${m}:${m}`]), '--rootfs', rootfs, ...command]);
    const pid = Number(podman(['inspect', '-f', '{{.State.Pid}}', name]));
    if (!/^[0-9a-f]{64}$/.test(id) || !(pid > 0)) throw new Error(`podman run printed id '${id}', pid ${pid}`);
    return { name, id, pid, remove };
  } catch (e) {
    remove();
    const err = e as Error & { stderr?: string };
    throw new Error(`podman could not run a container here: ${err.stderr?.trim() || err.message}`);
  }
}
