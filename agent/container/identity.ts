/**
 * Which container or pod a process runs in, read from its cgroup path alone:
 * container runtimes and the kubelet write the container id and pod UID into
 * the names of the cgroups they create, in one of two styles:
 *
 *   systemd driver   /system.slice/docker-<id>.scope
 *                    /machine.slice/libpod-<id>.scope[/container]
 *                    /system.slice/crio-<id>.scope, cri-containerd-<id>.scope, nerdctl-<id>.scope
 *                    /kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_with_underscores>.slice/<one of the above>
 *   cgroupfs driver  /docker/<id>, /libpod_parent/libpod-<id>, /crio-<id>
 *                    /kubepods/burstable/pod<uid>/<id>   (containerd and docker write the bare id)
 *
 * Nested layouts (kind: a kubelet inside a docker container, docker in docker)
 * name the innermost container last: the last match wins. The agent may see
 * paths relative to its own cgroup namespace ("/../../kubepods/..."): the
 * leading ".." steps are dropped. Conmon's scopes (libpod-conmon-<id>,
 * crio-conmon-<id>) hold the runtime's monitor, not the container.
 */
import { unitOf } from '../procfs';

export type Runtime = 'docker' | 'containerd' | 'cri-o' | 'podman' | '';

export interface ContainerRef {
  runtime: Runtime;
  /** 64 hex digits, '' when only a pod is named. */
  id: string;
  /** Kubernetes pod UID (with dashes), '' outside a pod. */
  podUid: string;
  driver: 'systemd' | 'cgroupfs';
  /** Kubernetes QoS class of the pod's cgroup: guaranteed, burstable or besteffort; '' outside a pod. */
  qos: string;
}

const ID = '([0-9a-f]{64})';
/** systemd scopes (and cgroupfs leaves) whose name says the runtime. */
const NAMED: Array<[RegExp, Runtime, 'systemd' | 'cgroupfs']> = [
  [new RegExp(`^docker-${ID}\\.scope$`), 'docker', 'systemd'],
  [new RegExp(`^cri-containerd-${ID}\\.scope$`), 'containerd', 'systemd'],
  [new RegExp(`^nerdctl-${ID}\\.scope$`), 'containerd', 'systemd'],
  [new RegExp(`^crio-${ID}\\.scope$`), 'cri-o', 'systemd'],
  [new RegExp(`^libpod-${ID}\\.scope$`), 'podman', 'systemd'],
  [new RegExp(`^crio-${ID}$`), 'cri-o', 'cgroupfs'],
  [new RegExp(`^libpod-${ID}$`), 'podman', 'cgroupfs'],
];
const BARE_ID = new RegExp(`^${ID}$`);
/** systemd driver: kubepods-pod<uid>.slice, kubepods-burstable-pod<uid>.slice, kubelet-kubepods-...-pod<uid>.slice. */
const POD_SLICE = /^(?:[a-z]+-)*kubepods(?:-(burstable|besteffort))?-pod([0-9a-f]{8}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{4}_[0-9a-f]{12})\.slice$/;
/** cgroupfs driver: pod<uid> under kubepods[/burstable|/besteffort]. */
const POD_DIR = /^pod([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The container (and pod) a cgroup path names, or null when it names none. */
export function parseCgroupPath(cgroupPath: string): ContainerRef | null {
  const parts = cgroupPath.split('/').filter((p) => p && p !== '..' && p !== '.');
  let ref: ContainerRef | null = null;
  let podUid = '', qos = '', podDriver: 'systemd' | 'cgroupfs' = 'cgroupfs', parent = '';
  for (const part of parts) {
    const slice = POD_SLICE.exec(part);
    const dir = slice ? null : POD_DIR.exec(part);
    if (slice || dir) {
      podUid = slice ? slice[2].replace(/_/g, '-') : dir![1];
      podDriver = slice ? 'systemd' : 'cgroupfs';
      qos = (slice ? slice[1] : parent === 'burstable' || parent === 'besteffort' ? parent : '') || 'guaranteed';
      ref = null; // a container named above the pod is the node's (kind), not this one
      parent = part;
      continue;
    }
    const named = NAMED.find(([re]) => re.test(part));
    if (named) {
      ref = { runtime: named[1], id: named[0].exec(part)![1], podUid, driver: named[2], qos };
    } else if (BARE_ID.test(part)) {
      // cgroupfs: /docker/<id> says docker; under a pod the runtime is not in the name.
      ref = { runtime: parent === 'docker' ? 'docker' : '', id: part, podUid, driver: 'cgroupfs', qos };
    }
    parent = part;
  }
  if (ref) return ref;
  return podUid ? { runtime: '', id: '', podUid, driver: podDriver, qos } : null;
}

/** Which cgroup lines of /proc/PID/cgroup say the most: the v2 one first, then v1 controllers. */
const PREFERRED = ['', 'memory', 'cpu', 'pids', 'name=systemd'];

/**
 * The container a process runs in, from its cgroup paths ({ '': v2 path, memory: v1 path, ... }
 * as agent/procfs.ts readCgroups returns them): the first path, in PREFERRED order, that names one.
 * Under a hybrid layout the v2 path can be "/" while the v1 controllers name the container.
 */
export function containerOfCgroups(cgroups: Record<string, string>): ContainerRef | null {
  const order = [...PREFERRED.filter((c) => c in cgroups), ...Object.keys(cgroups).filter((c) => !PREFERRED.includes(c))];
  for (const c of order) {
    const ref = parseCgroupPath(cgroups[c]);
    if (ref) return ref;
  }
  return null;
}

/** The systemd unit a service runs as, when it is not a container's scope ('' otherwise). */
export function serviceUnitOf(cgroupPath: string): string {
  const unit = unitOf(cgroupPath);
  return unit && !parseCgroupPath(unit) && !/^(libpod|crio|cri-containerd|docker)-conmon-/.test(unit) ? unit : '';
}
