/**
 * A real container: gunicorn started by podman (runc, cgroupfs driver) with
 * its own network, PID and mount namespaces and its own cgroup. The agent on
 * the host must find it like any service, say where it runs (runtime, id and
 * name, parsed from the cgroup path podman made and named from podman's own
 * containers.json), count its sockets in the container's network namespace,
 * give its pids inside the container, and carry all of it into the bundle,
 * `premortem show`, /metrics labels and OTLP attributes.
 */
import * as path from 'path';
import { formatBundle } from '../../agent/cli/format';
import { createMetrics, Metrics } from '../../agent/metrics';
import { containerAttributes } from '../../agent/otlp';
import { nsInode, readCgroups } from '../../agent/procfs';
import type { ServiceBucket } from '../../proto/codec';
import { useTestAgent } from '../helpers/agent';
import { writeHoldApp } from '../helpers/hold-app';
import { runContainer, TestContainer } from '../helpers/podman';
import { printed, start, waitFor } from '../helpers/procs';

const PORT = 8000;
const LEAKS = 12;

const t = useTestAgent('podman', {}, { logLevel: 'warn' });
let metrics: Metrics;
let ctr: TestContainer | undefined;
const startedMs = Date.now();

beforeAll(() => {
  writeHoldApp(t.app.dir, PORT);
  metrics = createMetrics(t.agent);
});

afterAll(() => {
  metrics?.close();
  ctr?.remove();
  console.log(`podman test: ${((Date.now() - startedMs) / 1000).toFixed(1)} s in all`);
});

test('gunicorn in a podman container: identity, namespaces and sockets seen from the host', async () => {
  const t0 = Date.now();
  ctr = runContainer(`pm-ctr-${process.pid}`, ['/usr/bin/python3', '/usr/bin/gunicorn', '--chdir', t.app.dir, '-b', `127.0.0.1:${PORT}`,
    '-w', '1', '--timeout', '120', 'holdapp:app'], [t.app.dir]);
  console.log(`podman run: ${Date.now() - t0} ms`);
  // The cgroup podman made, as the host sees it: the cgroupfs driver's name.
  expect(Object.values(readCgroups(ctr.pid))).toContain(`/libpod_parent/libpod-${ctr.id}`);

  const svc = await waitFor(() => t.agent.snapshot().services.find((s) => s.masterPid === ctr!.pid && s.ports.includes(PORT)), 20_000, 'the service inside the container');
  expect(svc.container).toEqual({
    runtime: 'podman', id: ctr.id, name: ctr.name, podUid: '', podName: '', podNamespace: '', containerName: '',
    cgroupDriver: 'cgroupfs', source: 'podman containers.json',
  });
  expect(svc).toMatchObject({ netNs: nsInode(ctr.pid, 'net'), ownNetNs: true, pidNs: nsInode(ctr.pid, 'pid'), ownPidNs: true });
  const ids = await waitFor(() => {
    const ws = t.agent.snapshot().workers.filter((w) => w.identity?.serviceId === svc.id && w.state === 'alive').map((w) => w.identity!);
    return ws.length === 2 ? ws : undefined;
  }, 15_000, 'master and worker tracked');
  expect(ids.find((i) => i.role === 'master')?.nsPid).toBe(1);
  const worker = ids.find((i) => i.role === 'worker')!;
  expect(worker.nsPid).toBeGreaterThan(1);
  expect(worker.nsPid).not.toBe(worker.pid);

  // Sockets in the container's network namespace: a client run inside it (nsenter -n).
  const client = start('/usr/bin/nsenter', ['-t', String(ctr.pid), '-n', '/usr/bin/python3', path.join(t.app.dir, 'client.py'), 'hold', String(LEAKS)]);
  await printed(client, /sent/, 30_000);
  const buckets = (): ServiceBucket[] => t.agent.history('', 0, Date.now() + 1000, { serviceId: svc.id }).serviceBuckets;
  await waitFor(() => buckets().some((b) => (b.socketStates.CLOSE_WAIT ?? 0) === LEAKS), 10_000, `${LEAKS} in CLOSE_WAIT in the container`);

  const labels = metrics.families().find((f) => f.name === 'premortem_service_workers_alive')!.samples.find((s) => s.labels.container_id === ctr!.id)?.labels;
  expect(labels).toMatchObject({ container: ctr.name, container_id: ctr.id, netns: String(svc.netNs) });
  expect(labels?.pod).toBeUndefined(); // not a pod: no empty pod labels either

  process.kill(worker.pid, 'SIGKILL');
  const b = await waitFor(() => t.bundles.find((x) => x.bundle.worker?.pid === worker.pid)?.bundle, 20_000, 'the worker\'s bundle');
  expect(b.service?.container).toEqual(svc.container);
  expect(b.worker?.nsPid).toBe(worker.nsPid);
  expect(b.verdict?.summary).toContain(`Inside its PID namespace the worker is pid ${worker.nsPid}`);
  expect(Math.max(...b.serviceBuckets.map((x) => x.socketStates.CLOSE_WAIT ?? 0))).toBe(LEAKS);
  expect(containerAttributes(b.service, b.worker)).toMatchObject({
    'container.id': ctr.id, 'container.name': ctr.name, 'container.runtime': 'podman', 'premortem.ns_pid': worker.nsPid, 'premortem.netns': svc.netNs,
  });
  const text = formatBundle(b);
  expect(text).toContain(`where     podman ${ctr.name} (${ctr.id.slice(0, 12)}) · network namespace ${svc.netNs}`);
  expect(text).toContain(`(${worker.nsPid} in its PID namespace)`);
});
