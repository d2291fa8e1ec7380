/**
 * Who is watched: a worker's identity, its service, the container it runs in,
 * the pressure on its cgroup. These mirror proto/premortem.proto (see index.ts).
 */
import type { Verdict } from './verdict';

export type Role = 'unknown' | 'master' | 'worker' | 'standalone';
export type ServiceKind =
  | 'unknown' | 'gunicorn' | 'uvicorn' | 'uwsgi' | 'hypercorn' | 'daphne' | 'celery' | 'python';
export type WorkerState = 'unknown' | 'alive' | 'dead';
export interface Identity {
  pid: number; startTicks: number; comm: string; cmdline: string; serviceId: string;
  generation: number; role: Role; ppid: number; startedMs: number; slot: number;
  /** The pid inside its own PID namespace (NSpid); = pid on the host's, 0 or absent when not read. */
  nsPid?: number;
}
export interface Service {
  id: string; name: string; kind: ServiceKind; masterPid: number; masterStartTicks: number;
  ports: number[]; cgroup: string; unit: string;
  /** The container or pod it runs in; absent on the host. */
  container?: ContainerInfo;
  /** Inode of its network namespace (0 or absent: not known) and whether it is not the agent's. */
  netNs?: number; ownNetNs?: boolean;
  /** Inode of its master's PID namespace and whether it is not the agent's. */
  pidNs?: number; ownPidNs?: boolean;
  /** PSI of its own cgroup v2, as last read. */
  pressure?: CgroupPressure;
}
/** Where a service runs: container runtime and id, Kubernetes pod; '' = not known. */
export interface ContainerInfo {
  runtime: string; id: string; name: string; podUid: string; podName: string; podNamespace: string;
  containerName: string; cgroupDriver: string; source: string;
}
/** Pressure stall information of one cgroup v2 (avg10 in percent, totals in µs). */
export interface CgroupPressure {
  path: string; tMs: number; cpuSomeAvg10: number; memorySomeAvg10: number; memoryFullAvg10: number;
  ioSomeAvg10: number; ioFullAvg10: number; cpuSomeTotalUs: number; memorySomeTotalUs: number;
  memoryFullTotalUs: number; ioSomeTotalUs: number; ioFullTotalUs: number;
}
export interface Worker { identity?: Identity; state: WorkerState; lastVerdict?: Verdict; diedMs: number }
