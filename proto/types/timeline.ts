/**
 * What a timeline holds: one bucket per worker, service and host per interval,
 * and the markers raised on the way. These mirror proto/premortem.proto (see index.ts).
 */
import type { Identity } from './identity';

export type Severity = 'info' | 'warning' | 'critical';
export interface Bucket {
  tMs: number; intervalMs: number;
  runqP50Us: number; runqP99Us: number; runqMaxUs: number; runqCount: number; runqHist: number[];
  involuntarySwitches: number; voluntarySwitches: number; cpuMs: number;
  minorFaults: number; majorFaults: number; rssBytes: number; rssSlopeBytesPerS: number;
  cgroupUsageBytes: number; cgroupLimitBytes: number; dstateNs: number; dstateMaxNs: number;
  bioReadBytes: number; bioWriteBytes: number; bioOps: number;
  gcPauses: number; gcPauseNs: number; gcMaxPauseNs: number; threads: number; gap: boolean;
  signalsReceived: number; bioLatP99Us: number; bioLatMaxUs: number;
  /**
   * Where the time went (thread time, ns; proto Bucket fields 30..39). Decode always fills them;
   * optional so that code building buckets by hand need not name them.
   */
  onCpuNs?: number; runqWaitNs?: number; throttledNs?: number; blockedIoNs?: number; faultWaitNs?: number;
  sleepNetNs?: number; sleepLockNs?: number; sleepTimerNs?: number; sleepOtherNs?: number; blockedSyscall?: number;
}
export interface ServiceBucket {
  serviceId: string; tMs: number; socketStates: Record<string, number>;
  backlogDepth: number; backlogMax: number; retransmits: number; resetsSent: number;
  resetsReceived: number; listenDrops: number; cpuThrottledUs: number; nrThrottled: number;
  workersAlive: number; deaths: number; gap: boolean;
}
export interface HostBucket {
  tMs: number; psiMemSomeAvg10: number; psiMemFullAvg10: number; psiCpuSomeAvg10: number;
  psiIoSomeAvg10: number; load1: number; memTotalBytes: number; memAvailableBytes: number;
  psiIoFullAvg10: number; devices: DeviceBucket[];
}
export interface DeviceBucket {
  device: string; ops: number; readBytes: number; writeBytes: number; latP50Us: number; latP99Us: number;
  latMaxUs: number; slow: number; errors: number;
}
export interface Marker {
  tMs: number; kind: string; pid: number; startTicks: number; serviceId: string;
  severity: Severity; message: string; numbers: Record<string, number>; details: Record<string, string>;
}
export interface WorkerTimeline { identity?: Identity; buckets: Bucket[] }
