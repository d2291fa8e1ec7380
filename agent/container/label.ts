/**
 * How a service's container is named to people (CLI, viewer, logs). No Node
 * API here: the viewer bundles it.
 */
import type { ContainerInfo } from '../proto';

/** A short human label: "podman web (3f2a…)", "pod prod/shop-7d9f web", "docker 3f2a9c1b7e01". */
export function containerLabel(c: ContainerInfo | undefined): string {
  if (!c) return '';
  const short = c.id.slice(0, 12);
  if (c.podName || c.podUid) return `pod ${c.podNamespace ? `${c.podNamespace}/` : ''}${c.podName || c.podUid}${c.containerName ? ` ${c.containerName}` : ''}`;
  return [c.runtime || 'container', c.name, short && c.name ? `(${short})` : short].filter(Boolean).join(' ');
}
