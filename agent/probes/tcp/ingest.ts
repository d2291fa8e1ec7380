/**
 * Resets and lingering CLOSE_WAIT are counted in the kernel (sampled each
 * tick); a full accept queue is worth a marker the moment it happens.
 */
import { marker, serviceSubject } from '../../core/markers';
import type { IngestContext, RecordHandlers } from '../../ingest/context';
import { RecordType } from '../../records';
import { TcpEvent, TcpEventRecord, TCP_EVENT_NAMES } from './index';

export function tcpHandlers(ctx: IngestContext): RecordHandlers {
  const onTcp = (r: TcpEventRecord) => {
    if (r.subtype !== TcpEvent.BacklogFull && r.subtype !== TcpEvent.ListenOverflow) return;
    const s = ctx.registry.serviceByTcpId(r.serviceId);
    if (!s) return;
    const name = TCP_EVENT_NAMES[r.subtype] ?? `event ${r.subtype}`;
    ctx.markers.raise(s, marker(ctx.clock.recMs(r.tsNs), 'backlog-full', serviceSubject(s.service.id), 'critical',
      `port ${r.localPort}: the accept queue is full (${r.ackBacklog} of ${r.maxAckBacklog})${r.subtype === TcpEvent.ListenOverflow ? '; a client\'s handshake was dropped' : ''}`,
      { depth: r.ackBacklog, max: r.maxAckBacklog, port: r.localPort }, { event: name }));
  };
  return [[RecordType.Tcp, onTcp]];
}
