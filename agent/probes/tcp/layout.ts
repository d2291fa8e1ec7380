/**
 * tcp: TCP sockets of watched service ports (bpf/tcp.h). The kernel counts
 * transitions per port and state; records only for rare events (resets, a full
 * accept queue, CLOSE_WAIT lingering). Attribution is by the socket's local
 * port (the service's listener and its accepted children) or, for outbound
 * watches, its remote port, in the socket's own network namespace — never by
 * the task that happened to run. The watch table: ./watcher.ts.
 */
import { RecordHeader, RecordType, registerDecoder, registerLayout, u64 } from '../../records';

/** Watched (network namespace, port) pairs (PM_TCP_MAX_PORTS). */
export const TCP_MAX_PORTS = 128;
/** Counter slots (PM_TCP_MAX_SLOTS): a pair watched both ways takes two. */
export const TCP_MAX_SLOTS = 256;
export const TCP_STATES = 16;

export const TCP_EVENT = registerLayout('tcp_event', {
  size: 88,
  type: RecordType.Tcp,
  offsets: {
    subtype: 16, service_id: 20, lport: 24, rport: 26, family: 28, state: 30, ack_backlog: 32,
    max_ack_backlog: 36, reason: 40, remote: 44, duration_ns: 48, saddr: 56, daddr: 72,
  },
});

export const TCP_KEY = registerLayout('tcp_key', {
  size: 8,
  offsets: { netns: 0, port: 4 },
});

export const TCP_PORT = registerLayout('tcp_port', {
  size: 16,
  offsets: { service_id: 0, slot: 4, remote_slot: 8, flags: 12 },
});

export const TCP_STATS = registerLayout('tcp_stats', {
  size: 320,
  offsets: {
    current: 0, entered: 128, transitions: 256, retransmits: 264, rst_sent: 272, rst_recv: 280,
    backlog_full: 288, listen_overflows: 296, close_wait_lingering: 304, records_suppressed: 312,
  },
});

export const TCP_LISTEN = registerLayout('tcp_listen', {
  size: 88,
  offsets: { port: 0, depth: 4, max: 8, peak: 12, updated_ns: 16, last_rec_ns: 24 },
});

/** Linux TCP states (include/net/tcp_states.h), as /proc/net/tcp's `st` column. */
export const TCP_STATE_NAMES: Record<number, string> = {
  1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT',
  7: 'CLOSE', 8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING', 12: 'NEW_SYN_RECV',
  13: 'BOUND_INACTIVE',
};
export const TcpState = {
  Established: 1, SynSent: 2, SynRecv: 3, FinWait1: 4, FinWait2: 5, TimeWait: 6, Close: 7,
  CloseWait: 8, LastAck: 9, Listen: 10, Closing: 11, NewSynRecv: 12,
} as const;

export const TcpWatch = { Local: 1, Remote: 2 } as const;

/** pm_tcp_event.subtype */
export const TcpEvent = {
  RstSent: 1,
  RstRecv: 2,
  /** A new connection filled the accept queue to its maximum. */
  BacklogFull: 3,
  /** A SYN-ACK was retransmitted while the accept queue was over full: the client's ACK was dropped. */
  ListenOverflow: 4,
  /** A socket stayed in CLOSE_WAIT longer than targ_close_wait_ms (the server never closed it). */
  CloseWaitLinger: 5,
} as const;
export const TCP_EVENT_NAMES: Record<number, string> = {
  1: 'rst_sent', 2: 'rst_recv', 3: 'backlog_full', 4: 'listen_overflow', 5: 'close_wait_linger',
};

export interface TcpEventRecord extends RecordHeader {
  type: typeof RecordType.Tcp;
  subtype: number;
  serviceId: number;
  localPort: number;
  remotePort: number;
  family: number;
  /** Socket state at the event (CLOSE_WAIT for a socket still lingering). */
  state: number;
  ackBacklog: number;
  maxAckBacklog: number;
  /** enum sk_rst_reason, for sent resets. */
  reason: number;
  /** Matched by its remote port (an outbound socket). */
  remote: boolean;
  durationNs: number;
  localAddr: string;
  remoteAddr: string;
}

/** An address from 16 bytes: IPv4 in the first 4 bytes (family 2), IPv6 otherwise; '' when unknown. */
export function formatAddr(dv: DataView, off: number, family: number): string {
  if (family === 2) return [0, 1, 2, 3].map((i) => dv.getUint8(off + i)).join('.');
  if (family !== 10) return '';
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(dv.getUint16(off + 2 * i, false).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

const T = TCP_EVENT.offsets;
registerDecoder(RecordType.Tcp, TCP_EVENT.size, (dv, o, h) => {
  const r = h as TcpEventRecord;
  r.subtype = dv.getUint32(o + T.subtype, true);
  r.serviceId = dv.getUint32(o + T.service_id, true);
  r.localPort = dv.getUint16(o + T.lport, true);
  r.remotePort = dv.getUint16(o + T.rport, true);
  r.family = dv.getUint16(o + T.family, true);
  r.state = dv.getUint16(o + T.state, true);
  r.ackBacklog = dv.getUint32(o + T.ack_backlog, true);
  r.maxAckBacklog = dv.getUint32(o + T.max_ack_backlog, true);
  r.reason = dv.getUint32(o + T.reason, true);
  r.remote = dv.getUint32(o + T.remote, true) !== 0;
  r.durationNs = u64(dv, o + T.duration_ns);
  r.localAddr = formatAddr(dv, o + T.saddr, r.family);
  r.remoteAddr = formatAddr(dv, o + T.daddr, r.family);
  return r;
});

/**
 * States no full-socket transition enters or leaves: a closing socket becomes
 * a separate time-wait socket (the full socket goes FIN_WAIT2 -> CLOSE), and
 * request sockets (NEW_SYN_RECV) are not traced. Their counts come from
 * /proc/net/tcp (agent/sockets.ts countTcpSockets).
 */
export const UNTRACED_STATES = new Set(['TIME_WAIT', 'NEW_SYN_RECV', 'CLOSE']);

/** Counters of one watched port (one side), summed over CPUs. */
export interface TcpPortStats {
  /** Sockets now in each state, by state name, as counted from transitions since the watch began. */
  current: Record<string, number>;
  /** Transitions into each state, by state name. */
  entered: Record<string, number>;
  transitions: number;
  retransmits: number;
  rstSent: number;
  rstRecv: number;
  backlogFull: number;
  listenOverflows: number;
  closeWaitLingering: number;
  recordsSuppressed: number;
}

export function decodeTcpStats(buf: ArrayBuffer, offset = 0): TcpPortStats {
  const dv = new DataView(buf, offset, TCP_STATS.size);
  const o = TCP_STATS.offsets;
  const current: Record<string, number> = {};
  const entered: Record<string, number> = {};
  for (let s = 1; s < TCP_STATES; s++) {
    const name = TCP_STATE_NAMES[s];
    if (!name) continue;
    // Per-CPU signed counters summed as u64: the wrapped sum is the signed total.
    current[name] = Number(dv.getBigInt64(o.current + 8 * s, true));
    entered[name] = u64(dv, o.entered + 8 * s);
  }
  return {
    current,
    entered,
    transitions: u64(dv, o.transitions),
    retransmits: u64(dv, o.retransmits),
    rstSent: u64(dv, o.rst_sent),
    rstRecv: u64(dv, o.rst_recv),
    backlogFull: u64(dv, o.backlog_full),
    listenOverflows: u64(dv, o.listen_overflows),
    closeWaitLingering: u64(dv, o.close_wait_lingering),
    recordsSuppressed: u64(dv, o.records_suppressed),
  };
}

/** The accept queue of a watched listening port as last seen by the kernel. */
export interface TcpListenState {
  port: number;
  /** Depth after the last new connection (or SYN-ACK retransmit); accepts in between are not seen. */
  depth: number;
  max: number;
  /** Deepest seen since the watch began. */
  peak: number;
  /** CLOCK_BOOTTIME ns of the last update, 0 if never. */
  updatedNs: number;
}

export function decodeTcpListen(buf: ArrayBuffer, offset = 0): TcpListenState {
  const dv = new DataView(buf, offset, TCP_LISTEN.size);
  const o = TCP_LISTEN.offsets;
  return {
    port: dv.getUint32(o.port, true),
    depth: dv.getUint32(o.depth, true),
    max: dv.getUint32(o.max, true),
    peak: dv.getUint32(o.peak, true),
    updatedNs: u64(dv, o.updated_ns),
  };
}

