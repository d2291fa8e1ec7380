/**
 * Who may use the server, checked for every HTTP request and every WebSocket upgrade.
 *
 *   - Binding to anything but loopback (127.0.0.0/8, ::1, localhost) without a
 *     token is refused when the server is created.
 *   - With a token, a request must carry it as `Authorization: Bearer <token>`,
 *     as `?token=<token>` (for the first page load in a browser), or as the
 *     session cookie `premortem_session` set on that first authenticated load
 *     (HttpOnly, SameSite=Strict, value = HMAC-SHA256(token), never the token
 *     itself). An HTML page loaded with ?token= is redirected to the same URL
 *     without it, so the token does not stay in the address bar. Comparison is
 *     constant time (timingSafeEqual over SHA-256 digests). Otherwise 401.
 *   - A request with an Origin header is served only when that origin is the
 *     page's own (Origin host = Host header) or in allowedOrigins; otherwise
 *     403. Without a token the Host header must also name a loopback host, which
 *     defeats DNS rebinding (a foreign name resolving to 127.0.0.1).
 */
import { createHash, createHmac, timingSafeEqual } from 'crypto';
import type * as http from 'http';
import * as net from 'net';

export const SESSION_COOKIE = 'premortem_session';

export type Access = { ok: true; setCookie: boolean; viaQuery: boolean } | { ok: false; status: 401 | 403; reason: string };

export interface AccessControl {
  check(req: http.IncomingMessage, url: URL): Access;
  /** The session cookie's value (set after a ?token= load); undefined without a token. */
  readonly sessionValue?: string;
}

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  if (net.isIPv4(h)) return h.startsWith('127.');
  if (h.startsWith('::ffff:')) return net.isIPv4(h.slice(7)) && h.slice(7).startsWith('127.');
  return false;
}

/** "host:port" / "[v6]:port" -> host */
function hostnameOf(hostHeader: string): string {
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(hostHeader);
  if (m) return m[1];
  const i = hostHeader.lastIndexOf(':');
  return i > 0 && hostHeader.indexOf(':') === i ? hostHeader.slice(0, i) : hostHeader;
}

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest();

export function createAccessControl(token: string | undefined, allowedOrigins: readonly string[]): AccessControl {
  const allowed = new Set(allowedOrigins.map((o) => o.replace(/\/$/, '').toLowerCase()));
  const tokenDigest = token ? sha256(token) : undefined;
  const sessionValue = token ? createHmac('sha256', token).update('premortem-session-v1').digest('hex') : undefined;
  const sessionDigest = sessionValue ? sha256(sessionValue) : undefined;
  const matches = (candidate: string | undefined, digest: Buffer) => candidate !== undefined && timingSafeEqual(sha256(candidate), digest);

  return {
    sessionValue,
    check(req, url) {
      const hostHeader = req.headers.host ?? '';
      const origin = req.headers.origin;
      if (!token && !isLoopbackHost(hostnameOf(hostHeader))) {
        return { ok: false, status: 403, reason: `Host '${hostHeader}' is not this agent (DNS rebinding?)` };
      }
      if (origin !== undefined) {
        let originHost = '';
        try { originHost = new URL(origin).host.toLowerCase(); } catch { /* 'null' or junk */ }
        const own = originHost !== '' && originHost === hostHeader.toLowerCase();
        if (!own && !allowed.has(origin.replace(/\/$/, '').toLowerCase())) {
          return { ok: false, status: 403, reason: `Origin ${origin} may not use this agent` };
        }
      }
      if (!token) return { ok: true, setCookie: false, viaQuery: false };
      const auth = req.headers.authorization;
      const bearer = auth && /^Bearer\s+(.+)$/i.exec(auth)?.[1]?.trim();
      if (bearer && matches(bearer, tokenDigest!)) return { ok: true, setCookie: false, viaQuery: false };
      const query = url.searchParams.get('token') ?? undefined;
      if (query && matches(query, tokenDigest!)) return { ok: true, setCookie: true, viaQuery: true };
      const cookie = (req.headers.cookie ?? '').split(';').map((c) => c.trim().split('='))
        .find(([k]) => k === SESSION_COOKIE)?.[1];
      if (cookie && matches(cookie, sessionDigest!)) return { ok: true, setCookie: false, viaQuery: false };
      return { ok: false, status: 401, reason: 'a token is required: Authorization: Bearer <token> or ?token=<token>' };
    },
  };
}
