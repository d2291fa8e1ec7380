/**
 * The native tracer's life cycle and its loss accounting, on the real kernel:
 * links and maps go away on close and when the process is killed; errors carry
 * codes; produced = delivered + dropped exactly under a flood.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';
import { addonPath, loadAddon, NativeError } from '../agent/native';
import { RecordType } from '../agent/records';
import { encodeFloodCfg } from '../agent/probes';
import { linkIdsOf, stillAttached } from './helpers/bpf';
import { exited, python, sleep, start, stopAll, waitFor } from './helpers/procs';
import { openTracer } from './helpers/tracer';


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

describe('loss accounting under a flood', () => {
  async function flood(opts: { ringBufferBytes: number; slowConsumerMs: number; calls: number; batch: number }) {
    let seen = 0;
    const { Tracer } = loadAddon();
    const tracer = new Tracer({
      probes: ['flood'],
      ringBufferBytes: opts.ringBufferBytes,
      maxQueuedBatches: 4,
      batchBytes: 64 * 1024,
      onRecords(_batch, count) {
        seen += count;
        const until = Date.now() + opts.slowConsumerMs;
        while (Date.now() < until) { /* a deliberately slow consumer */ }
      },
    });
    try {
      const producer = python(`import os, sys\nsys.stdin.readline()\nfor _ in range(${opts.calls}): os.getppid()`, { stdio: ['pipe', 'ignore', 'ignore'] });
      tracer.mapUpdate('flood', 'flood_cfg', 0, encodeFloodCfg(producer.pid!, opts.batch));
      producer.stdin!.write('go\n');
      await exited(producer, 30000);
      await sleep(100);
      // Wait until everything reserved has been read and handed to JS.
      let last = -1;
      await waitFor(() => {
        tracer.flush();
        const s = tracer.stats();
        const done = s.delivered[RecordType.Flood] === last && s.queued === 0;
        last = s.delivered[RecordType.Flood];
        return done;
      }, 20000, 'the reader to drain');
      const produced = new BigUint64Array(tracer.mapLookup('flood', 'flood_produced', 0)!)[0];
      const s = tracer.stats();
      return { produced: Number(produced), delivered: s.delivered[RecordType.Flood], dropped: s.dropped[RecordType.Flood], seen };
    } finally {
      tracer.close();
    }
  }

  test('a fast consumer loses nothing', async () => {
    const r = await flood({ ringBufferBytes: 8 << 20, slowConsumerMs: 0, calls: 2000, batch: 256 });
    expect(r.produced).toBe(2000 * 256);
    expect(r.dropped).toBe(0);
    expect(r.delivered).toBe(r.produced);
    expect(r.seen).toBe(r.delivered);
  });

  test('a slow consumer with a small ring buffer: produced = delivered + dropped, exactly', async () => {
    const r = await flood({ ringBufferBytes: 64 << 10, slowConsumerMs: 20, calls: 3000, batch: 512 });
    expect(r.produced).toBe(3000 * 512);
    expect(r.dropped).toBeGreaterThan(0);
    expect(r.delivered + r.dropped).toBe(r.produced);
    expect(r.seen).toBe(r.delivered);
  });
});
