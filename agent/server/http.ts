/**
 * The HTTP side: a small REST API and the viewer's static files.
 *
 *   GET /api/health                 liveness. JSON: server counters, store health, + hooks.health();
 *                                   503 when hooks.health() says live: false or cannot answer
 *   GET /api/ready                  readiness. JSON from hooks.ready(); 503 until it says ready
 *   GET /api/incidents              JSON: { incidents: IncidentSummary[] } newest first
 *   GET /api/incidents/:id.pb       the protobuf Bundle (what `export --format pb` writes)
 *   GET /api/incidents/:id.json     bundleToJson (what `export --format json` writes)
 *   anything hooks.extraRoutes handles (e.g. /metrics), then static files.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import type { Duplex } from 'stream';
import type { Logger } from '../log';
import { MIN_CLIENT_VERSION, PROTOCOL_VERSION, type Codec } from '../../proto/codec';
import { StoreError, type BundleStore } from '../store';
import { bundleToJson } from '../export/json';
import { SESSION_COOKIE, type AccessControl } from './access';
import type { ServerCounters, ServerHooks } from './options';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json; charset=utf-8', '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.jpg': 'image/jpeg', '.ico': 'image/x-icon', '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8', '.proto': 'text/plain; charset=utf-8', '.wasm': 'application/wasm',
  '.pb': 'application/x-protobuf', '.pmb': 'application/octet-stream',
};

export const SECURITY_HEADERS: Record<string, string> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy':
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
};

/** The probes' paths: answered without waiting on anything else. */
const PROBE_PATHS = new Set(['/api/health', '/api/ready']);

export function statusText(code: number): string {
  return http.STATUS_CODES[code] ?? 'Error';
}

/** Answers a request that will not get a normal response (a refused upgrade, a bad request), then closes. */
export function rejectUpgrade(socket: Duplex, code: number, body: string, extra: Record<string, string> = {}): void {
  const headers = {
    Connection: 'close', 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': String(Buffer.byteLength(body)), ...extra,
  };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n');
  if (socket.writable) socket.end(`HTTP/1.1 ${code} ${statusText(code)}\r\n${head}\r\n\r\n${body}`);
  else socket.destroy();
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

export function sendHttpError(res: http.ServerResponse, status: number, code: string, message: string): void {
  sendJson(res, status, { error: { code, message } });
}

/** Codes that say "not now" (the agent or its store is busy): 503, retry shortly. */
const RETRY_CODES = new Set(['PREMORTEM_ERR_BUSY', 'PREMORTEM_ERR_STORE_BUSY', 'PREMORTEM_ERR_AGENT_TIMEOUT']);

/** The HTTP status of a store failure: gone 404, corrupt 410, busy 503 (with Retry-After), else 500. */
export function storeErrorStatus(code: string): number {
  if (code === 'PREMORTEM_ERR_BUNDLE_NOT_FOUND' || code === 'PREMORTEM_ERR_BUNDLE_BAD_ID') return 404;
  if (code === 'PREMORTEM_ERR_BUNDLE_CORRUPT') return 410;
  return RETRY_CODES.has(code) ? 503 : 500;
}

function sendStoreError(res: http.ServerResponse, code: string, message: string): void {
  const status = storeErrorStatus(code);
  if (status === 503) res.setHeader('Retry-After', '1');
  sendHttpError(res, status, code, message);
}

export interface HttpContext {
  access: AccessControl;
  hooks: ServerHooks;
  counters: ServerCounters;
  store?: BundleStore;
  staticDir?: string;
  codec: () => Codec;
  agentVersion: string;
  /** Bounds shown in /api/health. */
  limits: Record<string, number>;
  logger: Pick<Logger, 'error'>;
}

/** Matches a path against exact paths and patterns whose '*' stands for one path segment. */
export function pathMatcher(paths: readonly string[]): (pathname: string) => boolean {
  const exact = new Set(paths.filter((p) => !p.includes('*')));
  const escape = (s: string) => s.replace(/[.+?^$()|[\]{}\\]/g, '\\$&');
  const patterns = paths.filter((p) => p.includes('*')).map((p) => new RegExp('^' + p.split('*').map(escape).join('[^/]+') + '$'));
  return (pathname) => exact.has(pathname) || patterns.some((re) => re.test(pathname));
}

export function createRequestHandler(ctx: HttpContext): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  const { hooks, counters } = ctx;
  const extraPaths = hooks.extraRoutePaths ? pathMatcher(hooks.extraRoutePaths) : undefined;

  async function serveHealth(res: http.ServerResponse): Promise<void> {
    let extra: Record<string, unknown> = {};
    try {
      extra = (await hooks.health?.()) ?? {};
    } catch (err) {
      extra = { live: false, reason: `the agent did not answer: ${(err as Error).message}` };
    }
    const live = extra.live !== false;
    sendJson(res, live ? 200 : 503, {
      ok: live, agentVersion: ctx.agentVersion, protocolVersion: PROTOCOL_VERSION, minClientVersion: MIN_CLIENT_VERSION,
      features: hooks.features?.() ?? [], server: { ...counters, ...ctx.limits }, store: ctx.store?.health() ?? null, ...extra,
    });
  }

  async function serveIncident(req: http.IncomingMessage, res: http.ServerResponse, store: BundleStore, id: string, pb: boolean): Promise<void> {
    try {
      if (pb) {
        const bytes = await store.readRaw(id);
        res.writeHead(200, {
          ...SECURITY_HEADERS, 'Content-Type': 'application/x-protobuf', 'Content-Length': bytes.length,
          'Content-Disposition': `attachment; filename="${id}.pb"`, 'Cache-Control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      } else {
        sendJson(res, 200, bundleToJson(await store.read(id), ctx.codec()));
      }
    } catch (err) {
      const code = (err as StoreError).code ?? 'PREMORTEM_ERR_STORE_IO';
      sendStoreError(res, code, (err as Error).message);
    }
  }

  async function serveApi(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    const p = url.pathname;
    if (p === '/api/ready') {
      let r: { ready: boolean; reason?: string };
      try { r = (await hooks.ready?.()) ?? { ready: true }; } catch (err) { r = { ready: false, reason: `the agent did not answer: ${(err as Error).message}` }; }
      return sendJson(res, r.ready ? 200 : 503, r);
    }
    if (p === '/api/health') return serveHealth(res);
    if (!ctx.store) return sendHttpError(res, 503, 'PREMORTEM_ERR_NO_STORE', 'this agent keeps no post-mortem store');
    if (p === '/api/incidents') {
      try {
        sendJson(res, 200, { incidents: await ctx.store.list() });
      } catch (err) {
        sendStoreError(res, (err as StoreError).code ?? 'PREMORTEM_ERR_STORE_IO', (err as Error).message);
      }
      return;
    }
    const m = /^\/api\/incidents\/([^/]+?)(\.pb|\.json)?$/.exec(p);
    if (m) return serveIncident(req, res, ctx.store, m[1], m[2] === '.pb');
    sendHttpError(res, 404, 'PREMORTEM_ERR_NOT_FOUND', `no API route ${p}`);
  }

  /** The file under staticDir a URL names (symlinks may not lead out), or how to answer instead. */
  async function resolveStatic(url: URL, staticDir: string): Promise<{ file: string; size: number } | 'not-found' | 'bad-path' | 'directory'> {
    let rel: string;
    try {
      rel = decodeURIComponent(url.pathname);
    } catch {
      return 'bad-path';
    }
    if (rel.includes('\0')) return 'bad-path';
    if (rel.endsWith('/')) rel += 'index.html';
    const candidate = path.resolve(staticDir, '.' + path.posix.normalize('/' + rel));
    if (candidate !== staticDir && !candidate.startsWith(staticDir + path.sep)) return 'not-found';
    try {
      const real = await fs.promises.realpath(candidate);
      const rootReal = await fs.promises.realpath(staticDir);
      if (real !== rootReal && !real.startsWith(rootReal + path.sep)) return 'not-found';
      const st = await fs.promises.stat(real);
      if (st.isDirectory()) return 'directory';
      return st.isFile() ? { file: real, size: st.size } : 'not-found';
    } catch {
      return 'not-found';
    }
  }

  async function serveStatic(req: http.IncomingMessage, res: http.ServerResponse, url: URL): Promise<void> {
    if (!ctx.staticDir) return sendHttpError(res, 404, 'PREMORTEM_ERR_NO_VIEWER', 'the viewer is not built (npm run build)');
    const found = await resolveStatic(url, ctx.staticDir);
    if (found === 'bad-path') return sendHttpError(res, 400, 'PREMORTEM_ERR_BAD_PATH', 'bad path');
    if (found === 'not-found') return sendHttpError(res, 404, 'PREMORTEM_ERR_NOT_FOUND', `no file ${url.pathname}`);
    if (found === 'directory') {
      res.writeHead(301, { Location: url.pathname + '/' });
      res.end();
      return;
    }
    const type = CONTENT_TYPES[path.extname(found.file).toLowerCase()] ?? 'application/octet-stream';
    res.writeHead(200, {
      ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': found.size,
      'Cache-Control': type.startsWith('text/html') ? 'no-cache' : 'public, max-age=300',
    });
    if (req.method === 'HEAD') { res.end(); return; }
    const stream = fs.createReadStream(found.file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  }

  /** Access, then the session cookie and the ?token= redirect; false when the request was answered here. */
  function admit(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean {
    const access = ctx.access.check(req, url);
    if (!access.ok) {
      if (access.status === 401) counters.rejectedAuth++;
      else counters.rejectedOrigin++;
      res.setHeader('WWW-Authenticate', 'Bearer realm="premortem"');
      sendHttpError(res, access.status, access.status === 401 ? 'PREMORTEM_ERR_UNAUTHORIZED' : 'PREMORTEM_ERR_FORBIDDEN', access.reason);
      return false;
    }
    if (access.setCookie && ctx.access.sessionValue) {
      res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${ctx.access.sessionValue}; HttpOnly; SameSite=Strict; Path=/`);
      // A page opened with ?token=: drop the token from the address bar; the cookie carries on.
      if (access.viaQuery && (req.method === 'GET' || req.method === 'HEAD') && !url.pathname.startsWith('/api/') &&
          (req.headers.accept ?? '').includes('text/html')) {
        url.searchParams.delete('token');
        res.writeHead(303, { Location: url.pathname + url.search, 'Cache-Control': 'no-store' });
        res.end();
        return false;
      }
    }
    return true;
  }

  async function onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    counters.httpRequests++;
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://premortem.invalid');
    } catch {
      counters.badHttpRequests++;
      return sendHttpError(res, 400, 'PREMORTEM_ERR_BAD_PATH', 'bad request target');
    }
    if (!admit(req, res, url)) return;
    // Only the extra routes' own paths wait for them (in the server process each asks the agent first).
    const extra = hooks.extraRoutes && !PROBE_PATHS.has(url.pathname) && (!extraPaths || extraPaths(url.pathname));
    if (extra && (await hooks.extraRoutes!(req, res, url))) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return sendHttpError(res, 405, 'PREMORTEM_ERR_METHOD', `${req.method} is not served here`);
    }
    if (url.pathname.startsWith('/api/')) await serveApi(req, res, url);
    else await serveStatic(req, res, url);
  }

  return (req, res) => {
    onRequest(req, res).catch((err) => {
      ctx.logger.error(`HTTP ${req.method} ${req.url} failed: ${(err as Error).message}`);
      if (!res.headersSent) sendHttpError(res, 500, 'PREMORTEM_ERR_INTERNAL', 'internal error');
      else res.destroy();
    });
  };
}
