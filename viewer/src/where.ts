/**
 * Where a service runs and which pids a process has, as the viewer shows
 * them: the container or pod (agent/container/label.ts, shared with the CLI),
 * the network namespace when it is not the agent's, and a worker's pid inside
 * its own PID namespace beside the host's (the one its own logs print).
 */
import { containerLabel } from '../../agent/container/label';
import type { Identity, Service } from '../../agent/proto';

/** "podman pm-web (3f2a9c1b7e01) · network namespace 4026532301"; '' on the host. */
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
