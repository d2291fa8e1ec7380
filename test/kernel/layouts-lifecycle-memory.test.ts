/**
 * The lifecycle and memory structs: the decoder's LAYOUT against the sizes and
 * offsets the C compiler reports through the addon, and each decoder against
 * hand-built bytes with known values.
 */
import { loadAddon } from '../../agent/native';
import { LAYOUT, RecordType, decodeBatch } from '../../agent/records';
import '../../agent/probes';
import {
  decodeLifecycleStats, ExitRecord, ForkRecord, OomRecord, SignalRecord, ExecRecord,
} from '../../agent/probes/lifecycle';
import { decodeFaultStats, decodeRssLast } from '../../agent/probes/memory';

const STRUCTS = ['fork', 'exec', 'exit', 'signal', 'oom', 'lifecycle_stats', 'fault_stats', 'rss_last'];

describe('lifecycle and memory layouts', () => {
  const native = loadAddon().layout();
  test.each(STRUCTS)('%s: same size, type and offsets as the C header', (name) => {
    const c = native.structs[name];
    expect(c).toBeDefined();
    expect(LAYOUT[name]).toEqual({ size: c.size, ...(c.type ? { type: c.type } : {}), offsets: c.offsets });
  });

  test('record type numbers are the fixed ones', () => {
    expect([native.structs.fork.type, native.structs.exec.type, native.structs.exit.type,
      native.structs.signal.type, native.structs.oom.type]).toEqual([2, 3, 4, 5, 6]);
  });
});

function rec(name: string, fill: (dv: DataView, o: Record<string, number>, u8: Uint8Array) => void): ArrayBuffer {
  const spec = LAYOUT[name];
  const buf = new ArrayBuffer(spec.size);
  const dv = new DataView(buf);
  dv.setUint16(0, spec.type!, true);
  dv.setUint16(2, spec.size, true);
  dv.setUint32(4, 1, true);
  dv.setBigUint64(8, 5_000_000_123n, true);
  fill(dv, spec.offsets, new Uint8Array(buf));
  return buf;
}

const str = (u8: Uint8Array, off: number, s: string) => u8.set(Buffer.from(s), off);
const decodeOne = <T>(buf: ArrayBuffer): T => {
  const out: unknown[] = [];
  decodeBatch(buf, (r) => out.push(r));
  expect(out).toHaveLength(1);
  return out[0] as T;
};

describe('decoders', () => {
  test('fork', () => {
    const r = decodeOne<ForkRecord>(rec('fork', (dv, o, u8) => {
      dv.setUint32(o.parent_pid, 100, true); dv.setUint32(o.parent_tid, 101, true);
      dv.setUint32(o.child_pid, 200, true); dv.setUint32(o.child_tid, 201, true);
      dv.setBigUint64(o.parent_start_ns, 1_234_567_890_123n, true);
      dv.setBigUint64(o.child_start_ns, 1_234_567_999_999n, true);
      dv.setUint32(o.is_thread, 1, true); dv.setUint32(o.tracked, 2, true);
      str(u8, o.parent_comm, 'gunicorn'); str(u8, o.child_comm, '0123456789abcde');
    }));
    expect(r).toEqual({
      type: RecordType.Fork, size: 88, cpu: 1, tsNs: 5_000_000_123, parentPid: 100, parentTid: 101,
      childPid: 200, childTid: 201, parentStartNs: 1_234_567_890_123, childStartNs: 1_234_567_999_999,
      isThread: true, tracked: 2, parentComm: 'gunicorn', childComm: '0123456789abcde',
    });
  });

  test('exec', () => {
    const long = '/usr/lib/' + 'x'.repeat(300);
    const r = decodeOne<ExecRecord>(rec('exec', (dv, o, u8) => {
      dv.setUint32(o.pid, 7, true); dv.setUint32(o.tid, 7, true); dv.setUint32(o.old_tid, 9, true); dv.setUint32(o.flags, 1, true);
      dv.setBigUint64(o.start_ns, 42n, true);
      str(u8, o.comm, 'sh');
      str(u8, o.filename, long.slice(0, 255)); // the kernel side NUL-terminates within 256
    }));
    expect(r).toMatchObject({ pid: 7, tid: 7, oldTid: 9, flags: 1, startNs: 42, comm: 'sh', filename: long.slice(0, 255) });
  });

  test('exit: wait status decoded', () => {
    const r = decodeOne<ExitRecord>(rec('exit', (dv, o, u8) => {
      dv.setUint32(o.pid, 5, true); dv.setUint32(o.tid, 6, true); dv.setUint32(o.ppid, 1, true);
      dv.setUint32(o.exit_code, 0x80 | 6, true);
      dv.setBigUint64(o.start_ns, 99n, true);
      dv.setUint32(o.group_dead, 1, true); dv.setUint32(o.mm_present, 1, true);
      [o.rss_file, o.rss_anon, o.rss_swap, o.rss_shmem, o.rss_peak, o.min_flt, o.maj_flt, o.proc_min_flt, o.proc_maj_flt]
        .forEach((off, i) => dv.setBigUint64(off, BigInt(1000 + i) * 4096n, true));
      str(u8, o.comm, 'python3.11');
    }));
    expect(r).toMatchObject({
      pid: 5, tid: 6, ppid: 1, exitCode: 0x86, exitStatus: 0, termSignal: 6, coreDumped: true, startNs: 99,
      groupDead: true, mmPresent: true, rssFileBytes: 1000 * 4096, rssAnonBytes: 1001 * 4096,
      rssSwapBytes: 1002 * 4096, rssShmemBytes: 1003 * 4096, rssPeakBytes: 1004 * 4096, minFlt: 1005 * 4096,
      majFlt: 1006 * 4096, procMinFlt: 1007 * 4096, procMajFlt: 1008 * 4096, comm: 'python3.11',
    });
  });

  test('signal: negative si_code', () => {
    const r = decodeOne<SignalRecord>(rec('signal', (dv, o, u8) => {
      dv.setUint32(o.pid, 10, true); dv.setUint32(o.tid, 11, true);
      dv.setUint32(o.sender_pid, 20, true); dv.setUint32(o.sender_tid, 21, true);
      dv.setBigUint64(o.start_ns, 77n, true);
      dv.setInt32(o.sig, 15, true); dv.setInt32(o.si_code, -6, true); dv.setInt32(o.result, 2, true);
      dv.setUint32(o.group, 0, true); dv.setUint32(o.kernel, 0, true); dv.setUint32(o.si_pid, 20, true);
      str(u8, o.comm, 'worker'); str(u8, o.sender_comm, 'supervisor');
    }));
    expect(r).toMatchObject({
      pid: 10, tid: 11, senderPid: 20, senderTid: 21, startNs: 77, sig: 15, siCode: -6, result: 2,
      group: false, kernel: false, siPid: 20, comm: 'worker', senderComm: 'supervisor',
    });
  });

  test('oom', () => {
    const r = decodeOne<OomRecord>(rec('oom', (dv, o, u8) => {
      dv.setUint32(o.pid, 3, true); dv.setUint32(o.tid, 4, true); dv.setBigUint64(o.start_ns, 8n, true);
      dv.setUint32(o.uid, 1000, true); dv.setInt32(o.oom_score_adj, -500, true);
      dv.setUint32(o.trigger_pid, 9, true); dv.setUint32(o.tracked, 1, true);
      dv.setBigUint64(o.rss_anon, 100663296n, true); dv.setBigUint64(o.total_vm, 2n ** 40n, true);
      dv.setUint32(o.kind, 2, true); dv.setUint32(o.oom_level, 0xffffffff, true);
      dv.setBigUint64(o.cgroup_id, 4193n, true); dv.setBigUint64(o.memcg_limit, 100663296n, true);
      dv.setBigUint64(o.oom_cgroup_id, 17n, true); dv.setBigUint64(o.oom_limit, 2n ** 33n, true);
      dv.setUint32(o.memcg_id, 7, true); dv.setUint32(o.memcg_oom_events, 2, true); dv.setUint32(o.memcg_oom_kills, 1, true);
      str(u8, o.comm, 'victim'); str(u8, o.trigger_comm, 'hog');
    }));
    expect(r).toMatchObject({
      pid: 3, tid: 4, startNs: 8, uid: 1000, oomScoreAdj: -500, triggerPid: 9, tracked: true,
      rssAnonBytes: 100663296, rssFileBytes: 0, totalVmBytes: 2 ** 40, kind: 2, oomLevel: 0xffffffff,
      cgroupId: 4193, memcgLimitBytes: 100663296, oomCgroupId: 17, oomLimitBytes: 2 ** 33, memcgId: 7,
      memcgOomEvents: 2, memcgOomKills: 1, comm: 'victim', triggerComm: 'hog',
    });
  });

  test('map values', () => {
    const s = new ArrayBuffer(LAYOUT.lifecycle_stats.size);
    new BigUint64Array(s).set([1n, 2n, 3n, 4n]);
    expect(decodeLifecycleStats(s)).toEqual({ forksTracked: 1, trackFull: 2, untrackedExits: 3, staleIgnored: 4 });
    const f = new ArrayBuffer(LAYOUT.fault_stats.size);
    new BigUint64Array(f).set([11n, 500n, 20n, 30n, 40n]);
    expect(decodeFaultStats(f)).toEqual({ startNs: 11, faults: 500, major: 20, minor: 480, kernelMode: 30, lastNs: 40 });
    const r = new ArrayBuffer(LAYOUT.rss_last.size);
    new BigUint64Array(r).set([1n, 2n, 4096n, 8192n, 0n, 12288n, 30000n, 9n]);
    expect(decodeRssLast(r)).toEqual({
      startNs: 1, tsNs: 2, fileBytes: 4096, anonBytes: 8192, swapBytes: 0, shmemBytes: 12288,
      rssBytes: 4096 + 8192 + 12288, peakBytes: 30000, writes: 9,
    });
  });
});
