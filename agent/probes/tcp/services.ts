/**
 * Keeps the tcp probe's watch table in step with the services: each listening
 * port of a service is watched in the service's own network namespace. A pair
 * already watched for another service stays with it (SO_REUSEPORT siblings,
 * or a restarted service before the old one is forgotten); a service forgotten
 * gives back only the pairs that are its own.
 */
import type { ErrorCounter } from '../../core/errors';
import type { ServiceState } from '../../registry/state';
import type { TcpWatcher } from './watcher';

/** The namespace a service's ports are watched in: its own, else the agent's (0 = not known). */
const netnsOf = (s: ServiceState) => s.service.netNs || undefined;

export function watchServicePorts(tcp: TcpWatcher, s: ServiceState, errors: ErrorCounter): void {
  for (const port of s.service.ports) {
    if (tcp.get(port, netnsOf(s))) continue;
    try {
      tcp.watch({ port, serviceId: s.tcpId, netns: netnsOf(s), pid: s.service.masterPid });
    } catch (e) {
      errors.count('tcp-watch', e);
    }
  }
}

export function unwatchServicePorts(tcp: TcpWatcher, s: ServiceState): void {
  for (const port of s.service.ports) if (tcp.get(port, netnsOf(s))?.serviceId === s.tcpId) tcp.unwatch(port, netnsOf(s));
}
