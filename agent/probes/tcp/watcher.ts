/**
 * The tcp probe's watch table: which (network namespace, port) pairs the
 * kernel counts, and for which service. Two containers both listening on
 * :8000 are two entries with their own counter slots, so nothing merges.
 *
 * A namespace is named by its inode (/proc/PID/ns/net, what the kernel's
 * sock_net(sk)->ns.inum holds); without one, a watch is in the agent's own
 * namespace. Sockets that already exist when a watch begins are read from
 * the socket table of that namespace, through a process inside it
 * (/proc/PID/net/tcp{,6}).
 */
import * as fs from 'fs';
import type { Tracer } from '../../native';
import { countTcpSockets, procNetTcpFiles, readTcpSockets } from '../../sampling/sockets';
import {
  decodeTcpListen, decodeTcpStats, TCP_KEY, TCP_LISTEN, TCP_MAX_PORTS, TCP_MAX_SLOTS, TCP_PORT, TcpListenState, TcpPortStats,
  TcpWatch, UNTRACED_STATES,
} from './layout';

let own: number | undefined;
/** Inode of the agent's own network namespace (read once). */
export function ownNetns(): number {
  return (own ??= fs.statSync('/proc/self/ns/net').ino);
}

/** The key of the kernel's `ports` map (struct pm_tcp_key). */
export function tcpKey(netns: number, port: number): ArrayBuffer {
  const b = new ArrayBuffer(TCP_KEY.size);
  const dv = new DataView(b);
  dv.setUint32(TCP_KEY.offsets.netns, netns >>> 0, true);
  dv.setUint32(TCP_KEY.offsets.port, port, true);
  return b;
}

export interface TcpWatchOptions {
  port: number;
  /** The agent's id for the service (echoed in records). */
  serviceId: number;
  /** Inode of the network namespace the port is in (default: the agent's own). */
  netns?: number;
  /** A process inside that namespace: its /proc/PID/net/tcp{,6} lists the sockets already there (default: the agent). */
  pid?: number;
  /** Watch sockets whose local port this is (default true): a service's listener and its connections. */
  local?: boolean;
  /** Watch sockets connecting to this port (an upstream the workers call). */
  remote?: boolean;
}

export interface TcpPortWatch {
  port: number;
  netns: number;
  serviceId: number;
  /** Counter slot of the local side, or -1. */
  slot: number;
  /** Counter slot of the remote side, or -1. */
  remoteSlot: number;
}

/**
 * Tells the tcp probe which (namespace, port) pairs to watch, assigning
 * counter slots. Each slot's counters are read relative to a baseline taken
 * when it was assigned (per-CPU values cannot be zeroed from here), and
 * `current` starts from the sockets the namespace's /proc/PID/net/tcp{,6}
 * shows at that moment (sockets that already existed are then counted out
 * correctly when they leave a state).
 */
export class TcpWatcher {
  private readonly watches = new Map<string, TcpPortWatch>();
  private readonly freeSlots: number[] = [];
  private readonly baselines = new Map<number, TcpPortStats>();

  constructor(private readonly tracer: Tracer) {
    for (let s = TCP_MAX_SLOTS - 1; s >= 0; s--) this.freeSlots.push(s);
  }

  watch(opts: TcpWatchOptions): TcpPortWatch {
    const { port, serviceId } = opts;
    const netns = opts.netns ?? ownNetns();
    const local = opts.local ?? true;
    const remote = opts.remote ?? false;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`port must be 1..65535, got ${port}`);
    if (!Number.isInteger(netns) || netns < 1 || netns > 0xffffffff) throw new TypeError(`netns must be a namespace inode, got ${netns}`);
    if (!local && !remote) throw new TypeError('watch a port locally, remotely or both');
    this.unwatch(port, netns);
    if (this.watches.size >= TCP_MAX_PORTS) throw new RangeError(`at most ${TCP_MAX_PORTS} watched TCP ports (namespace and port pairs)`);
    const w: TcpPortWatch = { port, netns, serviceId, slot: -1, remoteSlot: -1 };
    if (local) w.slot = this.takeSlot();
    if (remote) w.remoteSlot = this.takeSlot();
    const v = new ArrayBuffer(TCP_PORT.size);
    const dv = new DataView(v);
    dv.setUint32(TCP_PORT.offsets.service_id, serviceId >>> 0, true);
    dv.setUint32(TCP_PORT.offsets.slot, w.slot < 0 ? TCP_MAX_SLOTS : w.slot, true);
    dv.setUint32(TCP_PORT.offsets.remote_slot, w.remoteSlot < 0 ? TCP_MAX_SLOTS : w.remoteSlot, true);
    dv.setUint32(TCP_PORT.offsets.flags, (local ? TcpWatch.Local : 0) | (remote ? TcpWatch.Remote : 0), true);
    this.tracer.mapUpdate('tcp', 'ports', tcpKey(netns, port), v);
    // Sockets already there: subtract them from the baseline so `current` includes them.
    const existing = countTcpSockets([port], readTcpSockets(procNetTcpFiles(opts.pid), new Set([port]))).get(port);
    if (existing) {
      if (w.slot >= 0) this.seed(w.slot, existing.local);
      if (w.remoteSlot >= 0) this.seed(w.remoteSlot, existing.remote);
    }
    this.watches.set(keyOf(netns, port), w);
    return w;
  }

  unwatch(port: number, netns = ownNetns()): boolean {
    const w = this.watches.get(keyOf(netns, port));
    if (!w) return false;
    this.tracer.mapDelete('tcp', 'ports', tcpKey(netns, port));
    if (w.slot >= 0) this.freeSlots.push(w.slot);
    if (w.remoteSlot >= 0) this.freeSlots.push(w.remoteSlot);
    this.watches.delete(keyOf(netns, port));
    return true;
  }

  get(port: number, netns = ownNetns()): TcpPortWatch | undefined {
    return this.watches.get(keyOf(netns, port));
  }

  /** Every watch, in the order they began. */
  all(): TcpPortWatch[] {
    return [...this.watches.values()];
  }

  /** Counters of a watched port's local side (or remote side) since the watch began, summed over CPUs. */
  stats(port: number, side: 'local' | 'remote' = 'local', netns = ownNetns()): TcpPortStats {
    const w = this.mustGet(port, netns);
    const slot = side === 'local' ? w.slot : w.remoteSlot;
    if (slot < 0) throw new TypeError(`port ${port} is not watched on its ${side} side`);
    const now = this.readSlot(slot);
    const base = this.baselines.get(slot);
    return base ? subtractStats(now, base) : now;
  }

  /** The listener's accept queue as last seen by the kernel. */
  listen(port: number, netns = ownNetns()): TcpListenState {
    const w = this.mustGet(port, netns);
    if (w.slot < 0) throw new TypeError(`port ${port} is not watched on its local side`);
    const v = this.tracer.mapLookup('tcp', 'tcp_listen', w.slot);
    if (!v) throw new Error(`tcp_listen slot ${w.slot} missing`);
    return decodeTcpListen(v);
  }

  private readSlot(slot: number): TcpPortStats {
    const v = this.tracer.mapLookup('tcp', 'tcp_stats', slot);
    if (!v) throw new Error(`tcp_stats slot ${slot} missing`);
    return decodeTcpStats(v);
  }

  private seed(slot: number, byState: Record<string, number>): void {
    const base = this.baselines.get(slot);
    if (!base) return;
    for (const [name, n] of Object.entries(byState))
      if (!UNTRACED_STATES.has(name)) base.current[name] = (base.current[name] ?? 0) - n;
  }

  private mustGet(port: number, netns: number): TcpPortWatch {
    const w = this.watches.get(keyOf(netns, port));
    if (!w) throw new TypeError(`port ${port} is not watched in network namespace ${netns}`);
    return w;
  }

  private takeSlot(): number {
    const slot = this.freeSlots.pop();
    if (slot === undefined) throw new RangeError(`all ${TCP_MAX_SLOTS} TCP counter slots are in use`);
    this.baselines.set(slot, this.readSlot(slot));
    this.tracer.mapUpdate('tcp', 'tcp_listen', slot, new ArrayBuffer(TCP_LISTEN.size));
    return slot;
  }
}

const keyOf = (netns: number, port: number) => `${netns}:${port}`;

function subtractStats(a: TcpPortStats, b: TcpPortStats): TcpPortStats {
  const out = { ...a, current: { ...a.current }, entered: { ...a.entered } } as TcpPortStats;
  for (const k of Object.keys(a.current)) out.current[k] = a.current[k] - (b.current[k] ?? 0);
  for (const k of Object.keys(a.entered)) out.entered[k] = a.entered[k] - (b.entered[k] ?? 0);
  for (const k of ['transitions', 'retransmits', 'rstSent', 'rstRecv', 'backlogFull', 'listenOverflows',
    'closeWaitLingering', 'recordsSuppressed'] as const)
    out[k] = a[k] - b[k];
  return out;
}
