/**
 * TCP sockets from /proc/net/tcp and /proc/net/tcp6: the user-space fallback
 * and cross-check of the tcp probe. For a LISTEN socket, rx_queue is the
 * accept queue's depth (sk_ack_backlog); its maximum (sk_max_ack_backlog) is
 * not in /proc (tx_queue is 0 there) but in inet_diag, which `ss -ltn` shows
 * as Send-Q: listenBacklogSs() asks ss. Reads the agent's network namespace, or with a
 * pid (procNetTcpFiles), that process's: /proc/PID/net/tcp shows the namespace of PID, which
 * is how a container's or pod's sockets are read from the host.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';

export const TCP_STATE_BY_CODE: Record<number, string> = {
  1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT',
  7: 'CLOSE', 8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING', 12: 'NEW_SYN_RECV',
  13: 'BOUND_INACTIVE',
};

export interface TcpSocketEntry {
  family: 4 | 6;
  localAddr: string;
  localPort: number;
  remoteAddr: string;
  remotePort: number;
  state: string;
  /** Bytes not yet acknowledged (0 for LISTEN: /proc does not show the accept queue maximum). */
  txQueue: number;
  /** LISTEN: accept queue depth; otherwise bytes not yet read. */
  rxQueue: number;
  uid: number;
  /** 0 for sockets without a file (time-wait, request and orphaned sockets). */
  inode: number;
}

/** Files read, in order; missing ones (no IPv6) are skipped. */
export const PROC_NET_TCP = ['/proc/net/tcp', '/proc/net/tcp6'];

/** The socket tables of the network namespace `pid` lives in (the agent's own without a pid). */
export function procNetTcpFiles(pid?: number): string[] {
  return pid === undefined ? PROC_NET_TCP : [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`];
}

function addr4(hex: string): string {
  // The __be32 printed as a host-order (little-endian) u32.
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
}

function addr6(hex: string): string {
  const bytes: number[] = [];
  for (let w = 0; w < 4; w++) {
    const n = parseInt(hex.slice(w * 8, w * 8 + 8), 16);
    bytes.push(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
  }
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff)
    return `::ffff:${bytes.slice(12).join('.')}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** Parses one /proc/net/tcp{,6} text; with `localPorts`, only sockets on those local ports. */
export function parseProcNetTcp(text: string, family: 4 | 6, localPorts?: Set<number>): TcpSocketEntry[] {
  const out: TcpSocketEntry[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    if (localPorts) {
      // "  sl: ADDR:PORT ...": the local port follows the line's second colon. Checking it
      // first skips the full parse of the (many) other sockets.
      const line = lines[i];
      const c = line.indexOf(':', line.indexOf(':') + 1);
      if (c < 0 || !localPorts.has(parseInt(line.substr(c + 1, 4), 16))) continue;
    }
    const f = lines[i].trim().split(/\s+/);
    if (f.length < 10) continue;
    const [la, lp] = f[1].split(':');
    const [ra, rp] = f[2].split(':');
    const [tx, rx] = f[4].split(':');
    const st = parseInt(f[3], 16);
    out.push({
      family,
      localAddr: family === 4 ? addr4(la) : addr6(la),
      localPort: parseInt(lp, 16),
      remoteAddr: family === 4 ? addr4(ra) : addr6(ra),
      remotePort: parseInt(rp, 16),
      state: TCP_STATE_BY_CODE[st] ?? `STATE_${st}`,
      txQueue: parseInt(tx, 16),
      rxQueue: parseInt(rx, 16),
      uid: Number(f[7]),
      inode: Number(f[9]),
    });
  }
  return out;
}

/** Every TCP socket of one network namespace (IPv4 and IPv6): the agent's own by default. */
export function readTcpSockets(files = PROC_NET_TCP, localPorts?: Set<number>): TcpSocketEntry[] {
  const out: TcpSocketEntry[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const e of parseProcNetTcp(text, file.endsWith('6') ? 6 : 4, localPorts)) out.push(e);
  }
  return out;
}

export interface TcpPortCounts {
  /** Sockets whose local port is the port (listener and accepted connections), by state. */
  local: Record<string, number>;
  /** Sockets connected to the port from another local port, by state. */
  remote: Record<string, number>;
  /** LISTEN sockets on the port: accept queue depth summed (SO_REUSEPORT groups), or null. */
  listen: { depth: number; sockets: number } | null;
}

/** Socket counts by state for each of `ports`, with the listen backlog. */
export function countTcpSockets(ports: number[], sockets = readTcpSockets()): Map<number, TcpPortCounts> {
  const out = new Map<number, TcpPortCounts>();
  for (const p of ports) out.set(p, { local: {}, remote: {}, listen: null });
  for (const s of sockets) {
    const l = out.get(s.localPort);
    if (l) {
      l.local[s.state] = (l.local[s.state] ?? 0) + 1;
      if (s.state === 'LISTEN') {
        l.listen ??= { depth: 0, sockets: 0 };
        l.listen.depth += s.rxQueue;
        l.listen.sockets++;
      }
      continue;
    }
    const r = s.state === 'LISTEN' ? undefined : out.get(s.remotePort);
    if (r) r.remote[s.state] = (r.remote[s.state] ?? 0) + 1;
  }
  return out;
}

/** Bound on how long we wait for `ss`. */
const SS_TIMEOUT_MS = 2000;

/**
 * Depth (Recv-Q) and maximum (Send-Q) of the accept queue of each listener
 * on `port`, from `ss -Hltn` (iproute2, inet_diag). Summed over listeners;
 * null when nothing listens there. Throws when ss cannot run.
 */
export function listenBacklogSs(port: number): { depth: number; max: number; sockets: number } | null {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`port must be 1..65535, got ${port}`);
  const out = execFileSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8', timeout: SS_TIMEOUT_MS });
  let res: { depth: number; max: number; sockets: number } | null = null;
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[0] !== 'LISTEN') continue;
    res ??= { depth: 0, max: 0, sockets: 0 };
    res.depth += Number(f[1]);
    res.max += Number(f[2]);
    res.sockets++;
  }
  return res;
}
