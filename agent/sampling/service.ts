/**
 * One bucket per service per tick: socket states and the accept queue on its
 * ports, TCP trouble (retransmits, resets, listen drops), CPU throttling of
 * its cgroups, live workers and failures. Sockets are the service's own
 * network namespace's: the kernel's counters are keyed by (namespace, port),
 * and the socket table is read through one of its processes
 * (/proc/PID/net/tcp{,6}), once per namespace however many services share it.
 */
import type { AgentOptions } from '../config';
import type { Clock } from '../core/clock';
import type { ErrorCounter } from '../core/errors';
import type { LossLedger } from '../core/loss';
import { readCpuThrottling, throttlingDelta } from '../cgroup/cpu';
import { pressureOf } from '../cgroup/pressure';
import { createNetnsCache } from '../container/netns-cache';
import { ownNetns, TcpWatcher, UNTRACED_STATES } from '../probes/tcp';
import type { Registry } from '../registry/registry';
import type { ServiceState } from '../registry/state';
import { procNetTcpFiles, readTcpSockets } from './sockets';

/** How often /proc/net/tcp is read when the tcp probe counts transitions in the kernel. */
const PROC_NET_TCP_REFRESH_MS = 5000;

interface TcpTally {
  states: Record<string, number>;
  depth: number;
  max: number;
  retransmits: number;
  rstSent: number;
  rstRecv: number;
  drops: number;
}

export interface ServiceSampler {
  sample(s: ServiceState, tMs: number): void;
}

export function createServiceSampler(options: AgentOptions, clock: Clock, registry: Registry, tcp: TcpWatcher | undefined,
  loss: LossLedger, errors: ErrorCounter): ServiceSampler {
  /** Local ports of every service: the socket tables keep only sockets on these (a superset per namespace). */
  let watchedPorts = new Set<number>();
  let watchedPortsAt = -1;
  const tables = createNetnsCache((pid) => readTcpSockets(procNetTcpFiles(pid), watchedPorts));

  /**
   * The service's namespace's /proc/PID/net/tcp{,6}, read at most every PROC_NET_TCP_REFRESH_MS:
   * the kernel walks every socket of the namespace to write it (15,000 TIME_WAIT sockets under
   * connection churn made it most of the agent's CPU). The tcp probe's counters give the per-tick
   * numbers; this gives what they cannot see (TIME_WAIT, pending connections) and the accept
   * queue between SYNs.
   */
  const socketsOf = (s: ServiceState) => {
    const netns = s.service.netNs || ownNetns();
    const pids = [s.service.masterPid, ...registry.livePids(s.service.id)];
    if (netns === ownNetns()) pids.push(process.pid);
    return tables.get(netns, pids, tcp ? PROC_NET_TCP_REFRESH_MS : options.intervalMs / 2) ?? [];
  };

  /** States the kernel does not count (and all of them without the tcp probe), from /proc (cached). */
  const fromProc = (s: ServiceState, t: TcpTally) => {
    try {
      for (const sock of socketsOf(s)) {
        if (!s.service.ports.includes(sock.localPort)) continue;
        if (!tcp || UNTRACED_STATES.has(sock.state)) t.states[sock.state] = (t.states[sock.state] ?? 0) + 1;
        if (sock.state === 'LISTEN') t.depth += sock.rxQueue;
      }
    } catch (e) {
      errors.count('sockets', e);
    }
  };

  /** The tcp probe's counters of one port: current states, deltas of its cumulative trouble counters. */
  const fromKernel = (s: ServiceState, port: number, tMs: number, t: TcpTally) => {
    const netns = s.service.netNs || undefined;
    const st = tcp!.stats(port, 'local', netns);
    const kd = tcp!.listen(port, netns);
    for (const [name, n] of Object.entries(st.current))
      if (n > 0 && !UNTRACED_STATES.has(name)) t.states[name] = (t.states[name] ?? 0) + n;
    const prev = s.prevTcp?.get(port);
    t.retransmits += st.retransmits - (prev?.retransmits ?? st.retransmits);
    t.rstSent += st.rstSent - (prev?.rstSent ?? st.rstSent);
    t.rstRecv += st.rstRecv - (prev?.rstRecv ?? st.rstRecv);
    t.drops += st.listenOverflows - (prev?.listenOverflows ?? st.listenOverflows);
    (s.prevTcp ??= new Map()).set(port, { retransmits: st.retransmits, rstSent: st.rstSent, rstRecv: st.rstRecv, listenOverflows: st.listenOverflows });
    // /proc shows no accept-queue maximum; the kernel saw it at each new connection,
    // and the queue's depth then, which may exceed the /proc snapshot.
    t.max += kd.max;
    if (kd.updatedNs && clock.recMs(kd.updatedNs) >= tMs) t.depth = Math.max(t.depth, kd.depth);
  };

  /** Throttling of the service's CPU cgroups since the last tick. */
  const throttling = (s: ServiceState) => {
    let cpuThrottledUs = 0, nrThrottled = 0;
    for (const [dir, entry] of s.cpuCgroups) {
      const now = readCpuThrottling(entry.cg);
      if (!now) {
        s.cpuCgroups.delete(dir); // removed, or no bandwidth accounting: found again at discovery if it returns
        continue;
      }
      const dlt = throttlingDelta(now, entry.last);
      entry.last = now;
      cpuThrottledUs += dlt.throttledUs;
      nrThrottled += dlt.nrThrottled;
    }
    return { cpuThrottledUs, nrThrottled };
  };

  /** PSI of the service's own cgroup v2 (read through one of its live processes), kept on the service: bundles freeze it. */
  const pressure = (s: ServiceState) => {
    try {
      for (const pid of registry.livePids(s.service.id)) {
        const p = pressureOf(pid);
        if (p) return (s.service.pressure = p);
      }
    } catch (e) {
      errors.count('cgroup-pressure', e);
    }
    return undefined;
  };

  return {
    sample(s, tMs) {
      pressure(s);
      const t: TcpTally = { states: {}, depth: 0, max: 0, retransmits: 0, rstSent: 0, rstRecv: 0, drops: 0 };
      if (s.service.ports.length) {
        if (watchedPortsAt !== tMs) {
          watchedPorts = new Set([...registry.services.values()].flatMap((x) => x.service.ports));
          watchedPortsAt = tMs; // once per tick, not once per service
        }
        fromProc(s, t);
        for (const port of s.service.ports) {
          if (!tcp?.get(port, s.service.netNs || undefined)) continue;
          try {
            fromKernel(s, port, tMs, t);
          } catch (e) {
            errors.count('tcp-stats', e);
          }
        }
      }
      s.timeline.push(tMs, {
        socketStates: t.states, backlogDepth: t.depth, backlogMax: t.max, retransmits: t.retransmits, resetsSent: t.rstSent,
        resetsReceived: t.rstRecv, listenDrops: t.drops, workersAlive: registry.liveWorkers(s.service.id),
        deaths: s.deathTimes.filter((d) => d >= tMs && d < tMs + options.intervalMs).length, gap: loss.thisInterval > 0,
        ...throttling(s),
      });
    },
  };
}
