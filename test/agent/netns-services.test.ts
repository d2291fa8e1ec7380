/**
 * Two deployments of the same gunicorn app, each in its own network
 * namespace (ip netns), both on 127.0.0.1:8000 — as every pod listens on
 * :8000. One gets a full accept queue (one sync worker blocked, --backlog 4,
 * more clients than the queue holds), the other leaks CLOSE_WAIT (a handler
 * that keeps a dup of the client socket). The real agent must see each in
 * its own namespace and keep them apart everywhere: service timelines,
 * markers, post-mortem bundles and /metrics.
 */
import * as path from 'path';
import { createMetrics, Metrics } from '../../agent/metrics';
import type { Service, ServiceBucket } from '../../proto/codec';
import { useTestAgent } from '../helpers/agent';
import { writeHoldApp } from '../helpers/hold-app';
import { createNetns, TestNetns } from '../helpers/netns';
import { printed, sleep, start, waitFor } from '../helpers/procs';
import { childrenOf } from '../helpers/services';

const PORT = 8000;
const BACKLOG = 4;
const LEAKS = 20;

const t = useTestAgent('netns', { thresholds: { closeWaitGrowth: 10, closeWaitWindowS: 3 } }, { logLevel: 'warn' });
let metrics: Metrics;
const spaces: TestNetns[] = [];

beforeAll(() => {
  writeHoldApp(t.app.dir, PORT);
  metrics = createMetrics(t.agent);
});

afterAll(() => {
  metrics?.close();
  for (const ns of spaces) ns.remove();
});

const inNs = (ns: TestNetns, cmd: string, args: string[]) => start(ns.prefix[0], [...ns.prefix.slice(1), cmd, ...args], { cwd: t.app.dir });
const gunicornIn = (ns: TestNetns, args: string[]) =>
  inNs(ns, '/usr/bin/python3', ['/usr/bin/gunicorn', '--chdir', t.app.dir, '-b', `127.0.0.1:${PORT}`, '-w', '1', '--timeout', '120', ...args, 'holdapp:app']);

const serviceBuckets = (s: Service): ServiceBucket[] => t.agent.history('', 0, Date.now() + 1000, { serviceId: s.id }).serviceBuckets;
const maxOf = (bs: ServiceBucket[], f: (b: ServiceBucket) => number) => Math.max(0, ...bs.map(f));

test('two services on :8000 in two network namespaces: a full backlog and a CLOSE_WAIT leak land each on its own', async () => {
  const a = createNetns('full');
  spaces.push(a);
  const b = createNetns('leak');
  spaces.push(b);
  const ga = gunicornIn(a, ['--backlog', String(BACKLOG)]);
  const gb = gunicornIn(b, []);
  await Promise.all([printed(ga, /Booting worker/), printed(gb, /Booting worker/)]);

  const [sa, sb] = await waitFor(() => {
    const ss = t.agent.snapshot().services;
    const x = ss.find((s) => s.masterPid === ga.pid && s.ports.includes(PORT));
    const y = ss.find((s) => s.masterPid === gb.pid && s.ports.includes(PORT));
    return x && y ? [x, y] : undefined;
  }, 15_000, 'both services found with their port');
  expect(sa.name).toBe(sb.name); // the same command line: only the namespace tells them apart
  expect([sa.netNs, sa.ownNetNs, sb.netNs, sb.ownNetNs]).toEqual([a.inode, true, b.inode, true]);
  await waitFor(() => serviceBuckets(sa).length >= 4 && serviceBuckets(sb).length >= 4, 10_000, 'a few calm buckets');

  // A: one worker blocked, more clients than the accept queue holds.
  const fill = inNs(a, '/usr/bin/python3', [path.join(t.app.dir, 'client.py'), 'block', String(3 * BACKLOG)]);
  // B: connections answered and closed by the client, never by the server.
  const leak = inNs(b, '/usr/bin/python3', [path.join(t.app.dir, 'client.py'), 'hold', String(LEAKS)]);
  await printed(leak, /sent/, 30_000);
  void fill;

  const fullA = await waitFor(() => t.markers.find((m) => m.kind === 'backlog-full' && m.serviceId === sa.id), 20_000, 'backlog-full on A');
  expect(fullA.numbers).toMatchObject({ max: BACKLOG, port: PORT });
  const cwB = await waitFor(() => t.markers.find((m) => m.kind === 'close-wait-growing' && m.serviceId === sb.id), 20_000, 'close-wait-growing on B');
  expect(cwB.numbers.to).toBeGreaterThanOrEqual(10);
  await waitFor(() => maxOf(serviceBuckets(sb), (x) => x.socketStates.CLOSE_WAIT ?? 0) >= LEAKS, 10_000, `${LEAKS} in CLOSE_WAIT on B`);
  await sleep(1000); // a few more buckets: nothing may cross over meanwhile either

  // Markers: nothing of A's trouble on B, nothing of B's on A.
  expect(t.markers.filter((m) => m.serviceId === sb.id && /^backlog/.test(m.kind))).toEqual([]);
  expect(t.markers.filter((m) => m.serviceId === sa.id && m.kind === 'close-wait-growing')).toEqual([]);
  // Timelines: each service's sockets and queue are its namespace's.
  const ta = serviceBuckets(sa), tb = serviceBuckets(sb);
  expect(maxOf(ta, (x) => x.backlogMax)).toBe(BACKLOG);
  expect(maxOf(ta, (x) => x.backlogDepth)).toBeGreaterThanOrEqual(BACKLOG - 1);
  expect(maxOf(ta, (x) => x.socketStates.CLOSE_WAIT ?? 0)).toBe(0);
  expect(maxOf(tb, (x) => x.socketStates.CLOSE_WAIT ?? 0)).toBe(LEAKS);
  expect(maxOf(tb, (x) => x.backlogDepth)).toBeLessThan(BACKLOG); // a connection waits for accept() now and then, never a queue
  expect(maxOf(tb, (x) => x.backlogMax)).toBeGreaterThan(BACKLOG); // gunicorn's default backlog (2048)

  // /metrics: two label sets for the same service name, told apart by netns; each with its own numbers.
  const fam = (name: string) => metrics.families().find((f) => f.name === name)!.samples;
  await waitFor(() => fam('premortem_service_sockets').some((s) => s.labels.netns === String(b.inode) && s.labels.state === 'CLOSE_WAIT' && s.value === LEAKS), 5000, 'CLOSE_WAIT on the page');
  const alive = fam('premortem_service_workers_alive').filter((s) => s.labels.service === sa.name);
  expect(alive.map((s) => s.labels.netns).sort()).toEqual([String(a.inode), String(b.inode)].sort());
  expect(fam('premortem_service_sockets').filter((s) => s.labels.netns === String(a.inode) && s.labels.state === 'CLOSE_WAIT').every((s) => s.value === 0)).toBe(true);
  expect(fam('premortem_service_backlog_max').find((s) => s.labels.netns === String(a.inode))?.value).toBe(BACKLOG);
  expect(fam('premortem_service_markers_total').filter((s) => s.labels.kind === 'backlog-full').map((s) => s.labels.netns)).toEqual([String(a.inode)]);
  expect(fam('premortem_service_markers_total').filter((s) => s.labels.kind === 'close-wait-growing').map((s) => s.labels.netns)).toEqual([String(b.inode)]);

  // Bundles: each worker's post-mortem holds its own service's namespace, series and markers.
  const [wa] = childrenOf(ga.pid!);
  const [wb] = childrenOf(gb.pid!);
  process.kill(wa, 'SIGKILL');
  process.kill(wb, 'SIGKILL');
  const ba = await waitFor(() => t.bundles.find((x) => x.bundle.worker?.pid === wa)?.bundle, 20_000, 'the bundle of A\'s worker');
  const bb = await waitFor(() => t.bundles.find((x) => x.bundle.worker?.pid === wb)?.bundle, 20_000, 'the bundle of B\'s worker');
  expect(t.deaths.find((d) => d.identity?.pid === wa)?.verdict?.kind).toBe('killed-by-other');
  expect([ba.service?.id, ba.service?.netNs, bb.service?.id, bb.service?.netNs]).toEqual([sa.id, a.inode, sb.id, b.inode]);
  expect(ba.markers.some((m) => m.kind === 'backlog-full')).toBe(true);
  expect(ba.markers.some((m) => m.kind === 'close-wait-growing')).toBe(false);
  expect(bb.markers.some((m) => m.kind === 'close-wait-growing')).toBe(true);
  expect(bb.markers.some((m) => /^backlog/.test(m.kind))).toBe(false);
  expect(maxOf(ba.serviceBuckets, (x) => x.backlogMax)).toBe(BACKLOG);
  expect(maxOf(ba.serviceBuckets, (x) => x.socketStates.CLOSE_WAIT ?? 0)).toBe(0);
  expect(maxOf(bb.serviceBuckets, (x) => x.socketStates.CLOSE_WAIT ?? 0)).toBe(LEAKS);
  expect(ba.serviceBuckets.every((x) => x.serviceId === sa.id) && bb.serviceBuckets.every((x) => x.serviceId === sb.id)).toBe(true);
  // What is written to disk reads back the same.
  expect((await t.store.read(bundleIdOf(wa))).service?.netNs).toBe(a.inode);
});

function bundleIdOf(pid: number): string {
  return t.deaths.find((d) => d.identity?.pid === pid)!.bundleId;
}
