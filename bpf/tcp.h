/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* tcp: TCP socket states, backlog, retransmits and resets per watched service port, in its own
 * network namespace (record layout). */
#ifndef PM_TCP_H
#define PM_TCP_H

#include "pm_common.h"

/* Bounds. */
#define PM_TCP_MAX_PORTS 128 /* entries in `ports` (watched (netns, port) pairs, local or remote) */
#define PM_TCP_MAX_SLOTS 256 /* counter slots (a port watched both ways uses two) */
#define PM_TCP_STATES 16 /* TCP_ESTABLISHED (1) .. TCP_BOUND_INACTIVE (13), rounded up */
#define PM_TCP_MAX_CLOSE_WAIT 8192 /* sockets of watched ports currently in CLOSE_WAIT */

/* What the agent writes into `ports` for a port. */
#define PM_TCP_WATCH_LOCAL 0x1 /* sockets whose local port is this port (the service's listener and its children) */
#define PM_TCP_WATCH_REMOTE 0x2 /* sockets connecting to this port (workers' outbound connections) */

/* Key of `ports`: a port is watched in one network namespace (every pod listens on :8000). */
struct pm_tcp_key {
	__u32 netns; /* inode of the namespace, as /proc/PID/ns/net shows it (sock_net(sk)->ns.inum) */
	__u32 port; /* host order */
};

struct pm_tcp_port {
	__u32 service_id;
	__u32 slot; /* counter slot for local-port matches, < PM_TCP_MAX_SLOTS */
	__u32 remote_slot; /* counter slot for remote-port matches */
	__u32 flags; /* PM_TCP_WATCH_* */
};

/* Record subtypes (pm_tcp_event.subtype). */
#define PM_TCP_EV_RST_SENT 1
#define PM_TCP_EV_RST_RECV 2
#define PM_TCP_EV_BACKLOG_FULL 3 /* a new connection filled the accept queue to its maximum */
#define PM_TCP_EV_LISTEN_OVERFLOW 4 /* a SYN-ACK retransmitted while the accept queue was over full */
#define PM_TCP_EV_CLOSE_WAIT_LINGER 5 /* a socket in CLOSE_WAIT longer than targ_close_wait_ms */

/* A rare TCP event on a watched port. */
struct pm_tcp_event {
	struct pm_hdr hdr;
	__u32 subtype; /* PM_TCP_EV_* */
	__u32 service_id;
	__u16 lport;
	__u16 rport;
	__u16 family; /* AF_INET (2) or AF_INET6 (10) */
	__u16 state; /* socket state at the event (CLOSE_WAIT: 8 while still lingering) */
	__u32 ack_backlog; /* accept queue depth (backlog events) */
	__u32 max_ack_backlog; /* accept queue maximum (backlog events) */
	__u32 reason; /* enum sk_rst_reason for RST_SENT */
	__u32 remote; /* 1: matched by the remote port (outbound socket) */
	__u64 duration_ns; /* time in CLOSE_WAIT (CLOSE_WAIT_LINGER) */
	__u8 saddr[16]; /* local address (IPv4 in the first 4 bytes) */
	__u8 daddr[16]; /* remote address */
};

/* Per counter slot, per CPU (summed by the reader). `current` is signed: a
 * socket that existed before the probe loaded counts -1 when it leaves. */
struct pm_tcp_stats {
	__s64 current[PM_TCP_STATES]; /* sockets now in each state (CLOSE is never counted) */
	__u64 entered[PM_TCP_STATES]; /* transitions into each state */
	__u64 transitions;
	__u64 retransmits;
	__u64 rst_sent;
	__u64 rst_recv;
	__u64 backlog_full; /* new connections that filled the accept queue */
	__u64 listen_overflows; /* SYN-ACK retransmits while the accept queue was over full */
	__u64 close_wait_lingering; /* sockets found in CLOSE_WAIT longer than targ_close_wait_ms */
	__u64 records_suppressed; /* rare events not sent because of the per-slot record gap */
};

/* Per counter slot, shared: the listen queue seen at the last event. */
struct pm_tcp_listen {
	__u32 port;
	__u32 depth; /* accept queue depth after the last new connection / SYN-ACK retransmit */
	__u32 max; /* sk_max_ack_backlog of the listener */
	__u32 peak; /* deepest seen since load (or since the agent zeroed it) */
	__u64 updated_ns; /* bpf_ktime_get_boot_ns of the last update */
	__u64 last_rec_ns[8]; /* per subtype: last record sent (rate limit) */
};

#endif
