/**
 * requests: the HTTP request lines tracked workers read and have not answered
 * yet (bpf/requests.h). Nothing streams: the map is read when a worker dies,
 * or when someone asks about a live one.
 */
import type { Tracer } from '../../native';
import { registerLayout, u64 } from '../../records';

export const REQUEST = registerLayout('request', {
  size: 160,
  offsets: { start_ns: 0, sock_cookie: 8, tid: 16, fd: 20, len: 24, flags: 26, line: 32 },
});
export const REQ_STATS = registerLayout('req_stats', {
  size: 40,
  offsets: { captured: 0, answered: 8, closed: 16, replaced: 24, unreadable: 32 },
});
/** bpf/requests.h PM_REQ_LINE_MAX: bytes of a request line the kernel keeps. */
export const REQ_LINE_MAX = 128;
export const REQ_TRUNCATED = 0x1;
export const REQ_QUERY_CUT = 0x2;

/** One request line read and not answered. */
export interface KernelRequest {
  pid: number;
  fd: number;
  tid: number;
  /** CLOCK_BOOTTIME ns when its request line was read. */
  startNs: number;
  line: string;
  flags: number;
}

/** What the probe did since it loaded. */
export interface RequestStats {
  captured: number;
  answered: number;
  closed: number;
  replaced: number;
  unreadable: number;
}

function decodeRequest(pid: number, fd: number, dv: DataView, off: number): KernelRequest {
  const o = REQUEST.offsets;
  const len = Math.min(dv.getUint16(off + o.len, true), REQ_LINE_MAX);
  let line = '';
  for (let i = 0; i < len; i++) line += String.fromCharCode(dv.getUint8(off + o.line + i));
  return { pid, fd, tid: dv.getUint32(off + o.tid, true), startNs: u64(dv, off + o.start_ns), line, flags: dv.getUint16(off + o.flags, true) };
}

/** Key of one entry: tgid << 32 | fd. */
export const requestKey = (pid: number, fd: number): bigint => (BigInt(pid) << 32n) | BigInt(fd);

/**
 * The unanswered requests of `pid` read at or after `sinceNs` (its start: an
 * earlier holder of the pid is another process), oldest first.
 */
export function readRequests(tracer: Tracer, pid: number, sinceNs: number): KernelRequest[] {
  const d = tracer.mapDump('requests', 'requests');
  const dv = new DataView(d.values);
  const out: KernelRequest[] = [];
  for (let i = 0; i < d.keys.length / 2; i++) {
    const fd = d.keys[2 * i], tgid = d.keys[2 * i + 1];
    if (tgid !== pid) continue;
    const r = decodeRequest(tgid, fd, dv, i * d.valueSize);
    if (r.startNs >= sinceNs) out.push(r);
  }
  return out.sort((a, b) => a.startNs - b.startNs);
}

/** Removes every entry of a dead process (read first). */
export function forgetRequests(tracer: Tracer, pid: number, fds: Iterable<number>): void {
  for (const fd of fds) tracer.mapDelete('requests', 'requests', requestKey(pid, fd));
}

export function readRequestStats(tracer: Tracer): RequestStats | null {
  const v = tracer.mapLookup('requests', 'req_stats', 0);
  if (!v) return null;
  const dv = new DataView(v);
  const o = REQ_STATS.offsets;
  return {
    captured: u64(dv, o.captured), answered: u64(dv, o.answered), closed: u64(dv, o.closed),
    replaced: u64(dv, o.replaced), unreadable: u64(dv, o.unreadable),
  };
}

/** "GET /report HTTP/1.1" -> its parts (protocol "" when the line was cut before it). */
export function parseRequestLine(line: string): { method: string; path: string; protocol: string } {
  const [method = '', path = '', protocol = ''] = line.split(' ');
  return { method, path, protocol: /^HTTP\/\d/.test(protocol) ? protocol : '' };
}
