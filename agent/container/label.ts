/**
 * How a service's container and a process's pids are named to people (CLI,
 * viewer, logs). No Node API here: the viewer bundles it.
 */
import type { ContainerInfo, Identity, Service } from '../../proto/codec';

/** A short human label: "podman web (3f2a9c1b7e01)", "pod prod/shop-7d9f web", "docker 3f2a9c1b7e01". */
export function containerLabel(c: ContainerInfo | undefined): string {
  if (!c) return '';
  const short = c.id.slice(0, 12);
  if (c.podName || c.podUid) return `pod ${c.podNamespace ? `${c.podNamespace}/` : ''}${c.podName || c.podUid}${c.containerName ? ` ${c.containerName}` : ''}`;
  return [c.runtime || 'container', c.name, short && c.name ? `(${short})` : short].filter(Boolean).join(' ');
}

/** Its container and its network namespace when not the agent's: "podman pm-web (3f2a9c1b7e01) · network namespace 4026532301"; '' on the host. */
export function whereText(s: Service | undefined): string {
  if (!s) return '';
  return [containerLabel(s.container), s.ownNetNs && s.netNs ? `network namespace ${s.netNs}` : ''].filter(Boolean).join(' · ');
}

/** Its pid inside its own PID namespace when that is not the host's pid. */
export function nsPidOf(id: Identity | undefined): number | undefined {
  return id?.nsPid && id.nsPid !== id.pid ? id.nsPid : undefined;
}

/** "25200 (7)" for a process in a PID namespace of its own, "25200" otherwise. */
export function pidLabel(id: Identity | undefined): string {
  if (!id) return '?';
  const ns = nsPidOf(id);
  return ns === undefined ? String(id.pid) : `${id.pid} (${ns})`;
}

/** A tooltip saying what the second pid is. */
export function pidTitle(id: Identity | undefined): string {
  const ns = nsPidOf(id);
  return ns === undefined ? '' : `host pid ${id!.pid}; pid ${ns} inside its PID namespace (what its own logs print)`;
}
