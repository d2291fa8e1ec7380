/**
 * Every pre-failure marker and signal the README advertises, provoked with real
 * processes and the real kernel and read back the way a user sees it: the
 * marker on the timeline, the series in the buckets. docs/SIGNALS.md lists each
 * signal with the test that proves it (some live in other files).
 *
 * Thresholds are lowered where the default needs more trouble than a test can
 * make in a few seconds on any machine (runqueue p99 50 ms, GC pause 100 ms):
 * what is proven is that the signal reaches the marker, not the default value.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type { Bucket, HostBucket, Marker, ServiceBucket } from '../../proto/codec';
import { killGroup, printed, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { createCpuCgroup, TestCgroup } from '../helpers/cgroup';
import { createSlowDisk, directReader, SlowDisk } from '../helpers/slow-disk';
import { dropFromPort } from '../helpers/netns';
import { useTestAgent } from '../helpers/agent';

const PY = '/usr/bin/python3.11';
const t = useTestAgent('signals', { slowWaitUs: 2_000, thresholds: { runqP99Us: 2_000, gcPauseMs: 5 } });
const { markers } = t;
const cleanups: Array<() => Promise<void>> = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function markerOf(kind: string, match: (m: Marker) => boolean, timeoutMs = 20_000): Promise<Marker> {
  return waitFor(() => markers.find((m) => m.kind === kind && match(m)), timeoutMs, `a ${kind} marker`);
}

function workerKey(pid: number): string {
  const w = t.agent.snapshot().workers.find((x) => x.identity?.pid === pid && x.state === 'alive');
  if (!w) throw new Error(`pid ${pid} is not tracked`);
  return `${pid}:${w.identity!.startTicks}`;
}

/** The worker's buckets so far (newest last). */
function bucketsOf(pid: number): Bucket[] {
  return t.agent.history(workerKey(pid), 0, Date.now() + 1000).timelines[0]?.buckets ?? [];
}

function serviceBuckets(serviceId: string): ServiceBucket[] {
  return t.agent.history('', 0, Date.now() + 1000, { serviceId }).serviceBuckets;
}

function hostBuckets(): HostBucket[] {
  return t.agent.history('', 0, Date.now() + 1000, { host: true }).hostBuckets;
}

/** A python script written into the test's app dir (so discovery's match finds it) and started. */
function script(name: string, code: string, prefix: string[] = []) {
  const file = path.join(t.app.dir, name);
  fs.writeFileSync(file, code);
  const [cmd, ...rest] = [...prefix, PY, file];
  return start(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function serviceOnPort(port: number): Promise<string> {
  const s = await waitFor(() => t.agent.snapshot().services.find((x) => x.ports.includes(port)), 15_000, `a service on port ${port}`);
  return s.id;
}

const connect = (port: number) => new Promise<net.Socket>((resolve, reject) => {
  const c = net.connect(port, '127.0.0.1', () => resolve(c));
  c.once('error', reject);
});

test('CPU contention: runq-p99-high and slow-wakeup naming the task that held the CPU', async () => {
  // The tracked loop and six hogs share CPU 1: every wait is several time slices long.
  const tracked = start('taskset', ['-c', '1', PY, '-c', 'print("ready", flush=True)\nwhile True: pass']);
  await printed(tracked, /ready/);
  for (let i = 0; i < 6; i++) start('taskset', ['-c', '1', 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
  expect(t.agent.trackPid(tracked.pid!)).toBe(true);
  const p99 = await markerOf('runq-p99-high', (m) => m.pid === tracked.pid);
  expect(p99.numbers.p99Us).toBeGreaterThan(2_000);
  // The hogs hold CPU 1 nearly all the time (another task of the machine may be named too).
  const slow = await markerOf('slow-wakeup', (m) => m.pid === tracked.pid && m.details.culprit === 'sh');
  expect(slow.numbers.waitMs).toBeGreaterThanOrEqual(2);
  expect(slow.message).toMatch(/held CPU 1/);
  const b = bucketsOf(tracked.pid!).filter((x) => x.runqCount > 0);
  expect(Math.max(...b.map((x) => x.runqP99Us))).toBeGreaterThan(2_000);
  expect(Math.max(...b.map((x) => x.involuntarySwitches))).toBeGreaterThan(0);
  await waitFor(() => hostBuckets().some((h) => h.psiCpuSomeAvg10 > 0), 15_000, 'CPU pressure (PSI) in a host bucket');
  await stopAll();
}, 60_000);

test('a full accept queue: backlog-full at once, backlog-near-full from the buckets', async () => {
  const server = script('backlog.py', [
    'import socket, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)  # never accepts',
    'print(s.getsockname()[1], flush=True)',
    'time.sleep(600)',
  ].join('\n'));
  const port = Number((await printed(server, /^\d+/m)).trim());
  const serviceId = await serviceOnPort(port);
  await sleep(600); // the port is watched from the next tick
  const clients = Array.from({ length: 12 }, () => net.connect(port, '127.0.0.1').on('error', () => undefined));
  const full = await markerOf('backlog-full', (m) => m.serviceId === serviceId);
  expect(full.numbers).toMatchObject({ max: 4, port });
  const near = await markerOf('backlog-near-full', (m) => m.serviceId === serviceId);
  expect(near.numbers.max).toBe(4);
  expect(near.numbers.depth).toBeGreaterThanOrEqual(4);
  for (const c of clients) c.destroy();
  await killGroup(server);
}, 60_000);

test('a server that never closes: close-wait-growing, then a client reset counted in the service buckets', async () => {
  const server = script('closewait.py', [
    'import socket',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)',
    'print(s.getsockname()[1], flush=True)',
    'kept = []',
    'while True:',
    '    c, _ = s.accept(); kept.append(c)  # never closed',
  ].join('\n'));
  const port = Number((await printed(server, /^\d+/m)).trim());
  const serviceId = await serviceOnPort(port);
  await sleep(600);
  const closed = await Promise.all(Array.from({ length: 15 }, () => connect(port)));
  for (const c of closed) c.end(); // the client closes; the server never does: CLOSE_WAIT
  const cw = await markerOf('close-wait-growing', (m) => m.serviceId === serviceId);
  expect(cw.numbers.to - cw.numbers.from).toBeGreaterThanOrEqual(10);
  await waitFor(() => serviceBuckets(serviceId).some((b) => (b.socketStates.CLOSE_WAIT ?? 0) >= 15), 10_000, '15 CLOSE_WAIT in a bucket');
  const aborted = await connect(port);
  await sleep(200);
  aborted.resetAndDestroy();
  await waitFor(() => serviceBuckets(serviceId).some((b) => b.resetsReceived > 0), 10_000, 'a received reset in a service bucket');
  await killGroup(server);
}, 60_000);

test("a lossy path: the service's retransmits counted in its buckets", async () => {
  const server = script('sender.py', [
    'import socket, threading',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)',
    'print(s.getsockname()[1], flush=True)',
    'def send(c):',
    '    while True: c.sendall(b"x" * 65536)',
    'while True:',
    '    c, _ = s.accept(); threading.Thread(target=send, args=(c,), daemon=True).start()',
  ].join('\n'));
  const port = Number((await printed(server, /^\d+/m)).trim());
  const serviceId = await serviceOnPort(port);
  const loss = dropFromPort(port, 4);
  cleanups.push(async () => loss.remove());
  const reader = await connect(port);
  reader.on('data', () => undefined);
  await waitFor(() => serviceBuckets(serviceId).some((b) => b.retransmits > 0), 15_000, 'retransmits in a service bucket');
  reader.destroy();
  await killGroup(server);
}, 60_000);

test('a long collection in Debian python (USDT): gc-pause with its generation, GC time in the buckets', async () => {
  const proc = start(PY, ['-c', [
    'import gc, time',
    'print("ready", flush=True)',
    'while True:',
    '    junk = []',
    '    for _ in range(300000):',
    '        a = []; a.append(a); junk.append(a)',
    '    del junk',
    '    gc.collect()',
    '    time.sleep(0.2)',
  ].join('\n')]);
  await printed(proc, /ready/);
  expect(t.agent.trackPid(proc.pid!)).toBe(true);
  const m = await markerOf('gc-pause', (x) => x.pid === proc.pid);
  expect(m.numbers.pauseMs).toBeGreaterThan(5);
  expect(m.numbers.generation).toBe(2);
  await waitFor(() => bucketsOf(proc.pid!).some((b) => b.gcPauses > 0 && b.gcPauseNs > 5e6), 10_000, 'GC pauses in a bucket');
  await killGroup(proc);
}, 60_000);

describe('a slow disk (loop device, reads throttled to 4 IOPS)', () => {
  let disk: SlowDisk;
  beforeAll(() => {
    disk = createSlowDisk('signals', { iops: 4 });
    cleanups.push(() => disk.remove());
  });

  test('dstate-stall and slow-io name the worker and the device; latency per worker and per device', async () => {
    const reader = start(disk.cgroup.prefix[0], [...disk.cgroup.prefix.slice(1), PY, '-c', directReader(disk.device)]);
    await printed(reader, /ready/);
    expect(t.agent.trackPid(reader.pid!)).toBe(true);
    const d = await markerOf('dstate-stall', (m) => m.pid === reader.pid);
    expect(d.numbers.ratio).toBeGreaterThan(0.2);
    const io = await markerOf('slow-io', (m) => m.pid === reader.pid);
    expect(io.details).toMatchObject({ device: disk.name, op: 'read' });
    expect(io.numbers.latencyMs).toBeGreaterThanOrEqual(50);
    const b = await waitFor(() => bucketsOf(reader.pid!).find((x) => x.bioReadBytes > 0 && x.bioLatP99Us >= 50_000), 10_000,
      'a worker bucket with its reads and their latency');
    expect(b.bioOps).toBeGreaterThan(0);
    const dev = await waitFor(() => hostBuckets().flatMap((h) => h.devices).find((x) => x.device === disk.name && x.latP99Us >= 50_000),
      10_000, `a host bucket with ${disk.name}'s latency`);
    expect(dev.ops).toBeGreaterThan(0);
    expect(dev.readBytes).toBeGreaterThan(0);
    await killGroup(reader);
  }, 60_000);
});

test('major faults: pages of a file read back through a mapping after the page cache dropped them', async () => {
  const file = path.join(os.tmpdir(), `pm-majflt-${process.pid}.bin`);
  cleanups.push(async () => fs.rmSync(file, { force: true }));
  const proc = start(PY, ['-c', [
    'import mmap, os, time',
    `path = ${JSON.stringify(file)}`,
    'with open(path, "wb") as f:',
    '    f.write(os.urandom(32 << 20)); f.flush(); os.fsync(f.fileno())',
    'print("ready", flush=True)',
    'while True:',
    '    fd = os.open(path, os.O_RDONLY)',
    '    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # clean pages leave the cache',
    '    m = mmap.mmap(fd, 0, prot=mmap.PROT_READ)',
    '    s = sum(m[i] for i in range(0, len(m), 4096))',
    '    m.close(); os.close(fd)',
    '    time.sleep(0.2)',
  ].join('\n')]);
  await printed(proc, /ready/, 30_000);
  expect(t.agent.trackPid(proc.pid!)).toBe(true);
  await waitFor(() => bucketsOf(proc.pid!).some((b) => b.majorFaults > 0), 15_000, 'a bucket with major faults');
  await killGroup(proc);
}, 60_000);

describe('a gunicorn in a CPU cgroup with a 20 % quota, under load', () => {
  let cg: TestCgroup;
  beforeAll(() => {
    cg = createCpuCgroup(`pm-signals-cpu-${process.pid}`, 20_000);
    cleanups.push(() => cg.remove());
  });

  test('cpu-throttled on the service, throttled time in its buckets', async () => {
    const port = await freePort();
    const master = gunicorn(t.app, port, ['-w', '2'], { prefix: cg.prefix });
    await ready(port);
    await workersOf(master, 2);
    const serviceId = await serviceOnPort(port);
    let loading = true;
    const load = Promise.all(Array.from({ length: 4 }, async () => {
      while (loading) await get(port, '/gc', 30_000).catch(() => undefined);
    }));
    try {
      const m = await markerOf('cpu-throttled', (x) => x.serviceId === serviceId, 30_000);
      expect(m.numbers.periods).toBeGreaterThan(0);
      expect(m.numbers.throttledMs).toBeGreaterThan(0);
      const b = serviceBuckets(serviceId).filter((x) => x.nrThrottled > 0);
      expect(b.length).toBeGreaterThan(0);
      expect(b[b.length - 1].cpuThrottledUs).toBeGreaterThan(0);
    } finally {
      loading = false;
      await killGroup(master);
      await load;
    }
  }, 90_000);
});
