/**
 * Container identity from cgroup paths as docker, containerd, CRI-O, podman
 * and the kubelet write them (systemd and cgroupfs drivers), names from the
 * host's local files (fixture trees laid out as the runtimes lay them out),
 * and where identity shows: /metrics labels, OTLP attributes, the CLI's
 * `show`, the verdict's namespaced pids.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { containerLabel, containerOfCgroups, createContainerResolver, parseCgroupPath, serviceUnitOf } from '../../agent/container';
import { createNameReader } from '../../agent/container/names';
import { addNamespacedPids, pidText } from '../../agent/container/pids';
import { serviceLabels } from '../../agent/metrics';
import { toAttributes } from '../../agent/otlp-metrics';
import { containerAttributes } from '../../agent/otlp';
import { whereOf } from '../../agent/cli/format';
import { parseNsPids } from '../../agent/procfs';
import { pidLabel, pidTitle, whereText } from '../../agent/container/label';
import type { ContainerInfo, Identity, Service, Verdict } from '../../proto/codec';

const ID = '3f2a9c1b7e01d4c5b6a79881726354abcdef0123456789abcdef0123456789ab';
const ID2 = 'e6f52d35c44f221bb14d063fcb2236e7974f324ffa0ae49f707a151577fa013b';
const UID = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const UID_ = UID.replace(/-/g, '_');

describe('cgroup paths of real runtimes', () => {
  const table: Array<[string, string, ReturnType<typeof parseCgroupPath>]> = [
    ['docker, systemd driver', `/system.slice/docker-${ID}.scope`, { runtime: 'docker', id: ID, podUid: '', driver: 'systemd', qos: '' }],
    ['docker, cgroupfs driver', `/docker/${ID}`, { runtime: 'docker', id: ID, podUid: '', driver: 'cgroupfs', qos: '' }],
    ['docker in docker: the inner one', `/docker/${ID2}/docker/${ID}`, { runtime: 'docker', id: ID, podUid: '', driver: 'cgroupfs', qos: '' }],
    ['podman rootful, systemd', `/machine.slice/libpod-${ID}.scope`, { runtime: 'podman', id: ID, podUid: '', driver: 'systemd', qos: '' }],
    ['podman, split cgroups (container/ below the scope)', `/machine.slice/libpod-${ID}.scope/container`, { runtime: 'podman', id: ID, podUid: '', driver: 'systemd', qos: '' }],
    ['podman rootless', `/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`, { runtime: 'podman', id: ID, podUid: '', driver: 'systemd', qos: '' }],
    ['podman pod', `/machine.slice/machine-libpod_pod_${ID2}.slice/libpod-${ID}.scope`, { runtime: 'podman', id: ID, podUid: '', driver: 'systemd', qos: '' }],
    ['podman, cgroupfs (this machine)', `/libpod_parent/libpod-${ID}`, { runtime: 'podman', id: ID, podUid: '', driver: 'cgroupfs', qos: '' }],
    ['nerdctl (containerd), systemd', `/system.slice/nerdctl-${ID}.scope`, { runtime: 'containerd', id: ID, podUid: '', driver: 'systemd', qos: '' }],
    ['kubelet systemd + containerd, burstable', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      { runtime: 'containerd', id: ID, podUid: UID, driver: 'systemd', qos: 'burstable' }],
    ['kubelet systemd + CRI-O, besteffort', `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-${ID}.scope`,
      { runtime: 'cri-o', id: ID, podUid: UID, driver: 'systemd', qos: 'besteffort' }],
    ['kubelet systemd + CRI-O, guaranteed', `/kubepods.slice/kubepods-pod${UID_}.slice/crio-${ID}.scope`,
      { runtime: 'cri-o', id: ID, podUid: UID, driver: 'systemd', qos: 'guaranteed' }],
    ['kubelet systemd + cri-dockerd', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice/docker-${ID}.scope`,
      { runtime: 'docker', id: ID, podUid: UID, driver: 'systemd', qos: 'burstable' }],
    ['kubelet cgroupfs + containerd, burstable', `/kubepods/burstable/pod${UID}/${ID}`, { runtime: '', id: ID, podUid: UID, driver: 'cgroupfs', qos: 'burstable' }],
    ['kubelet cgroupfs, guaranteed', `/kubepods/pod${UID}/${ID}`, { runtime: '', id: ID, podUid: UID, driver: 'cgroupfs', qos: 'guaranteed' }],
    ['kubelet cgroupfs + CRI-O', `/kubepods/besteffort/pod${UID}/crio-${ID}`, { runtime: 'cri-o', id: ID, podUid: UID, driver: 'cgroupfs', qos: 'besteffort' }],
    ['kind (kubelet in a docker container, v1): the pod, not the node', `/docker/${ID2}/kubepods/burstable/pod${UID}/${ID}`,
      { runtime: '', id: ID, podUid: UID, driver: 'cgroupfs', qos: 'burstable' }],
    ['kind with systemd (kubelet.slice)', `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      { runtime: 'containerd', id: ID, podUid: UID, driver: 'systemd', qos: 'besteffort' }],
    ['seen from inside a cgroup namespace', `/../../kubepods.slice/kubepods-pod${UID_}.slice/cri-containerd-${ID}.scope`,
      { runtime: 'containerd', id: ID, podUid: UID, driver: 'systemd', qos: 'guaranteed' }],
    ['a pod cgroup only (a process in the pod slice itself)', `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`,
      { runtime: '', id: '', podUid: UID, driver: 'systemd', qos: 'burstable' }],
  ];
  test.each(table)('%s', (_what, p, want) => {
    expect(parseCgroupPath(p)).toEqual(want);
  });

  test.each([
    ['a systemd service', '/system.slice/gunicorn.service'],
    ['a user session', '/user.slice/user-1000.slice/session-3.scope'],
    ['the root', '/'],
    ['a test cgroup', '/premortem-test-12'],
    ['the QoS slice alone', '/kubepods.slice/kubepods-burstable.slice'],
    ['a short hex name is no container id', '/docker/3f2a9c1b7e01'],
  ])('%s names no container', (_what, p) => {
    expect(parseCgroupPath(p)).toBeNull();
  });

  test('a conmon scope is not the container, nor a systemd unit of the service', () => {
    expect(parseCgroupPath(`/machine.slice/libpod-conmon-${ID}.scope`)).toBeNull();
    expect(serviceUnitOf(`/machine.slice/libpod-conmon-${ID}.scope`)).toBe('');
    expect(serviceUnitOf(`/system.slice/docker-${ID}.scope`)).toBe('');
    expect(serviceUnitOf('/system.slice/gunicorn.service')).toBe('gunicorn.service');
  });

  test('hybrid hierarchies: the v2 path may be "/" while v1 controllers name the container', () => {
    const ref = containerOfCgroups({ '': '/', memory: `/libpod_parent/libpod-${ID}`, cpu: `/libpod_parent/libpod-${ID}`, 'name=systemd': '/' });
    expect(ref).toMatchObject({ runtime: 'podman', id: ID });
    expect(containerOfCgroups({ '': `/system.slice/docker-${ID}.scope`, memory: '/' })).toMatchObject({ runtime: 'docker', id: ID });
    expect(containerOfCgroups({ '': '/', memory: '/user.slice' })).toBeNull();
  });
});

describe('names from the host\'s local files', () => {
  let root: string;
  const put = (rel: string, content: string | object) => {
    const f = path.join(root, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  };
  beforeEach(() => { root = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-names-')); });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  test('podman: containers.json names the container', () => {
    put('var/lib/containers/storage/overlay-containers/containers.json', [{ id: ID2, names: ['other'] }, { id: ID, names: ['pm-web'], layer: 'x' }]);
    const r = createContainerResolver(root);
    expect(r.infoOf({ '': `/libpod_parent/libpod-${ID}` })).toEqual({
      runtime: 'podman', id: ID, name: 'pm-web', podUid: '', podName: '', podNamespace: '', containerName: '', cgroupDriver: 'cgroupfs', source: 'podman containers.json',
    });
  });

  test('docker: config.v2.json names it, with Kubernetes labels when dockershim made it', () => {
    put(`var/lib/docker/containers/${ID}/config.v2.json`, { Name: '/shop_web_1', Config: { Labels: { 'io.kubernetes.pod.name': 'shop-7d9f', 'io.kubernetes.pod.namespace': 'prod', 'io.kubernetes.container.name': 'web' } } });
    expect(createContainerResolver(root).infoOf({ '': `/docker/${ID}` })).toMatchObject({
      runtime: 'docker', name: 'shop_web_1', podName: 'shop-7d9f', podNamespace: 'prod', containerName: 'web', source: 'docker config.v2.json',
    });
  });

  test('CRI-O: the OCI annotations of the container\'s config.json name the pod and container', () => {
    put(`run/containers/storage/overlay-containers/${ID}/userdata/config.json`, { annotations: {
      'io.kubernetes.pod.name': 'shop-7d9f', 'io.kubernetes.pod.namespace': 'prod', 'io.kubernetes.pod.uid': UID, 'io.kubernetes.container.name': 'web' } });
    expect(createContainerResolver(root).infoOf({ '': `/kubepods.slice/kubepods-pod${UID_}.slice/crio-${ID}.scope` })).toMatchObject({
      runtime: 'cri-o', podUid: UID, podName: 'shop-7d9f', podNamespace: 'prod', containerName: 'web', source: 'cri-o config.json',
    });
  });

  test('containerd: the CRI plugin\'s annotations in the task bundle (any containerd namespace)', () => {
    put(`run/containerd/io.containerd.runtime.v2.task/k8s.io/${ID}/config.json`, { annotations: {
      'io.kubernetes.cri.sandbox-name': 'api-5c6b', 'io.kubernetes.cri.sandbox-namespace': 'default', 'io.kubernetes.cri.sandbox-uid': UID, 'io.kubernetes.cri.container-name': 'api' } });
    expect(createContainerResolver(root).infoOf({ '': `/kubepods/burstable/pod${UID}/${ID}` })).toMatchObject({
      runtime: 'containerd', podName: 'api-5c6b', podNamespace: 'default', containerName: 'api', source: 'containerd config.json',
    });
  });

  test('kubelet: /var/log/pods names the pod, /var/log/containers its container (no runtime file readable)', () => {
    fs.mkdirSync(path.join(root, `var/log/pods/prod_shop-7d9f_${UID}/web`), { recursive: true });
    fs.mkdirSync(path.join(root, `var/log/pods/prod_other-1_${UID.replace(/^0/, '1')}`), { recursive: true });
    put(`var/log/containers/shop-7d9f_prod_web-${ID}.log`, '');
    put(`var/log/containers/shop-7d9f_prod_sidecar-${ID2}.log`, '');
    expect(createContainerResolver(root).infoOf({ '': `/kubepods/burstable/pod${UID}/${ID}` })).toMatchObject({
      runtime: '', id: ID, podUid: UID, podName: 'shop-7d9f', podNamespace: 'prod', containerName: 'web', source: '/var/log/pods',
    });
  });

  test('nothing readable: the cgroup\'s facts alone; a miss is looked up again later, a hit is kept', () => {
    const names = createNameReader(root);
    const ref = parseCgroupPath(`/docker/${ID}`)!;
    expect(names.lookup(ref)).toMatchObject({ name: '', source: '' });
    put(`var/lib/docker/containers/${ID}/config.v2.json`, { Name: '/late' });
    expect(names.lookup(ref).name).toBe(''); // within MISS_RETRY_MS: not read again
    const fresh = createNameReader(root);
    expect(fresh.lookup(ref).name).toBe('late');
    fs.rmSync(path.join(root, 'var'), { recursive: true });
    expect(fresh.lookup(ref).name).toBe('late');
  });

  test('malformed files are skipped, not thrown', () => {
    put('var/lib/containers/storage/overlay-containers/containers.json', '{not json');
    put(`var/lib/docker/containers/${ID}/config.v2.json`, '[]');
    expect(createContainerResolver(root).infoOf({ '': `/libpod_parent/libpod-${ID}` })).toMatchObject({ runtime: 'podman', name: '', source: '' });
  });
});

const pod: ContainerInfo = {
  runtime: 'cri-o', id: ID, name: '', podUid: UID, podName: 'shop-7d9f', podNamespace: 'prod', containerName: 'web', cgroupDriver: 'systemd', source: '/var/log/pods',
};
const svc = (over: Partial<Service>): Service => ({
  id: 's', name: 'gunicorn app:app :8000', kind: 'gunicorn', masterPid: 100, masterStartTicks: 1, ports: [8000], cgroup: '/x', unit: '', ...over,
});

describe('where identity shows', () => {
  test('/metrics labels: container, pod and network namespace tell two pods on :8000 apart; host services keep the labels they had', () => {
    const a = serviceLabels(svc({ container: pod, netNs: 4026532301, ownNetNs: true }));
    const b = serviceLabels(svc({ container: { ...pod, id: ID2, podName: 'shop-8e0a', podUid: UID.replace(/0$/, '1') }, netNs: 4026532302, ownNetNs: true }));
    expect(a).toEqual({ service: 'gunicorn app:app :8000', unit: '', cgroup: '/x', container: 'web', container_id: ID, pod: 'shop-7d9f', pod_uid: UID, namespace: 'prod', netns: '4026532301' });
    expect(JSON.stringify(a)).not.toBe(JSON.stringify(b));
    expect(serviceLabels(svc({ netNs: 4026531840, ownNetNs: false }))).toEqual({ service: 'gunicorn app:app :8000', unit: '', cgroup: '/x' });
    expect(serviceLabels(svc({ container: { ...pod, podUid: '', podName: '', podNamespace: '', containerName: '', runtime: 'podman', name: '' } })).container).toBe(ID.slice(0, 12));
  });

  test('OTLP: labels become semantic-convention attributes', () => {
    expect(toAttributes(serviceLabels(svc({ container: pod, netNs: 7, ownNetNs: true })))).toEqual({
      'service.name': 'gunicorn app:app :8000', 'process.linux.cgroup': '/x', 'k8s.container.name': 'web', 'container.id': ID,
      'k8s.pod.name': 'shop-7d9f', 'k8s.pod.uid': UID, 'k8s.namespace.name': 'prod', 'premortem.netns': '7',
    });
    const podman = { ...pod, runtime: 'podman', podUid: '', podName: '', podNamespace: '', containerName: '', name: 'pm-web' };
    expect(toAttributes(serviceLabels(svc({ container: podman })))).toMatchObject({ 'container.name': 'pm-web', 'container.id': ID });
    const worker = { pid: 25200, nsPid: 7 } as Identity;
    expect(containerAttributes(svc({ container: pod, netNs: 9, ownNetNs: true }), worker)).toEqual({
      'container.id': ID, 'container.runtime': 'cri-o', 'k8s.container.name': 'web', 'k8s.pod.uid': UID, 'k8s.pod.name': 'shop-7d9f',
      'k8s.namespace.name': 'prod', 'premortem.netns': 9, 'premortem.ns_pid': 7,
    });
    expect(containerAttributes(svc({}), { pid: 5, nsPid: 5 } as Identity)).toEqual({});
  });

  test('people: labels for the CLI and the viewer', () => {
    expect(containerLabel(pod)).toBe('pod prod/shop-7d9f web');
    expect(containerLabel({ ...pod, podUid: '', podName: '', podNamespace: '', containerName: '', runtime: 'podman', name: 'pm-web' })).toBe(`podman pm-web (${ID.slice(0, 12)})`);
    expect(containerLabel({ ...pod, podUid: '', podName: '', podNamespace: '', containerName: '', runtime: 'docker', name: '' })).toBe(`docker ${ID.slice(0, 12)}`);
    expect(whereOf(svc({ container: pod, netNs: 4026532301, ownNetNs: true }))).toBe('pod prod/shop-7d9f web · network namespace 4026532301');
    expect(whereOf(svc({ unit: 'app.service' }))).toBe('app.service');
    // The viewer's banner and lists.
    expect(whereText(svc({ container: pod, netNs: 4026532301, ownNetNs: true }))).toBe('pod prod/shop-7d9f web · network namespace 4026532301');
    expect(whereText(svc({ netNs: 4026531840, ownNetNs: false }))).toBe('');
    expect(pidLabel({ pid: 25200, nsPid: 7 } as Identity)).toBe('25200 (7)');
    expect(pidTitle({ pid: 25200, nsPid: 7 } as Identity)).toMatch(/pid 7 inside its PID namespace/);
    expect(pidLabel({ pid: 25200, nsPid: 25200 } as Identity)).toBe('25200');
  });
});

describe('namespaced pids', () => {
  test('NSpid: outermost first; the innermost is what the process\'s own logs print', () => {
    expect(parseNsPids('Name:\tgunicorn\nNSpid:\t25200\t7\nNSpgid:\t25139\t1\n')).toEqual([25200, 7]);
    expect(parseNsPids('NSpid:\t42\n')).toEqual([42]);
    expect(parseNsPids('Name:\tx\n')).toEqual([]);
  });

  test('a verdict about a worker in a PID namespace names both pids and its master\'s', () => {
    const worker = { pid: 25200, nsPid: 7, role: 'worker' } as Identity;
    const master = { pid: 25139, nsPid: 1, role: 'master' } as Identity;
    const v = { summary: 'The master pid 25139 (gunicorn) sent SIGABRT to worker pid 25200.', evidence: [], tMs: 5 } as unknown as Verdict;
    addNamespacedPids(v, worker, master);
    expect(v.summary).toBe('The master pid 25139 (gunicorn) sent SIGABRT to worker pid 25200. Inside its PID namespace the worker is pid 7 and its master pid 1 (host pids 25200 and 25139).');
    expect(v.evidence).toEqual([{ what: 'pid in its namespace', value: '7; master 1', tMs: 5, number: 7, unit: '' }]);
    expect(pidText(worker)).toBe('pid 25200 (7 in its PID namespace)');
    const host = { summary: 'x.', evidence: [], tMs: 1 } as unknown as Verdict;
    addNamespacedPids(host, { pid: 9, nsPid: 9, role: 'worker' } as Identity, master);
    expect(host).toEqual({ summary: 'x.', evidence: [], tMs: 1 });
  });
});
