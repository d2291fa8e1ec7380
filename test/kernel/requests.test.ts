/**
 * The requests probe on the real kernel, against a tracked threaded Python
 * server on 127.0.0.1 driven byte by byte from raw client sockets: what it
 * keeps of a request line (no query string unless asked, no headers, a bounded
 * copy), what counts as an answer (a final "HTTP/1.x" status, not "100
 * Continue"), a body that looks like a request line, a peer that goes away,
 * and an untracked server that costs nothing.
 */
import * as net from 'net';
import { readRequests, readRequestStats, REQ_LINE_MAX, REQ_QUERY_CUT, REQ_TRUNCATED } from '../../agent/probes/requests';
import { printed, python, sleep, stopAll, waitFor } from '../helpers/procs';
import { openTracer, TestTracer } from '../helpers/tracer';

const SERVER = `
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1], flush=True)
def serve(c):
    while True:
        data = c.recv(65536)
        if not data:
            c.close(); return
        if data.startswith(b"GET /answer"):
            c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok")
        elif data.startswith(b"POST /continue"):
            c.sendall(b"HTTP/1.1 100 Continue\\r\\n\\r\\n")
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

async function server() {
  const p = python(SERVER, { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = Number((await printed(p, /^\d+$/m)).trim());
  return { pid: p.pid!, port };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const c = net.connect(port, '127.0.0.1', () => resolve(c));
    c.on('error', reject);
  });
}
const send = (c: net.Socket, s: string) => new Promise<void>((r) => c.write(s, () => r()));

describe('requests probe', () => {
  let t: TestTracer;
  const sockets: net.Socket[] = [];
  afterEach(() => t?.close());
  afterAll(async () => {
    for (const c of sockets) c.destroy();
    await stopAll();
  });

  const open = async (port: number) => {
    const c = await connect(port);
    sockets.push(c);
    return c;
  };
  const lines = (pid: number) => readRequests(t.tracer, pid, 0).map((r) => r.line).sort();

  test('the request line only, its query string dropped in the kernel; answered and gone ones leave', async () => {
    t = openTracer({ probes: ['requests'] });
    const s = await server();
    t.tracer.track(s.pid);
    const a = await open(s.port);
    await send(a, 'GET /hold/a?token=s3cret&x=1 HTTP/1.1\r\nHost: example\r\nCookie: secret=1\r\n\r\n');
    const b = await open(s.port);
    await send(b, 'GET /answer HTTP/1.1\r\nHost: x\r\n\r\n');
    const c = await open(s.port);
    await send(c, `GET /${'x'.repeat(300)} HTTP/1.1\r\n\r\n`);
    const d = await open(s.port);
    await send(d, 'not http at all\r\n');
    const e = await open(s.port);
    await send(e, 'POST /continue HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 18\r\n\r\n');
    const found = await waitFor(() => {
      const r = readRequests(t.tracer, s.pid, 0);
      return r.length === 3 && r;
    }, 5000, 'three requests in flight');
    const byPath = new Map(found.map((r) => [r.line.split(' ')[1].slice(0, 12), r]));
    expect(byPath.get('/hold/a')).toMatchObject({ line: 'GET /hold/a HTTP/1.1', flags: REQ_QUERY_CUT });
    const long = byPath.get('/xxxxxxxxxxx')!;
    expect(long.line).toHaveLength(REQ_LINE_MAX);
    expect(long.flags & REQ_TRUNCATED).toBe(REQ_TRUNCATED);
    // "100 Continue" is not the answer: the request stays in flight; its body does not replace it.
    expect(byPath.get('/continue')!.line).toBe('POST /continue HTTP/1.1');
    await send(e, 'GET /fake HTTP/1.1\r\n');
    await sleep(200);
    expect(lines(s.pid)).toContain('POST /continue HTTP/1.1');
    expect(lines(s.pid).join()).not.toMatch(/fake|secret|Host|Cookie/);
    for (const r of found) {
      expect(r.pid).toBe(s.pid);
      expect(r.tid).not.toBe(s.pid); // read by the connection's thread
      expect(r.startNs).toBeGreaterThan(0);
    }
    // The peer goes away: end of file on the socket, the request will never be answered.
    a.destroy();
    await waitFor(() => !lines(s.pid).some((l) => l.includes('/hold/a')), 5000, 'the closed one gone');
    const st = readRequestStats(t.tracer)!;
    expect(st.answered).toBeGreaterThanOrEqual(1);
    expect(st.closed).toBeGreaterThanOrEqual(1);
    expect(st.captured).toBeGreaterThanOrEqual(4);
  });

  test('with targ_keep_query the query string is kept; an untracked server is not read at all', async () => {
    t = openTracer({ probes: ['requests'], rodata: { requests: { targ_keep_query: 1 } } });
    const tracked = await server();
    const other = await server();
    t.tracer.track(tracked.pid);
    for (const s of [tracked, other]) await send(await open(s.port), 'GET /search?q=premortem HTTP/1.1\r\n\r\n');
    const r = await waitFor(() => readRequests(t.tracer, tracked.pid, 0)[0], 5000, 'the request');
    expect(r).toMatchObject({ line: 'GET /search?q=premortem HTTP/1.1', flags: 0 });
    await sleep(200);
    expect(readRequests(t.tracer, other.pid, 0)).toEqual([]);
  });
});
