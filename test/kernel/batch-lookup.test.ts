/**
 * Tracer.mapLookupMany against the real maps: the values of many processes in
 * one call equal one mapLookup per process (per-CPU maps summed the same way),
 * missing keys read as zeros with found = 0, and the agent's batch read of
 * every tracked process equals its one-by-one read.
 */
import * as fs from 'fs';
import { openTracer, TestTracer } from '../helpers/tracer';
import { procStartTicks, python, sleep, stopAll, waitFor } from '../helpers/procs';
import { readCumulative, readCumulativeMany } from '../../agent/sampling/cumulative';

const TICK_NS = 1e7;
/** A pid that cannot exist (above PID_MAX_LIMIT). */
const NO_SUCH_PID = 4_194_305;

let t: TestTracer;
const pids: number[] = [];

beforeAll(async () => {
  t = openTracer({ probes: ['lifecycle', 'memory', 'runqlat', 'disk'] });
  // Processes that fault, switch and sleep, then stop (SIGSTOP) so that their counters hold still.
  for (let i = 0; i < 4; i++) {
    const c = python(`import os, signal, time\nb = bytearray(${(i + 1) * 8} << 20)\nfor _ in range(${20 * (i + 1)}): time.sleep(0.001)\nprint('done', flush=True)\nos.kill(os.getpid(), signal.SIGSTOP)\n`,
      { stdio: ['ignore', 'pipe', 'pipe'] });
    t.tracer.track(c.pid!, procStartTicks(c.pid!) * TICK_NS, 0);
    pids.push(c.pid!);
  }
  await waitFor(() => pids.every((p) => /^\d+ \(.*\) T/.test(fs.readFileSync(`/proc/${p}/stat`, 'utf8'))), 20000, 'the processes to stop');
  await sleep(50);
  t.tracer.sync();
}, 60000);

afterAll(async () => {
  t?.close();
  await stopAll();
});

test('many keys in one call: the same bytes as one lookup per key, zeros and found = 0 for missing keys', () => {
  const keys = Uint32Array.from([...pids, NO_SUCH_PID, pids[0]]);
  for (const [probe, map] of [['memory', 'faults'], ['memory', 'rss_last'], ['runqlat', 'runq_hist'], ['runqlat', 'cpu_stats'], ['disk', 'dstate_hist']]) {
    const r = t.tracer.mapLookupMany(probe, map, keys);
    expect(r.values.byteLength).toBe(keys.length * r.valueSize);
    keys.forEach((k, i) => {
      const one = t.tracer.mapLookup(probe, map, k);
      expect([map, i, r.found[i]]).toEqual([map, i, one ? 1 : 0]);
      const got = new Uint8Array(r.values, i * r.valueSize, r.valueSize);
      expect(Buffer.from(got).equals(one ? Buffer.from(one) : Buffer.alloc(r.valueSize))).toBe(true);
    });
  }
  // The processes did fault and switch: the comparison above was not of empty maps.
  const faults = t.tracer.mapLookupMany('memory', 'faults', Uint32Array.from(pids));
  expect([...faults.found]).toEqual(pids.map(() => 1));
});

test('per-CPU maps are summed across CPUs as mapLookup sums them', () => {
  const keys = Uint32Array.from({ length: 8 }, (_, i) => i);
  const r = t.tracer.mapLookupMany('runqlat', 'drops', keys);
  keys.forEach((k, i) => {
    expect(r.found[i]).toBe(1);
    expect(Buffer.from(new Uint8Array(r.values, i * r.valueSize, r.valueSize)).equals(Buffer.from(t.tracer.mapLookup('runqlat', 'drops', k)!))).toBe(true);
  });
});

test('bad arguments get a clear error with a stable code', () => {
  expect(() => t.tracer.mapLookupMany('memory', 'faults', [1, 2] as unknown as Uint32Array)).toThrow(expect.objectContaining({ code: 'PREMORTEM_ERR_ARG' }));
  expect(() => t.tracer.mapLookupMany('nope', 'faults', new Uint32Array(1))).toThrow(expect.objectContaining({ code: 'PREMORTEM_ERR_UNKNOWN_PROBE' }));
  expect(() => t.tracer.mapLookupMany('memory', 'nope', new Uint32Array(1))).toThrow(expect.objectContaining({ code: 'PREMORTEM_ERR_BPF_MAP' }));
  expect(t.tracer.mapLookupMany('memory', 'faults', new Uint32Array(0)).found.length).toBe(0);
});

test("the agent's batch read of all tracked processes equals its one-by-one read", () => {
  const loaded = new Set(t.tracer.probes().filter((p) => p.loaded).map((p) => p.name));
  const many = readCumulativeMany(t.tracer, [...pids, NO_SUCH_PID], loaded);
  pids.forEach((pid, i) => {
    const one = readCumulative(t.tracer, pid, loaded);
    expect(many[i]).toEqual(one);
    expect(many[i].faults!.faults).toBeGreaterThan(0);
    expect(many[i].stat!.state).toBe('T');
  });
  expect(many[pids.length]).toEqual({});
});
