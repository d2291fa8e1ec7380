/** runqlat: runqueue latency records, per-process CPU counters and where the time went (bpf/runqlat.h). */
import { COMM_LEN, RecordHeader, RecordType, cstr, registerDecoder, registerLayout, u64 } from '../../records';
import { decodeTimeAcct, TimeAcct } from './time';

export * from './time';

export const RUNQ_SLOW = registerLayout('runq_slow', {
  size: 80,
  type: RecordType.RunqSlow,
  offsets: {
    pid: 16, tid: 20, wait_ns: 24, culprit_pid: 32, culprit_tid: 36, preempted: 40,
    comm: 48, culprit_comm: 64,
  },
});

export const CPU_STATS = registerLayout('cpu_stats', {
  size: 120,
  offsets: { involuntary_switches: 0, voluntary_switches: 8, slow_waits: 16, wakeups: 24, time: 32, dstate_syscall: 112 },
});

/** A wait above the load-time threshold, with the task that held the CPU. */
export interface RunqSlowRecord extends RecordHeader {
  type: typeof RecordType.RunqSlow;
  pid: number;
  tid: number;
  waitNs: number;
  culpritPid: number;
  culpritTid: number;
  /** The wait began with a preemption (true) or a wakeup (false). */
  preempted: boolean;
  comm: string;
  culpritComm: string;
}

const R = RUNQ_SLOW.offsets;
registerDecoder(RecordType.RunqSlow, RUNQ_SLOW.size, (dv, o, h) => {
  const r = h as RunqSlowRecord;
  r.pid = dv.getUint32(o + R.pid, true);
  r.tid = dv.getUint32(o + R.tid, true);
  r.waitNs = u64(dv, o + R.wait_ns);
  r.culpritPid = dv.getUint32(o + R.culprit_pid, true);
  r.culpritTid = dv.getUint32(o + R.culprit_tid, true);
  r.preempted = dv.getUint32(o + R.preempted, true) !== 0;
  r.comm = cstr(dv, o + R.comm, COMM_LEN);
  r.culpritComm = cstr(dv, o + R.culprit_comm, COMM_LEN);
  return r;
});

/** Cumulative per-process counters from the runqlat probe's `cpu_stats` map. */
export interface CpuStats {
  involuntarySwitches: number;
  voluntarySwitches: number;
  slowWaits: number;
  wakeups: number;
  /** Cumulative ns per time class (index: TimeClass). */
  time: TimeAcct;
  /** 1 + number of the system call of the latest D sleep in one (0: none yet). */
  dstateSyscall: number;
}

export function decodeCpuStats(buf: ArrayBuffer, offset = 0): CpuStats {
  const dv = new DataView(buf, offset, CPU_STATS.size);
  const o = CPU_STATS.offsets;
  return {
    involuntarySwitches: u64(dv, o.involuntary_switches),
    voluntarySwitches: u64(dv, o.voluntary_switches),
    slowWaits: u64(dv, o.slow_waits),
    wakeups: u64(dv, o.wakeups),
    time: decodeTimeAcct(dv, o.time),
    dstateSyscall: u64(dv, o.dstate_syscall),
  };
}
