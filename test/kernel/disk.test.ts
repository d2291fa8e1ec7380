/**
 * Block I/O latency and D-state time from real processes doing direct I/O on
 * the real disk (not tmpfs), checked against what they did.
 */
import * as fs from 'fs';
import * as path from 'path';
import { openTracer, TestTracer } from '../helpers/tracer';
import { exited, printed, start, stopAll, waitFor } from '../helpers/procs';
import { RecordType } from '../../agent/records';
import { DiskOp, readDiskDevices, readDiskProcess, readDStateHist, statDevName, wholeDiskName } from '../../agent/probes/disk';

const MiB = 1 << 20;

/** Debian's python3.11 running `code` with arguments, stdin open for go/stop lines. */
const py = (code: string, args: string[]) =>
  start('/usr/bin/python3.11', ['-c', code, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
const CHUNKS = 16; // 1 MiB each

// O_DIRECT writes over a preallocated file, fsync, O_DIRECT reads.
const DIRECT_IO = `
import mmap, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
os.posix_fallocate(fd, 0, ${CHUNKS} * ${MiB})
os.fsync(fd)
buf = mmap.mmap(-1, ${MiB})  # page aligned, as O_DIRECT wants
buf.write(b'x' * ${MiB})
print('ready', flush=True)
sys.stdin.readline()
for i in range(${CHUNKS}):
    assert os.pwrite(fd, buf, i * ${MiB}) == ${MiB}
os.fsync(fd)
for i in range(${CHUNKS}):
    assert os.preadv(fd, [buf], i * ${MiB}) == ${MiB}
os.close(fd)
print('done', flush=True)
sys.stdin.readline()
`;

describe('disk: block latency per device and process, D-state time', () => {
  let t: TestTracer;
  let dir: string;
  let disk: string;
  beforeAll(() => {
    // A directory on the real disk: /var/tmp is on the root filesystem here.
    dir = fs.mkdtempSync(path.join('/var/tmp', 'premortem-disk-'));
    disk = wholeDiskName(statDevName(fs.statSync(dir).dev));
    const fsType = fs.readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' '))
      .filter((f) => f[1] && dir.startsWith(f[1])).sort((a, b) => b[1].length - a[1].length)[0]?.[2];
    expect(['tmpfs', 'ramfs', 'overlay']).not.toContain(fsType);
    t = openTracer({ probes: ['disk'], rodata: { disk: { targ_slow_us: 1 } } });
  });
  afterAll(async () => {
    t?.close();
    await stopAll();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a tracked process doing O_DIRECT writes, fsync and reads: its own attribution and the device', async () => {
    const before = readDiskDevices(t.tracer).get(disk);
    const child = py(DIRECT_IO, [path.join(dir, 'direct.bin')]);
    await printed(child, /ready/);
    const pid = child.pid!;
    t.tracer.track(pid);
    child.stdin!.write('go\n');
    await printed(child, /done/, 20000);
    const mine = readDiskProcess(t.tracer, pid)!;
    expect(mine).not.toBeNull();
    expect(mine.writeBytes).toBeGreaterThanOrEqual(CHUNKS * MiB);
    expect(mine.readBytes).toBeGreaterThanOrEqual(CHUNKS * MiB);
    expect(mine.writeOps).toBeGreaterThanOrEqual(CHUNKS);
    expect(mine.readOps).toBeGreaterThanOrEqual(CHUNKS);
    expect(mine.latency.count).toBe(mine.readOps + mine.writeOps + mine.flushOps + mine.otherOps);
    expect(mine.latency.maxNs).toBeGreaterThan(0);
    expect(mine.latency.maxNs).toBeLessThan(10e9);
    expect(mine.errors).toBe(0);

    // The device saw at least as much, in the same histogram.
    const dev = readDiskDevices(t.tracer).get(disk)!;
    expect(dev).toBeDefined();
    expect(dev.writeBytes - (before?.writeBytes ?? 0)).toBeGreaterThanOrEqual(CHUNKS * MiB);
    expect(dev.readBytes - (before?.readBytes ?? 0)).toBeGreaterThanOrEqual(CHUNKS * MiB);
    expect(dev.latency.count - (before?.latency.count ?? 0)).toBeGreaterThanOrEqual(mine.latency.count);

    // Every request above the 1 µs threshold has a record naming the process.
    // (Requests of its set-up, before it was tracked, carry its pid but tracked=false.)
    const recs = await waitFor(() => {
      t.tracer.sync();
      const r = t.ofType(RecordType.BioSlow).filter((x) => x.pid === pid && x.tracked);
      return r.length === mine.slow && r;
    }, 3000, 'one record per request of the process');
    expect(recs.length).toBeGreaterThanOrEqual(2 * CHUNKS);
    for (const r of recs) {
      expect(r.tracked).toBe(true);
      expect(r.comm).toBe('python3.11');
      expect(`${r.dev >>> 20}:${r.dev & 0xfffff}`).toBe(disk);
      expect(r.latencyNs).toBeGreaterThanOrEqual(1000);
    }
    const reads = recs.filter((r) => r.op === DiskOp.Read);
    expect(reads.reduce((n, r) => n + r.bytes, 0)).toBeGreaterThanOrEqual(CHUNKS * MiB);
  });

  test('an untracked process doing direct I/O counts for the device only', async () => {
    const before = readDiskDevices(t.tracer).get(disk);
    const file = path.join(dir, 'dd.bin');
    const dd = start('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', `count=${CHUNKS}`, 'oflag=direct,sync'], {
      stdio: 'ignore',
    });
    expect((await exited(dd, 20000)).code).toBe(0);
    expect(t.tracer.sync()).toBe(true); // its I/O completed before it exited: every record delivered
    expect(readDiskProcess(t.tracer, dd.pid!)).toBeNull();
    const after = readDiskDevices(t.tracer).get(disk)!;
    expect(after.writeBytes - (before?.writeBytes ?? 0)).toBeGreaterThanOrEqual(CHUNKS * MiB);
    const recs = t.ofType(RecordType.BioSlow).filter((r) => r.pid === dd.pid);
    expect(recs.length).toBeGreaterThan(0); // records name the issuer even when untracked
    // Before its exec the child is still named after its parent (node): reading dd's binary
    // from disk is I/O of that same process.
    expect(recs.map((r) => [r.tracked, r.comm]).filter(([tr, c]) => tr || !['dd', 'node'].includes(c as string))).toEqual([]);
    expect(recs.some((r) => r.comm === 'dd')).toBe(true);
  });

  test('a tracked process blocked on its fsync shows D-state time', async () => {
    // Buffered writes, then fsync: write-back kernel threads issue the I/O
    // while the process sleeps uninterruptibly waiting for it.
    const child = py(`
import os, sys
print('ready', flush=True)
sys.stdin.readline()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
chunk = b'y' * ${MiB}
for round in range(4):
    for i in range(16):
        os.write(fd, chunk)
    os.fsync(fd)
os.close(fd)
print('done', flush=True)
sys.stdin.readline()
`, [path.join(dir, 'buffered.bin')]);
    await printed(child, /ready/);
    const pid = child.pid!;
    t.tracer.track(pid);
    const startedAt = Date.now();
    child.stdin!.write('go\n');
    await printed(child, /done/, 30000);
    const wallNs = (Date.now() - startedAt) * 1e6;
    const h = readDStateHist(t.tracer, pid)!;
    expect(h).not.toBeNull();
    expect(h.count).toBeGreaterThanOrEqual(4); // at least one wait per fsync
    expect(h.sumNs).toBeGreaterThan(0);
    expect(h.sumNs).toBeLessThan(wallNs); // one thread cannot sleep longer than it ran
    expect(h.slots.reduce((a, b) => a + b, 0)).toBe(h.count);
  });
});
