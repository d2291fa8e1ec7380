/**
 * TCP socket states per watched service port, from real servers on 127.0.0.1:
 * a gunicorn sync worker behind a small backlog, a Python server that never
 * closes its sockets, resets both ways. Attribution is by port: on loopback
 * the server side runs in softirq on the client's task.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess } from 'child_process';
import { openTracer, TestTracer } from '../helpers/tracer';
import { printed, python, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { RecordType } from '../../agent/records';
import { TcpEvent, TcpState, TcpWatcher } from '../../agent/probes/tcp';
import { countTcpSockets, listenBacklogSs } from '../../agent/sampling/sockets';
import { freePort } from '../helpers/services';

const CLOSE_WAIT_MS = 400;

/** Kills a process's children by pid (gunicorn's workers), then the process. */
function killTree(child: ChildProcess): void {
  const pid = child.pid!;
  let kids: number[] = [];
  try {
    kids = fs.readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    /* already gone */
  }
  for (const k of kids) try { process.kill(k, 'SIGKILL'); } catch { /* gone */ }
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
}

describe('tcp: socket states per service port', () => {
  let t: TestTracer;
  let w: TcpWatcher;
  let appDir: string;
  const trees: ChildProcess[] = [];
  beforeAll(() => {
    t = openTracer({
      probes: ['tcp'],
      rodata: { tcp: { targ_close_wait_ms: CLOSE_WAIT_MS, targ_scan_ms: 100, targ_rec_gap_ms: 0 } },
    });
    w = new TcpWatcher(t.tracer);
    appDir = fs.mkdtempSync(path.join(os.tmpdir(), 'premortem-tcp-'));
    fs.writeFileSync(path.join(appDir, 'slowapp.py'), [
      'import time',
      'def app(environ, start_response):',
      '    time.sleep(0.2)',
      "    start_response('200 OK', [('Content-Type', 'text/plain')])",
      "    return [b'ok\\n']",
      '',
    ].join('\n'));
  });
  afterAll(async () => {
    for (const c of trees) killTree(c);
    t?.close();
    await stopAll();
    fs.rmSync(appDir, { recursive: true, force: true });
  });

  test('a gunicorn sync worker behind --backlog 4, 16 concurrent clients: the accept queue reaches its maximum', async () => {
    const port = await freePort();
    w.watch({ port, serviceId: 101 });
    const g = start('/usr/bin/gunicorn', ['-w', '1', '--backlog', '4', '-b', `127.0.0.1:${port}`, '--chdir', appDir, 'slowapp:app']);
    trees.push(g);
    await printed(g, /Booting worker/);
    await waitFor(() => w.stats(port).current.LISTEN === 1, 5000, 'the listener counted');
    expect(listenBacklogSs(port)).toMatchObject({ max: 4, sockets: 1 });

    const N = 16;
    const clients = Array.from({ length: N }, () =>
      start('curl', ['-s', '-o', '/dev/null', '-m', '15', `http://127.0.0.1:${port}/`], { stdio: 'ignore' }));
    let procPeak = 0;
    const done = Promise.all(clients.map((c) => new Promise((r) => c.once('exit', r))));
    let finished = false;
    void done.then(() => { finished = true; });
    while (!finished) {
      procPeak = Math.max(procPeak, countTcpSockets([port]).get(port)?.listen?.depth ?? 0);
      await sleep(20);
    }

    const full = t.ofType(RecordType.Tcp).filter((r) => r.subtype === TcpEvent.BacklogFull && r.localPort === port);
    expect(full.length).toBeGreaterThan(0);
    for (const r of full) {
      expect(r.serviceId).toBe(101);
      expect(r.maxAckBacklog).toBe(4);
      expect(r.ackBacklog).toBeGreaterThanOrEqual(4);
      expect(r.state).toBe(TcpState.SynRecv);
      expect(r.localAddr).toBe('127.0.0.1');
      expect(r.remotePort).not.toBe(port);
    }
    const l = w.listen(port);
    expect(l).toMatchObject({ port, max: 4 });
    expect(l.peak).toBeGreaterThanOrEqual(4);
    expect(procPeak).toBeGreaterThanOrEqual(3); // /proc saw the queue fill too (sampled)

    const s = w.stats(port);
    expect(s.entered.SYN_RECV).toBe(N); // one child per connection, on the server's port
    expect(s.entered.ESTABLISHED).toBe(N);
    expect(s.backlogFull).toBe(full.length);
    // The clients' own sockets (ephemeral ports, SYN_SENT) are not counted for the service.
    expect(s.entered.SYN_SENT).toBe(0);
    await waitFor(() => w.stats(port).current.ESTABLISHED === 0, 3000, 'every connection closed');
    const end = w.stats(port);
    expect(end.current.SYN_RECV).toBe(0);
    expect(end.entered.CLOSE).toBe(N);
    expect(end.current.LISTEN).toBe(1);
  });

  test('a server that never closes accepted sockets: CLOSE_WAIT grows, lingerers are reported', async () => {
    const port = await freePort();
    w.watch({ port, serviceId: 202, local: true, remote: true });
    const server = python(`
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', ${port})); s.listen(64)
print('listening', flush=True)
kept = []
while True:
    c, _ = s.accept(); kept.append(c)  # never closed
`);
    await printed(server, /listening/);
    const connect = () => new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => resolve(c));
      c.once('error', reject);
    });
    const first = await Promise.all([connect(), connect(), connect()]);
    for (const c of first) c.end();
    await waitFor(() => w.stats(port).current.CLOSE_WAIT === 3 && w.stats(port), 3000, '3 in CLOSE_WAIT');
    const second = await Promise.all([connect(), connect(), connect()]);
    for (const c of second) c.end();
    const s = await waitFor(() => w.stats(port).current.CLOSE_WAIT === 6 && w.stats(port), 3000, '6 in CLOSE_WAIT');
    expect(countTcpSockets([port]).get(port)!.local.CLOSE_WAIT).toBe(6); // /proc agrees
    // The client ends, watched by remote port, sit in FIN_WAIT2 meanwhile.
    expect(w.stats(port, 'remote').current.FIN_WAIT2).toBe(6);
    expect(w.stats(port, 'remote').entered.SYN_SENT).toBe(6);
    expect(s.entered.SYN_RECV).toBe(6);

    const lingering = await waitFor(() => {
      const r = t.ofType(RecordType.Tcp).filter((x) => x.subtype === TcpEvent.CloseWaitLinger && x.localPort === port);
      return r.length === 6 && r;
    }, 3000, 'six CLOSE_WAIT lingering records from the in-kernel scan');
    for (const r of lingering) {
      expect(r.serviceId).toBe(202);
      expect(r.state).toBe(TcpState.CloseWait);
      expect(r.durationNs).toBeGreaterThanOrEqual(CLOSE_WAIT_MS * 1e6);
      expect(r.durationNs).toBeLessThan(10e9);
      expect(r.remote).toBe(false);
    }
    expect(w.stats(port).closeWaitLingering).toBe(6);

    // The server dies: its sockets close, CLOSE_WAIT drains to zero.
    process.kill(server.pid!, 'SIGKILL');
    await waitFor(() => w.stats(port).current.CLOSE_WAIT === 0, 3000, 'CLOSE_WAIT drained');
    expect(w.stats(port).entered.LAST_ACK).toBe(6);
  });

  test('resets are counted on the port they concern, with a record', async () => {
    const port = await freePort();
    w.watch({ port, serviceId: 303 });
    // Nothing listens: the kernel answers the SYN with a reset (no socket: the port comes from the segment).
    await new Promise<void>((resolve) => {
      const c = net.connect(port, '127.0.0.1');
      c.once('error', () => resolve());
    });
    const sent = await waitFor(() => t.ofType(RecordType.Tcp).find((r) => r.subtype === TcpEvent.RstSent && r.localPort === port),
      3000, 'a RST_SENT record');
    expect(sent.serviceId).toBe(303);
    expect(w.stats(port).rstSent).toBe(1);

    // A listener whose client aborts (SO_LINGER 0): the server's socket receives the reset.
    const server = python(`
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', ${port})); s.listen(8)
print('listening', flush=True)
c, _ = s.accept()
time.sleep(30)
`);
    await printed(server, /listening/);
    const c = await new Promise<net.Socket>((resolve) => { const k = net.connect(port, '127.0.0.1', () => resolve(k)); });
    await waitFor(() => w.stats(port).current.ESTABLISHED === 1, 3000, 'the connection established');
    const clientPort = c.localPort;
    c.resetAndDestroy();
    const recv = await waitFor(() => t.ofType(RecordType.Tcp).find((r) => r.subtype === TcpEvent.RstRecv && r.localPort === port),
      3000, 'a RST_RECV record');
    expect(recv.serviceId).toBe(303);
    expect(recv.remotePort).toBe(clientPort);
    expect(w.stats(port).rstRecv).toBe(1);
  });
});
