/** The labels of a service's series in /metrics and OTLP (agent/metrics.ts says how they bound cardinality). */
import type { Service } from '../proto/codec';

/**
 * The labels that tell one service from another: name, unit and cgroup, the
 * container and Kubernetes pod it runs in (from its cgroup path and the host's
 * local files: agent/container/), and its network namespace when that is not
 * the agent's (two `ip netns` or pod services on the same port). They belong
 * to the service: none changes while it runs, but for a container's name
 * found after the service was.
 */
export function serviceLabels(s: Pick<Service, 'name' | 'unit' | 'cgroup' | 'container' | 'netNs' | 'ownNetNs'> | undefined): Record<string, string> {
  const labels: Record<string, string> = { service: s?.name || 'unknown', unit: s?.unit ?? '', cgroup: s?.cgroup ?? '' };
  // Only what is known: a service on the host keeps exactly the labels it had before containers were told apart.
  const c = s?.container;
  const put = (k: string, v: string | undefined) => { if (v) labels[k] = v; };
  put('container', c ? c.containerName || c.name || c.id.slice(0, 12) : '');
  put('container_id', c?.id);
  put('pod', c?.podName);
  put('pod_uid', c?.podUid);
  put('namespace', c?.podNamespace);
  put('netns', s?.ownNetNs && s.netNs ? String(s.netNs) : '');
  return labels;
}
