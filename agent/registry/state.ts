/** What the agent keeps per tracked process and per service. */
import type { CpuCgroup, CpuThrottling } from '../cgroup/cpu';
import type { MemoryCgroup } from '../cgroup/memory';
import type { OomFacts, SignalFacts } from '../deaths/verdict';
import type { ExitRecord } from '../probes/lifecycle';
import type { RunqSlowRecord } from '../probes/runqlat';
import type { Identity, Service, Verdict } from '../../proto/codec';
import type { Cumulative } from '../sampling/cumulative';
import type { MarkerRing, ServiceTimeline, WorkerTimeline } from '../timeline';

export interface WorkerState {
  /** "pid:startTicks": a reused pid is another process. */
  key: string;
  identity: Identity;
  alive: boolean;
  diedMs: number;
  /** The memory cgroup as last read: the victim's /proc is gone by the time an OOM record is read. */
  memoryCgroup?: MemoryCgroup;
  /** The memory cgroup an OOM kill was decided in (the victim's own or an ancestor at its limit). */
  oomCgroup?: MemoryCgroup;
  timeline: WorkerTimeline;
  markers: MarkerRing;
  /** The kernel's cumulative counters at the last tick: the next bucket is the difference. */
  prev?: Cumulative;
  /** Signals received, newest last (bounded). */
  signals: SignalFacts[];
  oom?: OomFacts;
  exit?: ExitRecord;
  verdict?: Verdict;
  /** Index in the service's slots (workers only; -1 otherwise). */
  slot: number;
  /** Dead and waiting for its verdict: no more ticks. */
  judging: boolean;
  /** Waits for a CPU over the slow threshold since the last tick: the worst becomes one marker. */
  slowWaits: { count: number; worst?: RunqSlowRecord };
}

export interface ServiceState {
  service: Service;
  timeline: ServiceTimeline;
  markers: MarkerRing;
  masterKey: string;
  /** One per worker position: a replacement takes the slot of the worker it replaces, one generation up. */
  slots: Array<{ generation: number; key: string | null }>;
  /** Failures of this instance, newest last (bounded): the service buckets count them per interval. */
  deathTimes: number[];
  /** What stays the same when a supervisor restarts the service: restart storms are counted per lineage. */
  lineage: string;
  /** The service's id in the tcp probe's port table. */
  tcpId: number;
  lastSeenMs: number;
  /** The CPU cgroups its processes live in (usually one), with their last cpu.stat reading. */
  cpuCgroups: Map<string, { cg: CpuCgroup; last?: CpuThrottling }>;
  /** The tcp probe's cumulative counters per port at the last tick. */
  prevTcp?: Map<number, { retransmits: number; rstSent: number; rstRecv: number; listenOverflows: number }>;
}
