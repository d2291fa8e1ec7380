/**
 * Where a process runs, as the agent tells it: the container runtime, the
 * container id and name, the Kubernetes pod (UID, name, namespace) and the
 * container's name in it — from the process's cgroup paths (identity.ts) and
 * the host's local files (names.ts). Also the namespaces readers
 * (netns-cache.ts) and the namespaced pids of a verdict (pids.ts).
 */
import type { ContainerInfo } from '../../proto/codec';
import { containerOfCgroups } from './identity';
import { createNameReader } from './names';

export { containerOfCgroups, parseCgroupPath, serviceUnitOf } from './identity';
export { containerLabel } from './label';
export type { ContainerRef, Runtime } from './identity';

export interface ContainerResolver {
  /** The container of a process with these cgroup paths (procfs readCgroups), or undefined on the host. */
  infoOf(cgroups: Record<string, string>): ContainerInfo | undefined;
}

/** `root`: where the host's filesystem is ('/' unless the agent runs in a container with the host mounted elsewhere). */
export function createContainerResolver(root = '/'): ContainerResolver {
  const names = createNameReader(root);
  return {
    infoOf(cgroups) {
      const ref = containerOfCgroups(cgroups);
      if (!ref) return undefined;
      const n = names.lookup(ref);
      return {
        runtime: ref.runtime || n.runtime, id: ref.id, name: n.name, podUid: ref.podUid || n.podUid, podName: n.podName,
        podNamespace: n.podNamespace, containerName: n.containerName, cgroupDriver: ref.driver, source: n.source,
      };
    },
  };
}
