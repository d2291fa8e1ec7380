/**
 * Layouts and decoders of the disk, tcp and pygc probes against the C headers
 * (sizes and offsets reported by the addon), plus the user-space parsers they
 * rely on: /proc/net/tcp lines. (ELF stapsdt notes: test/python/elf.test.ts.)
 */
import { loadAddon } from '../../agent/native';
import { LAYOUT, RecordType, decodeBatch } from '../../agent/records';
import type { AnyRecord } from '../../agent/probes';
import { BIO_SLOW, GC_PAUSE, TCP_EVENT, decodeTcpStats, TCP_STATS, devName } from '../../agent/probes';
import { parseProcNetTcp, countTcpSockets } from '../../agent/sampling/sockets';

const MINE = ['bio_slow', 'disk_stats', 'tcp_event', 'tcp_port', 'tcp_stats', 'tcp_listen', 'gc_pause', 'gc_stats'];

describe('signals II layouts', () => {
  const native = loadAddon().layout();

  test.each(MINE)('%s: the decoder agrees with the C struct', (name) => {
    const c = native.structs[name];
    expect(c).toBeDefined();
    expect({ size: LAYOUT[name].size, type: LAYOUT[name].type, offsets: LAYOUT[name].offsets }).toEqual({
      size: c.size, type: c.type, offsets: c.offsets,
    });
  });

  test('record type numbers are the fixed ones', () => {
    expect([BIO_SLOW.type, TCP_EVENT.type, GC_PAUSE.type]).toEqual([RecordType.BioSlow, RecordType.Tcp, RecordType.Gc]);
    expect([RecordType.BioSlow, RecordType.Tcp, RecordType.Gc]).toEqual([7, 8, 9]);
  });

  test('records decode from bytes laid out as the kernel writes them', () => {
    const sizes = [BIO_SLOW.size, TCP_EVENT.size, GC_PAUSE.size];
    const buf = new ArrayBuffer(sizes.reduce((a, b) => a + b, 0));
    const dv = new DataView(buf);
    let o = 0;
    const hdr = (type: number, size: number) => { dv.setUint16(o, type, true); dv.setUint16(o + 2, size, true); };
    hdr(RecordType.BioSlow, BIO_SLOW.size);
    const B = BIO_SLOW.offsets;
    dv.setUint32(o + B.dev, (254 << 20) | 0, true);
    dv.setUint32(o + B.op, 1, true);
    dv.setUint32(o + B.latency_ns, 1234567, true);
    dv.setUint32(o + B.bytes, 1 << 20, true);
    dv.setUint32(o + B.pid, 42, true);
    dv.setUint32(o + B.tracked, 1, true);
    new Uint8Array(buf, o + B.comm, 3).set([100, 100, 0]);
    o += BIO_SLOW.size;
    hdr(RecordType.Tcp, TCP_EVENT.size);
    const T = TCP_EVENT.offsets;
    dv.setUint32(o + T.subtype, 3, true);
    dv.setUint16(o + T.lport, 8000, true);
    dv.setUint16(o + T.family, 2, true);
    dv.setUint32(o + T.ack_backlog, 5, true);
    dv.setUint32(o + T.max_ack_backlog, 4, true);
    new Uint8Array(buf, o + T.saddr, 4).set([127, 0, 0, 1]);
    o += TCP_EVENT.size;
    hdr(RecordType.Gc, GC_PAUSE.size);
    dv.setUint32(o + GC_PAUSE.offsets.generation, 2, true);
    dv.setBigInt64(o + GC_PAUSE.offsets.collected, -1n, true);
    const out: AnyRecord[] = [];
    expect(decodeBatch(buf, (r) => out.push(r as AnyRecord))).toBe(3);
    expect(out[0]).toMatchObject({ type: 7, dev: 254 << 20, op: 1, latencyNs: 1234567, bytes: 1 << 20, pid: 42, tracked: true, comm: 'dd' });
    expect(devName((out[0] as { dev: number }).dev)).toBe('254:0');
    expect(out[1]).toMatchObject({ type: 8, subtype: 3, localPort: 8000, ackBacklog: 5, maxAckBacklog: 4, localAddr: '127.0.0.1' });
    expect(out[2]).toMatchObject({ type: 9, generation: 2, collected: -1 });
  });

  test('per-CPU signed state counters summed as u64 decode as signed', () => {
    const buf = new ArrayBuffer(TCP_STATS.size);
    const dv = new DataView(buf);
    dv.setBigUint64(TCP_STATS.offsets.current + 8 * 8, (1n << 64n) - 2n, true); // CLOSE_WAIT: -2
    dv.setBigUint64(TCP_STATS.offsets.entered + 8 * 1, 7n, true);
    const s = decodeTcpStats(buf);
    expect(s.current.CLOSE_WAIT).toBe(-2);
    expect(s.entered.ESTABLISHED).toBe(7);
  });
});

describe('/proc/net/tcp parsing', () => {
  const v4 = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000005 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:1F90 0100007F:D431 08 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 20 4 30 10 -1',
    '   2: 0100007F:D431 0100007F:1F90 05 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 20 4 30 10 -1',
  ].join('\n');
  const v6 = [
    '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 999 1 0000000000000000 100 0 0 10 0',
  ].join('\n');

  test('fields, addresses and states', () => {
    const s = parseProcNetTcp(v4, 4);
    expect(s[0]).toMatchObject({ localAddr: '127.0.0.1', localPort: 8080, state: 'LISTEN', rxQueue: 5, inode: 12345 });
    expect(s[1]).toMatchObject({ remotePort: 54321, state: 'CLOSE_WAIT' });
    expect(parseProcNetTcp(v6, 6)[0]).toMatchObject({ localAddr: '::1', localPort: 8080, rxQueue: 2 });
  });

  test('counts per port: local side, remote side, listen depth', () => {
    const c = countTcpSockets([8080], [...parseProcNetTcp(v4, 4), ...parseProcNetTcp(v6, 6)]).get(8080)!;
    expect(c.local).toEqual({ LISTEN: 2, CLOSE_WAIT: 1 });
    expect(c.remote).toEqual({ FIN_WAIT2: 1 });
    expect(c.listen).toEqual({ depth: 7, sockets: 2 });
  });
});
