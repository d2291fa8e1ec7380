/**
 * Names for a container and its pod, from files the host keeps locally and
 * root can read: no runtime socket, no API server, no extra privilege.
 *
 *   podman      /var/lib/containers/storage/overlay-containers/containers.json (id -> names)
 *   docker      /var/lib/docker/containers/<id>/config.v2.json ("Name", Kubernetes labels)
 *   CRI-O       /run/containers/storage/overlay-containers/<id>/userdata/config.json (OCI annotations)
 *   containerd  /run/containerd/io.containerd.runtime.v2.task/<namespace>/<id>/config.json (OCI annotations)
 *   kubelet     /var/log/pods/<namespace>_<pod>_<uid>/ and /var/log/containers/<pod>_<namespace>_<container>-<id>.log
 *
 * Paths are under `root` ('/' on the host; a DaemonSet mounting the host at
 * /host passes '/host'). Each file is read at most MAX_FILE_BYTES; answers are
 * cached per container (MAX_CACHED, least recently used out) and a miss is
 * retried after MISS_RETRY_MS (a pod's log directory appears after its cgroup).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ContainerRef, Runtime } from './identity';

/** Files larger than this are not parsed (a containers.json of thousands of containers is a few MB). */
export const MAX_FILE_BYTES = 16 << 20;
/** Containers whose names are remembered. */
export const MAX_CACHED = 512;
/** A container with nothing found is looked up again after this long. */
export const MISS_RETRY_MS = 30_000;
/** Directory entries looked at in /var/log/pods and /var/log/containers. */
const MAX_DIR_ENTRIES = 20_000;

export interface ContainerNames {
  /** The runtime, when a file says it and the cgroup path did not. */
  runtime: Runtime;
  name: string;
  podName: string;
  podNamespace: string;
  podUid: string;
  containerName: string;
  /** Which files said so, e.g. "podman containers.json". */
  source: string;
}

const empty = (): ContainerNames => ({ runtime: '', name: '', podName: '', podNamespace: '', podUid: '', containerName: '', source: '' });

function readJson(file: string): unknown {
  try {
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined;
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

const str = (v: unknown) => (typeof v === 'string' ? v : '');

/** Kubernetes pod and container from OCI annotations (CRI-O's and containerd's CRI plugin's names) or docker labels. */
function fromKubernetesKeys(into: ContainerNames, kv: Record<string, unknown>): boolean {
  const pick = (...keys: string[]) => keys.map((k) => str(kv[k])).find(Boolean) ?? '';
  into.podName ||= pick('io.kubernetes.pod.name', 'io.kubernetes.cri.sandbox-name');
  into.podNamespace ||= pick('io.kubernetes.pod.namespace', 'io.kubernetes.cri.sandbox-namespace');
  into.podUid ||= pick('io.kubernetes.pod.uid', 'io.kubernetes.cri.sandbox-uid');
  into.containerName ||= pick('io.kubernetes.container.name', 'io.kubernetes.cri.container-name');
  return !!(into.podName || into.containerName);
}

function fromPodman(root: string, id: string, into: ContainerNames): boolean {
  const list = readJson(path.join(root, 'var/lib/containers/storage/overlay-containers/containers.json'));
  if (!Array.isArray(list)) return false;
  const entry = list.find((c) => c && typeof c === 'object' && (c as { id?: unknown }).id === id) as { names?: unknown } | undefined;
  const names = Array.isArray(entry?.names) ? entry!.names.map(str).filter(Boolean) : [];
  if (!names.length) return false;
  into.name = names[0];
  into.runtime ||= 'podman';
  return true;
}

function fromDocker(root: string, id: string, into: ContainerNames): boolean {
  const cfg = readJson(path.join(root, 'var/lib/docker/containers', id, 'config.v2.json')) as { Name?: unknown; Config?: { Labels?: Record<string, unknown> } } | undefined;
  if (!cfg) return false;
  into.name = str(cfg.Name).replace(/^\//, '');
  into.runtime ||= 'docker';
  if (cfg.Config?.Labels) fromKubernetesKeys(into, cfg.Config.Labels);
  return !!into.name;
}

/** The OCI bundle's config.json a CRI runtime wrote for the container: its annotations name the pod. */
function fromOciBundle(root: string, id: string, into: ContainerNames): string {
  const candidates: Array<[string, Runtime]> = [[path.join(root, 'run/containers/storage/overlay-containers', id, 'userdata/config.json'), 'cri-o']];
  const tasks = path.join(root, 'run/containerd/io.containerd.runtime.v2.task');
  try {
    for (const ns of fs.readdirSync(tasks).slice(0, 64)) candidates.push([path.join(tasks, ns, id, 'config.json'), 'containerd']);
  } catch { /* no containerd */ }
  for (const [file, runtime] of candidates) {
    const cfg = readJson(file) as { annotations?: Record<string, unknown> } | undefined;
    if (!cfg?.annotations) continue;
    // podman writes its OCI spec in the same place as CRI-O: its annotations say so.
    const isPodman = str(cfg.annotations['io.container.manager']) === 'libpod';
    into.runtime ||= isPodman ? 'podman' : runtime;
    if (fromKubernetesKeys(into, cfg.annotations)) return isPodman ? 'podman config.json' : `${runtime} config.json`;
  }
  return '';
}

export interface NameReader {
  /** Names of the container `ref` refers to (fields '' when not found). */
  lookup(ref: ContainerRef): ContainerNames;
}

export function createNameReader(root = '/'): NameReader {
  const cache = new Map<string, { names: ContainerNames; tMs: number }>();
  let podDirs: { tMs: number; entries: string[] } | undefined;
  let logFiles: { tMs: number; entries: string[] } | undefined;
  const list = (dir: string, cached: { tMs: number; entries: string[] } | undefined) => {
    if (cached && Date.now() - cached.tMs < 5000) return cached;
    let entries: string[] = [];
    try { entries = fs.readdirSync(path.join(root, dir)).slice(0, MAX_DIR_ENTRIES); } catch { /* not a kubelet host */ }
    return { tMs: Date.now(), entries };
  };

  /** /var/log/pods/<namespace>_<name>_<uid>: pod names contain no '_' (DNS subdomain). */
  const fromPodLogs = (ref: ContainerRef, into: ContainerNames): boolean => {
    const uid = ref.podUid || into.podUid;
    if (!uid) return false;
    podDirs = list('var/log/pods', podDirs);
    const dir = podDirs.entries.find((d) => d.endsWith(`_${uid}`));
    if (!dir) return false;
    const [ns, name] = dir.split('_');
    into.podNamespace ||= ns;
    into.podName ||= name;
    if (ref.id && !into.containerName) {
      // /var/log/containers/<pod>_<namespace>_<container>-<id>.log
      logFiles = list('var/log/containers', logFiles);
      const prefix = `${name}_${ns}_`, suffix = `-${ref.id}.log`;
      const f = logFiles.entries.find((e) => e.startsWith(prefix) && e.endsWith(suffix));
      if (f) into.containerName = f.slice(prefix.length, -suffix.length);
    }
    return true;
  };

  const read = (ref: ContainerRef): ContainerNames => {
    const n = empty();
    const sources: string[] = [];
    if (ref.id) {
      if ((ref.runtime === 'podman' || ref.runtime === '') && fromPodman(root, ref.id, n)) sources.push('podman containers.json');
      if ((ref.runtime === 'docker' || ref.runtime === '') && fromDocker(root, ref.id, n)) sources.push('docker config.v2.json');
      if (ref.runtime !== 'docker') {
        const s = fromOciBundle(root, ref.id, n);
        if (s) sources.push(s);
      }
    }
    if (fromPodLogs(ref, n)) sources.push('/var/log/pods');
    n.source = sources.join(', ');
    return n;
  };

  return {
    lookup(ref) {
      const key = `${ref.id}|${ref.podUid}`;
      const hit = cache.get(key);
      if (hit && (hit.names.source || Date.now() - hit.tMs < MISS_RETRY_MS)) return hit.names;
      const names = read(ref);
      cache.delete(key);
      cache.set(key, { names, tMs: Date.now() });
      while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value!);
      return names;
    },
  };
}
