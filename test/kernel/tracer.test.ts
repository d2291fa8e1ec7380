/**
 * The native tracer's life cycle and its loss accounting, on the real kernel:
 * links and maps go away on close and when the process is killed; errors carry
 * codes; produced = delivered + dropped exactly under a flood.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { addonPath, loadAddon, NativeError, type Tracer } from '../../agent/native';
import { RecordType } from '../../agent/records';
import { encodeFloodCfg } from '../../agent/probes';
import { linkIdsOf, stillAttached } from '../helpers/bpf';
import { exited, printed, python, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { openTracer } from '../helpers/tracer';


function thrown(fn: () => unknown): NativeError {
  try {
    fn();
  } catch (e) {
    return e as NativeError;
  }
  throw new Error('expected an exception');
}

afterAll(stopAll);

describe('tracer life cycle', () => {
  test('close detaches every link and is idempotent; a second tracer works after it', () => {
    const before = linkIdsOf(process.pid);
    const a = openTracer({ probes: ['runqlat'] });
    const aLinks = linkIdsOf(process.pid).filter((id) => !before.includes(id));
    expect(aLinks).toHaveLength(3);
    expect(stillAttached(aLinks)).toEqual(aLinks);
    a.close();
    a.close();
    expect(stillAttached(aLinks)).toEqual([]);
    expect(linkIdsOf(process.pid)).toEqual(before);
    expect(thrown(() => a.tracer.track(1)).code).toBe('PREMORTEM_ERR_CLOSED');

    const b = openTracer({ probes: ['runqlat'] });
    b.tracer.track(process.pid);
    const bLinks = linkIdsOf(process.pid).filter((id) => !before.includes(id));
    expect(bLinks).toHaveLength(3);
    b.close();
    expect(stillAttached(bLinks)).toEqual([]);
  });

  test('two tracers at once each own their links; closing one leaves the other working', async () => {
    const before = linkIdsOf(process.pid);
    const a = openTracer({ probes: ['runqlat'] });
    const aLinks = linkIdsOf(process.pid).filter((id) => !before.includes(id));
    const b = openTracer({ probes: ['runqlat'] });
    const bLinks = linkIdsOf(process.pid).filter((id) => !before.includes(id) && !aLinks.includes(id));
    expect([aLinks.length, bLinks.length]).toEqual([3, 3]);
    a.close();
    expect(stillAttached(aLinks)).toEqual([]);
    expect(stillAttached(bLinks)).toEqual(bLinks);
    const hog = python('import time\nwhile True: time.sleep(0.001)', { stdio: 'ignore' });
    b.tracer.track(hog.pid!);
    await sleep(300);
    expect(b.tracer.mapLookup('runqlat', 'runq_hist', hog.pid!)).not.toBeNull();
    b.close();
    expect(stillAttached(bLinks)).toEqual([]);
  });

  test('a tracer process killed with SIGKILL leaves no links behind', async () => {
    const script = `const a = require(${JSON.stringify(addonPath())});
      const t = new a.Tracer({ probes: ['runqlat'], onRecords() {} });
      console.log('ready'); setInterval(() => {}, 1000);`;
    const child = start(process.execPath, ['-e', script]);
    await new Promise<void>((resolve) => child.stdout!.on('data', (d) => String(d).includes('ready') && resolve()));
    const links = linkIdsOf(child.pid!);
    expect(links).toHaveLength(3);
    process.kill(child.pid!, 'SIGKILL');
    await exited(child);
    await waitFor(() => stillAttached(links).length === 0, 3000, 'links released by the kernel');
  });

  test('without privileges the error says why, with code and errno', async () => {
    const script = `const a = require(${JSON.stringify(addonPath())});
      try { new a.Tracer({ probes: ['runqlat'], onRecords() {} }); console.log('LOADED'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, errno: e.errno, message: e.message })); }`;
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all',
      process.execPath, '-e', script], { cwd: path.dirname(addonPath()) }).toString();
    const err = JSON.parse(out);
    expect(err.code).toBe('PREMORTEM_ERR_BPF_LOAD');
    expect([1, 13]).toContain(err.errno); // EPERM or EACCES
    expect(err.message).toMatch(/CAP_BPF/);
  });

  test('bad options and names fail with stable codes', () => {
    const { Tracer } = loadAddon();
    const onRecords = () => undefined;
    expect(thrown(() => new Tracer({ probes: ['nope'], onRecords })).code).toBe('PREMORTEM_ERR_UNKNOWN_PROBE');
    expect(thrown(() => new Tracer({ ringBufferBytes: 5000, onRecords })).code).toBe('PREMORTEM_ERR_ARG');
    expect(thrown(() => new Tracer({ probes: ['runqlat'], rodata: { runqlat: { no_such_var: 1 } }, onRecords })).message)
      .toMatch(/no load-time setting named 'no_such_var'/);
    expect(thrown(() => new (Tracer as any)({})).code).toBe('PREMORTEM_ERR_ARG');
  });

  test('a disabled program is reported, and the rest of the probe attaches', () => {
    const t = openTracer({ probes: ['runqlat'], disablePrograms: ['runqlat/sched_wakeup_new'] });
    const progs = t.tracer.probes()[0].programs;
    t.close();
    const byName = Object.fromEntries(progs.map((p) => [p.name, p]));
    expect(byName.sched_wakeup_new).toMatchObject({ enabled: false, attached: false });
    expect(byName.sched_wakeup_new.error?.message).toMatch(/disabled/);
    expect(byName.sched_switch).toMatchObject({ enabled: true, attached: true });
  });
});

/** A flood record takes 32 bytes of ring buffer: 24 of record, 8 of ring-buffer header. */
const FLOOD_SLOT_BYTES = 32;

/**
 * Loss is forced, never hoped for: a ring buffer too small for what is produced
 * while the consumer is held (the JS thread blocked, or the reader paused), so the
 * outcome is the same on a machine that reads ten times faster or slower.
 */
describe('loss accounting under a flood', () => {
  type Opts = { ringBufferBytes: number; maxQueuedBatches?: number };
  function floodTracer(opts: Opts) {
    const { Tracer } = loadAddon();
    const seen = { records: 0 };
    const tracer = new Tracer({
      probes: ['flood'], ringBufferBytes: opts.ringBufferBytes, maxQueuedBatches: opts.maxQueuedBatches ?? 4, batchBytes: 64 * 1024,
      onRecords(_batch, count) { seen.records += count; },
    });
    return { tracer, seen };
  }
  /** A python that waits for SIGUSR1, makes `calls` getppid() calls, then writes `doneFile`. */
  async function producer(calls: number, doneFile = '/dev/null') {
    const p = python(`import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
print('ready', flush=True)
signal.sigwait({signal.SIGUSR1})
for _ in range(${calls}): os.getppid()
open(${JSON.stringify(doneFile)}, 'w').close()
`, { stdio: ['ignore', 'pipe', 'inherit'] });
    await printed(p, /ready/);
    return p;
  }
  function counts(tracer: Tracer) {
    const produced = Number(new BigUint64Array(tracer.mapLookup('flood', 'flood_produced', 0)!)[0]);
    const s = tracer.stats();
    return { produced, delivered: s.delivered[RecordType.Flood], dropped: s.dropped[RecordType.Flood], stats: s };
  }
  /** Everything reserved (the producer has exited) read and handed to JS. */
  async function drain(tracer: Tracer) {
    expect(tracer.sync()).toBe(true);
  }

  test('a ring buffer larger than everything produced loses nothing, however fast the burst', async () => {
    const RING = 8 << 20, BATCH = 256;
    const calls = Math.floor((RING / FLOOD_SLOT_BYTES) * 0.75 / BATCH); // 3/4 of the ring in one burst
    const { tracer, seen } = floodTracer({ ringBufferBytes: RING });
    try {
      const p = await producer(calls);
      tracer.mapUpdate('flood', 'flood_cfg', 0, encodeFloodCfg(p.pid!, BATCH));
      process.kill(p.pid!, 'SIGUSR1');
      await exited(p, 30000);
      await drain(tracer);
      const r = counts(tracer);
      expect(r.produced).toBe(calls * BATCH);
      expect(r.dropped).toBe(0);
      expect(r.delivered).toBe(r.produced);
      expect(seen.records).toBe(r.delivered);
    } finally {
      tracer.close();
    }
  });

  test('JS held while the flood runs: the queue stays at its bound, the reader waits, the kernel counts the loss exactly', async () => {
    const RING = 64 << 10, QUEUED = 4, CALLS = 3000, BATCH = 512;
    const { tracer, seen } = floodTracer({ ringBufferBytes: RING, maxQueuedBatches: QUEUED });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-flood-held-'));
    try {
      const done = path.join(dir, 'done');
      const p = await producer(CALLS, done);
      tracer.mapUpdate('flood', 'flood_cfg', 0, encodeFloodCfg(p.pid!, BATCH));
      process.kill(p.pid!, 'SIGUSR1');
      // Hold the JS thread (no batch is taken) until the producer is done: the reader fills
      // its queue, then waits; the ring buffer fills; every later record is refused.
      const sleeper = new Int32Array(new SharedArrayBuffer(4));
      const deadline = Date.now() + 60_000;
      while (!fs.existsSync(done)) {
        if (Date.now() > deadline) throw new Error('the producer did not finish within 60 s');
        Atomics.wait(sleeper, 0, 0, 5);
      }
      const held = counts(tracer);
      expect(seen.records).toBe(0);
      expect(held.stats.queued).toBeLessThanOrEqual(QUEUED); // memory between the threads is bounded
      expect(held.stats.queueWaits).toBeGreaterThan(0);
      // The queue and the ring buffer together hold at most this much; the rest was refused.
      const held64k = Math.ceil(64 * 1024 / 24);
      expect(held.delivered).toBeLessThanOrEqual((QUEUED + 1) * held64k);
      expect(held.dropped).toBeGreaterThanOrEqual(CALLS * BATCH - (QUEUED + 1) * held64k - RING / FLOOD_SLOT_BYTES);

      await exited(p, 10000);
      await drain(tracer);
      const r = counts(tracer);
      console.log(`JS held: produced ${r.produced}, delivered ${r.delivered}, dropped ${r.dropped}, reader waited ${r.stats.queueWaits} times`);
      expect(r.produced).toBe(CALLS * BATCH);
      expect(r.delivered + r.dropped).toBe(r.produced);
      expect(seen.records).toBe(r.delivered);
    } finally {
      tracer.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('pause(): the ring buffer keeps what fits, the kernel drops and counts the rest; resume() delivers it and loses nothing more', async () => {
    const RING = 64 << 10, BATCH = 512;
    const { tracer, seen } = floodTracer({ ringBufferBytes: RING });
    try {
      tracer.pause();
      tracer.pause(); // idempotent
      expect(tracer.stats().paused).toBe(true);
      const p = await producer(100);
      tracer.mapUpdate('flood', 'flood_cfg', 0, encodeFloodCfg(p.pid!, BATCH));
      process.kill(p.pid!, 'SIGUSR1');
      await exited(p, 30000);
      const paused = counts(tracer);
      expect(paused.produced).toBe(100 * BATCH);
      expect(paused.delivered).toBe(0); // nothing left the ring buffer
      expect(tracer.sync(50)).toBe(false); // a held reader completes no pass
      expect(counts(tracer).delivered).toBe(0);
      // A full ring buffer: every slot but the last is used, everything else refused.
      expect(paused.dropped).toBe(paused.produced - (RING / FLOOD_SLOT_BYTES - 1));

      tracer.resume();
      expect(tracer.stats().paused).toBe(false);
      await drain(tracer);
      const resumed = counts(tracer);
      expect(resumed.delivered).toBe(RING / FLOOD_SLOT_BYTES - 1);
      expect(resumed.dropped).toBe(paused.dropped);

      // Reading again: a burst that fits is delivered whole.
      const q = await producer(2);
      tracer.mapUpdate('flood', 'flood_cfg', 0, encodeFloodCfg(q.pid!, BATCH));
      process.kill(q.pid!, 'SIGUSR1');
      await exited(q, 30000);
      await drain(tracer);
      const r = counts(tracer);
      expect(r.produced).toBe(102 * BATCH);
      expect(r.dropped).toBe(paused.dropped);
      expect(r.delivered + r.dropped).toBe(r.produced);
      expect(seen.records).toBe(r.delivered);
    } finally {
      tracer.close();
    }
  });

  test('close() while paused still delivers what the ring buffer holds', async () => {
    const { tracer, seen } = floodTracer({ ringBufferBytes: 64 << 10 });
    tracer.pause();
    const p = await producer(4);
    tracer.mapUpdate('flood', 'flood_cfg', 0, encodeFloodCfg(p.pid!, 256));
    process.kill(p.pid!, 'SIGUSR1');
    await exited(p, 30000);
    expect(seen.records).toBe(0);
    tracer.close();
    expect(seen.records).toBe(4 * 256);
    expect(tracer.stats()).toMatchObject({ closed: true, paused: false });
    expect(tracer.stats().delivered[RecordType.Flood]).toBe(4 * 256);
    expect(() => tracer.pause()).toThrow(/closed/);
  });
});
