/**
 * GET /api/workers/:worker/why[?window_s=N]: where a live worker's last
 * seconds went and the requests it has in flight, measured like a post-mortem
 * (issue 15) but ending now. :worker is "pid:start_ticks" or a pid. The
 * window defaults to the worker's server timeout (else 30 s), at most the
 * timeline's length. JSON: { worker, timeBreakdown, requestsInFlight,
 * requestsNote }; 404 PREMORTEM_ERR_NOT_FOUND for no such live worker, 400
 * PREMORTEM_ERR_BAD_REQUEST for a bad window. Served behind the server's own
 * access check, like every /api route.
 */
import type * as http from 'http';
import type { Agent } from '../agent';
import { parseWorkerKey, workerKey } from '../../proto/codec';

const ROUTE = /^\/api\/workers\/([^/]+)\/why$/;
/** The route as an extraRoutePaths pattern ('*': one path segment), so that only it waits for the agent. */
export const WHY_ROUTE_PATH = '/api/workers/*/why';
/** Longest window that can be asked for (the timeline holds at most this much anyway). */
export const MAX_WHY_WINDOW_S = 3600;

function send(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' });
  res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body) + '\n');
}

export function whyRoute(agent: Agent): (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean {
  return (req, res, url) => {
    const error = (status: number, code: string, message: string) => send(req, res, status, { error: { code, message } });
    const m = ROUTE.exec(url.pathname);
    if (!m) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      error(405, 'PREMORTEM_ERR_METHOD', 'only GET');
      return true;
    }
    const param = decodeURIComponent(m[1]);
    const windowArg = url.searchParams.get('window_s');
    const windowS = windowArg === null ? undefined : Number(windowArg);
    if (windowS !== undefined && (!Number.isInteger(windowS) || windowS < 1 || windowS > MAX_WHY_WINDOW_S)) {
      error(400, 'PREMORTEM_ERR_BAD_REQUEST', `window_s must be a whole number of seconds from 1 to ${MAX_WHY_WINDOW_S}, got ${windowArg}`);
      return true;
    }
    const byKey = parseWorkerKey(param);
    const pid = /^\d{1,10}$/.test(param) ? Number(param) : undefined;
    const w = agent.snapshot().workers.find((x) => x.state === 'alive' && x.identity
      && (byKey ? x.identity.pid === byKey.pid && x.identity.startTicks === byKey.startTicks : x.identity.pid === pid));
    const facts = w?.identity ? agent.why(workerKey(w.identity.pid, w.identity.startTicks), windowS && windowS * 1000) : null;
    if (!w || !facts) {
      error(404, 'PREMORTEM_ERR_NOT_FOUND', `no live tracked worker ${param} (see /api/health or the viewer for the tracked ones)`);
      return true;
    }
    send(req, res, 200, { worker: w.identity, timeBreakdown: facts.time ?? null, requestsInFlight: facts.requests ?? [], requestsNote: facts.requestsNote ?? '' });
    return true;
  };
}
