/**
 * The tcp probe keyed by (network namespace, port): two real listeners on
 * 127.0.0.1:8000 in two network namespaces (ip netns), each watched in its
 * own namespace, with real clients inside each. Every count, accept-queue
 * reading and record lands on its own namespace's watch; a segment to a
 * closed port (a reset without a socket) is attributed by the namespace of
 * the device it came in on. Plus the key layout against the C struct.
 */
import { loadAddon } from '../../agent/native';
import { LAYOUT, RecordType } from '../../agent/records';
import { TCP_KEY, tcpKey, TcpEvent, TcpWatcher } from '../../agent/probes/tcp';
import { nsInode } from '../../agent/procfs';
import { createNetns, TestNetns } from '../helpers/netns';
import { printed, start, stopAll, waitFor } from '../helpers/procs';
import { openTracer, TestTracer } from '../helpers/tracer';

const PORT = 8000;
const CLOSED_PORT = 8001;

/** A listener on 127.0.0.1:8000 that accepts and holds every connection. */
const LISTENER = `
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', ${PORT})); s.listen(8)
print('listening', flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
`;

/** N clients connected to 127.0.0.1:PORT and held; then one connection to the closed port (reset). */
const clients = (n: number) => `
import socket, time
socks = [socket.create_connection(('127.0.0.1', ${PORT})) for _ in range(${n})]
try:
    socket.create_connection(('127.0.0.1', ${CLOSED_PORT}))
except ConnectionRefusedError:
    pass
print('connected', flush=True)
time.sleep(3600)
`;

describe('tcp probe: the same port in two network namespaces', () => {
  let t: TestTracer;
  let w: TcpWatcher;
  const spaces: TestNetns[] = [];
  beforeAll(() => {
    t = openTracer({ probes: ['tcp'], rodata: { tcp: { targ_rec_gap_ms: 0 } } });
    w = new TcpWatcher(t.tracer);
  });
  afterAll(async () => {
    t?.close();
    await stopAll();
    for (const ns of spaces) ns.remove();
  });

  test('the key is the C struct pm_tcp_key', () => {
    const c = loadAddon().layout().structs.tcp_key;
    expect({ size: LAYOUT.tcp_key.size, offsets: LAYOUT.tcp_key.offsets }).toEqual({ size: c.size, offsets: c.offsets });
    const dv = new DataView(tcpKey(4026532301, 8000));
    expect([dv.byteLength, dv.getUint32(TCP_KEY.offsets.netns, true), dv.getUint32(TCP_KEY.offsets.port, true)]).toEqual([8, 4026532301, 8000]);
  });

  test('listeners, connections and resets are counted in their own namespace only', async () => {
    const a = createNetns('tcpa');
    spaces.push(a);
    const b = createNetns('tcpb');
    spaces.push(b);
    expect(a.inode).not.toBe(b.inode);
    const la = start(a.prefix[0], [...a.prefix.slice(1), '/usr/bin/python3', '-c', LISTENER]);
    const lb = start(b.prefix[0], [...b.prefix.slice(1), '/usr/bin/python3', '-c', LISTENER]);
    await Promise.all([printed(la, /listening/), printed(lb, /listening/)]);
    expect(nsInode(la.pid!, 'net')).toBe(a.inode); // `ip netns exec` execs the command itself

    // Watched after the listeners exist: each namespace's table seeds its LISTEN count.
    w.watch({ port: PORT, serviceId: 11, netns: a.inode, pid: la.pid });
    w.watch({ port: PORT, serviceId: 22, netns: b.inode, pid: lb.pid });
    w.watch({ port: CLOSED_PORT, serviceId: 11, netns: a.inode, pid: la.pid });
    w.watch({ port: CLOSED_PORT, serviceId: 22, netns: b.inode, pid: lb.pid });
    expect(w.stats(PORT, 'local', a.inode).current.LISTEN).toBe(1);
    expect(w.stats(PORT, 'local', b.inode).current.LISTEN).toBe(1);
    expect(w.get(PORT)).toBeUndefined(); // nothing is watched in the agent's own namespace

    const ca = start(a.prefix[0], [...a.prefix.slice(1), '/usr/bin/python3', '-c', clients(3)]);
    const cb = start(b.prefix[0], [...b.prefix.slice(1), '/usr/bin/python3', '-c', clients(5)]);
    await Promise.all([printed(ca, /connected/), printed(cb, /connected/)]);
    const sa = await waitFor(() => { const s = w.stats(PORT, 'local', a.inode); return s.entered.ESTABLISHED === 3 && s; }, 5000, '3 connections in A');
    const sb = await waitFor(() => { const s = w.stats(PORT, 'local', b.inode); return s.entered.ESTABLISHED === 5 && s; }, 5000, '5 connections in B');
    expect([sa.entered.SYN_RECV, sa.current.ESTABLISHED, sa.current.LISTEN]).toEqual([3, 3, 1]);
    expect([sb.entered.SYN_RECV, sb.current.ESTABLISHED, sb.current.LISTEN]).toEqual([5, 5, 1]);
    expect(w.listen(PORT, a.inode).max).toBe(8);
    expect(w.listen(PORT, a.inode).peak).toBeGreaterThanOrEqual(1);

    // A SYN to a closed port: the reset has no socket; the device it came in on names the namespace.
    await waitFor(() => w.stats(CLOSED_PORT, 'local', a.inode).rstSent === 1 && w.stats(CLOSED_PORT, 'local', b.inode).rstSent === 1, 5000, 'one reset in each');
    t.tracer.sync(); // every record submitted so far is delivered
    const resets = t.ofType(RecordType.Tcp).filter((r) => r.subtype === TcpEvent.RstSent && r.localPort === CLOSED_PORT);
    expect(resets.map((r) => r.serviceId).sort()).toEqual([11, 22]);
    // Nothing crossed: the records of port 8000 carry each namespace's own service id.
    const ids = new Set(t.ofType(RecordType.Tcp).filter((r) => r.localPort === PORT).map((r) => r.serviceId));
    for (const id of ids) expect([11, 22]).toContain(id);

    expect(w.unwatch(PORT, a.inode)).toBe(true);
    expect(w.stats(PORT, 'local', b.inode).current.ESTABLISHED).toBe(5);
    expect(() => w.stats(PORT, 'local', a.inode)).toThrow(/not watched in network namespace/);
  });
});
