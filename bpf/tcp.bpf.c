// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * TCP sockets of watched service ports: state transitions counted in the
 * kernel per port and state, the accept queue of the listener, retransmits and
 * resets. Records only for rare things: resets, a full accept queue, sockets
 * lingering in CLOSE_WAIT.
 *
 * Attribution is by the socket, never by `current`: on loopback the server
 * side's transitions run in softirq on the client's task. The agent writes the
 * ports to watch into `ports`, keyed by (network namespace, port): the
 * socket's own namespace (sock_net(sk)->ns.inum, the inode /proc/PID/ns/net
 * shows), so two containers listening on the same port stay apart. Local
 * port: the service's listener and its accepted children, which inherit the
 * local port; remote port: workers' outbound connections to an upstream.
 *
 * Cost: ~35k transitions/s under a gunicorn sync load, so an unwatched socket
 * costs two loads (its namespace) and one or two hash lookups, and a watched
 * one a per-CPU array update.
 */
#include "lib/common.bpf.h"
#include <bpf/bpf_endian.h>
#include "tcp.h"

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define CLOCK_MONOTONIC 1

#define TCP_ESTABLISHED 1
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7
#define TCP_CLOSE_WAIT 8
#define TCP_LISTEN 10

const volatile __u64 targ_close_wait_ms = 5000; /* CLOSE_WAIT longer than this is lingering */
const volatile __u64 targ_scan_ms = 1000; /* period of the in-kernel CLOSE_WAIT scan */
const volatile __u64 targ_rec_gap_ms = 10; /* at most one record per slot and subtype per gap */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PM_TCP_MAX_PORTS);
	__type(key, struct pm_tcp_key);
	__type(value, struct pm_tcp_port);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PM_TCP_MAX_SLOTS);
	__type(key, __u32); /* slot */
	__type(value, struct pm_tcp_stats);
} tcp_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PM_TCP_MAX_SLOTS);
	__type(key, __u32); /* slot */
	__type(value, struct pm_tcp_listen);
} tcp_listen SEC(".maps");

struct close_wait {
	__u64 since_ns; /* bpf_ktime_get_ns */
	__u32 slot;
	__u32 service_id;
	__u16 lport;
	__u16 rport;
	__u16 family;
	__u16 remote;
	__u32 reported;
	__u32 pad;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Sockets of watched ports in CLOSE_WAIT. LRU: bounded, oldest evicted. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_TCP_MAX_CLOSE_WAIT);
	__type(key, __u64); /* struct sock * */
	__type(value, struct close_wait);
} close_wait SEC(".maps");

/* One timer scanning close_wait every targ_scan_ms, armed at the first
 * CLOSE_WAIT: lingering sockets are reported even when nothing else happens. */
struct scan_timer {
	struct bpf_timer timer;
	__u64 armed;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_timer);
} scan_timer SEC(".maps");

struct watch {
	__u32 slot;
	__u32 service_id;
	__u32 remote;
};

/* The socket's network namespace (the inode /proc/PID/ns/net shows). */
static __always_inline __u32 sock_netns(const struct sock *sk)
{
	return sk->__sk_common.skc_net.net->ns.inum;
}

/* Which watched port (if any) a socket belongs to, in its own namespace: its
 * local port first, then its remote port. Works for full, request and
 * time-wait sockets alike (only sock_common fields are read). */
static __always_inline bool watch_lookup_port(const struct sock *sk, __u32 port, struct watch *w)
{
	struct pm_tcp_key key = { .netns = sock_netns(sk), .port = port };
	struct pm_tcp_port *p = bpf_map_lookup_elem(&ports, &key);
	if (p && (p->flags & PM_TCP_WATCH_LOCAL)) {
		w->slot = p->slot;
		w->service_id = p->service_id;
		w->remote = 0;
		return w->slot < PM_TCP_MAX_SLOTS;
	}
	key.port = bpf_ntohs(sk->__sk_common.skc_dport);
	p = bpf_map_lookup_elem(&ports, &key);
	if (p && (p->flags & PM_TCP_WATCH_REMOTE)) {
		w->slot = p->remote_slot;
		w->service_id = p->service_id;
		w->remote = 1;
		return w->slot < PM_TCP_MAX_SLOTS;
	}
	return false;
}

static __always_inline bool watch_lookup(const struct sock *sk, struct watch *w)
{
	return watch_lookup_port(sk, sk->__sk_common.skc_num, w);
}

/* The local port of a full socket. Moving to CLOSE releases the port
 * (__inet_put_port zeroes inet_num) before the tracepoint fires: the
 * source port field of the inet_sock still holds it then. */
static __always_inline __u32 full_sock_lport(const struct sock *sk)
{
	__u32 port = sk->__sk_common.skc_num;
	if (!port)
		port = bpf_ntohs(BPF_CORE_READ((const struct inet_sock *)sk, inet_sport));
	return port;
}

static __always_inline void copy_addrs(const struct sock *sk, __u16 *family, __u8 *saddr, __u8 *daddr)
{
	__u16 fam = sk->__sk_common.skc_family;
	*family = fam;
	if (fam == AF_INET6) {
		BPF_CORE_READ_INTO((struct in6_addr *)saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)daddr, sk, __sk_common.skc_v6_daddr);
	} else {
		__builtin_memset(saddr, 0, 16);
		__builtin_memset(daddr, 0, 16);
		*(__u32 *)saddr = sk->__sk_common.skc_rcv_saddr;
		*(__u32 *)daddr = sk->__sk_common.skc_daddr;
	}
}

/* The per-slot record gap: a reset storm becomes counters, not a flood. */
static __always_inline bool rec_allowed(__u32 slot, __u32 subtype)
{
	struct pm_tcp_listen *l = bpf_map_lookup_elem(&tcp_listen, &slot);
	if (!l)
		return false;
	__u64 now = bpf_ktime_get_boot_ns();
	__u32 i = subtype & 7;
	if (now - l->last_rec_ns[i] < targ_rec_gap_ms * 1000000)
		return false;
	l->last_rec_ns[i] = now;
	return true;
}

static __always_inline struct pm_tcp_event *event_reserve(struct watch *w, __u32 subtype)
{
	if (!rec_allowed(w->slot, subtype)) {
		struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &w->slot);
		if (s)
			s->records_suppressed++;
		return NULL;
	}
	struct pm_tcp_event *r = pm_reserve(sizeof(*r), PM_REC_TCP);
	if (!r)
		return NULL;
	r->subtype = subtype;
	r->service_id = w->service_id;
	r->remote = w->remote;
	r->ack_backlog = 0;
	r->max_ack_backlog = 0;
	r->reason = 0;
	r->duration_ns = 0;
	return r;
}

static __always_inline void event_fill_sock(struct pm_tcp_event *r, const struct sock *sk)
{
	r->lport = sk->__sk_common.skc_num;
	r->rport = bpf_ntohs(sk->__sk_common.skc_dport);
	r->state = sk->__sk_common.skc_state;
	copy_addrs(sk, &r->family, r->saddr, r->daddr);
}

/* Records the listener's queue seen at `depth`; sends BACKLOG_FULL or
 * LISTEN_OVERFLOW when the queue is at its maximum. */
static __always_inline void listen_update(struct watch *w, const struct sock *sk, __u32 depth,
					  __u32 max, __u32 subtype, __u32 state)
{
	struct pm_tcp_listen *l = bpf_map_lookup_elem(&tcp_listen, &w->slot);
	if (l) {
		l->port = sk->__sk_common.skc_num;
		l->depth = depth;
		l->max = max;
		if (depth > l->peak)
			l->peak = depth;
		l->updated_ns = bpf_ktime_get_boot_ns();
	}
	if (!subtype)
		return;
	struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &w->slot);
	if (s) {
		if (subtype == PM_TCP_EV_BACKLOG_FULL)
			s->backlog_full++;
		else
			s->listen_overflows++;
	}
	struct pm_tcp_event *r = event_reserve(w, subtype);
	if (!r)
		return;
	event_fill_sock(r, sk);
	r->state = state; /* the tracepoint fires before the state is stored */
	r->ack_backlog = depth;
	r->max_ack_backlog = max;
	pm_submit(r);
}

struct scan_ctx {
	__u64 now;
	__u64 min_ns;
};

static long close_wait_scan_one(struct bpf_map *map, __u64 *key, struct close_wait *v,
				struct scan_ctx *ctx)
{
	if (v->reported || ctx->now - v->since_ns < ctx->min_ns)
		return 0;
	v->reported = 1;
	__u32 slot = v->slot;
	struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &slot);
	if (s)
		s->close_wait_lingering++;
	struct watch w = { .slot = slot, .service_id = v->service_id, .remote = v->remote };
	struct pm_tcp_event *r = event_reserve(&w, PM_TCP_EV_CLOSE_WAIT_LINGER);
	if (!r)
		return 0;
	r->lport = v->lport;
	r->rport = v->rport;
	r->family = v->family;
	r->state = TCP_CLOSE_WAIT;
	r->duration_ns = ctx->now - v->since_ns;
	__builtin_memcpy(r->saddr, v->saddr, 16);
	__builtin_memcpy(r->daddr, v->daddr, 16);
	pm_submit(r);
	return 0;
}

static int scan_timer_fire(void *map, __u32 *key, struct scan_timer *t)
{
	struct scan_ctx ctx = { .now = bpf_ktime_get_ns(), .min_ns = targ_close_wait_ms * 1000000 };
	bpf_for_each_map_elem(&close_wait, close_wait_scan_one, &ctx, 0);
	bpf_timer_start(&t->timer, targ_scan_ms * 1000000, 0);
	return 0;
}

static __always_inline void scan_timer_arm(void)
{
	__u32 zero = 0;
	struct scan_timer *t = bpf_map_lookup_elem(&scan_timer, &zero);
	if (!t || t->armed)
		return;
	t->armed = 1; /* a racing CPU's bpf_timer_init fails with EBUSY: harmless */
	if (bpf_timer_init(&t->timer, &scan_timer, CLOCK_MONOTONIC))
		return;
	bpf_timer_set_callback(&t->timer, scan_timer_fire);
	bpf_timer_start(&t->timer, targ_scan_ms * 1000000, 0);
}

static __always_inline void close_wait_enter(const struct sock *sk, struct watch *w)
{
	struct close_wait v = {
		.since_ns = bpf_ktime_get_ns(),
		.slot = w->slot,
		.service_id = w->service_id,
		.lport = sk->__sk_common.skc_num,
		.rport = bpf_ntohs(sk->__sk_common.skc_dport),
		.remote = w->remote,
	};
	copy_addrs(sk, &v.family, v.saddr, v.daddr);
	__u64 key = (__u64)sk;
	bpf_map_update_elem(&close_wait, &key, &v, BPF_ANY);
	scan_timer_arm();
}

/* Leaving CLOSE_WAIT: a lingerer the scan has not reported yet is reported now. */
static __always_inline void close_wait_leave(const struct sock *sk, struct watch *w, int newstate)
{
	__u64 key = (__u64)sk;
	struct close_wait *v = bpf_map_lookup_elem(&close_wait, &key);
	if (!v)
		return;
	__u64 d = bpf_ktime_get_ns() - v->since_ns;
	__u32 reported = v->reported;
	bpf_map_delete_elem(&close_wait, &key);
	if (reported || d < targ_close_wait_ms * 1000000)
		return;
	struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &w->slot);
	if (s)
		s->close_wait_lingering++;
	struct pm_tcp_event *r = event_reserve(w, PM_TCP_EV_CLOSE_WAIT_LINGER);
	if (!r)
		return;
	event_fill_sock(r, sk);
	r->lport = full_sock_lport(sk);
	r->state = newstate;
	r->duration_ns = d;
	pm_submit(r);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	struct watch w;
	__u32 lport = full_sock_lport(sk);
	if (!watch_lookup_port(sk, lport, &w))
		return 0;
	struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &w.slot);
	if (!s)
		return 0;
	/* Per-CPU slot: plain increments. A new child of a listener is cloned
	 * in state LISTEN and set to SYN_RECV: nothing left LISTEN then. */
	bool new_child = oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV;
	/* States are 1..13: the masks are no-ops the verifier can see. */
	__u32 ns = (__u32)newstate & (PM_TCP_STATES - 1);
	__u32 os = (__u32)oldstate & (PM_TCP_STATES - 1);
	s->transitions++;
	s->entered[ns]++;
	if (ns != TCP_CLOSE)
		s->current[ns]++;
	if (!new_child && os != TCP_CLOSE)
		s->current[os]--;

	if (new_child) {
		/* The child is a copy of its listener, taken before it joins the
		 * accept queue: its sk_ack_backlog is the queue's depth so far. */
		__u32 depth = sk->sk_ack_backlog + 1, max = sk->sk_max_ack_backlog;
		listen_update(&w, sk, depth, max, depth >= max ? PM_TCP_EV_BACKLOG_FULL : 0, TCP_SYN_RECV);
	} else if (newstate == TCP_LISTEN) {
		listen_update(&w, sk, sk->sk_ack_backlog, sk->sk_max_ack_backlog, 0, TCP_LISTEN);
	}
	if (newstate == TCP_CLOSE_WAIT)
		close_wait_enter(sk, &w);
	else if (oldstate == TCP_CLOSE_WAIT)
		close_wait_leave(sk, &w, newstate);
	return 0;
}

/* The listener retransmits a SYN-ACK: when its queue is over full, the
 * client's ACK was dropped (LISTEN_OVERFLOW, as LINUX_MIB_LISTENOVERFLOWS). */
SEC("tp_btf/tcp_retransmit_synack")
int BPF_PROG(tcp_retransmit_synack, const struct sock *sk, const struct request_sock *req)
{
	struct watch w;
	if (!watch_lookup(sk, &w))
		return 0;
	__u32 depth = sk->sk_ack_backlog, max = sk->sk_max_ack_backlog;
	listen_update(&w, sk, depth, max, depth > max ? PM_TCP_EV_LISTEN_OVERFLOW : 0, TCP_LISTEN);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb, int err)
{
	struct watch w;
	if (!watch_lookup(sk, &w))
		return 0;
	struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &w.slot);
	if (s)
		s->retransmits++;
	return 0;
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset, const struct sock *sk, const struct sk_buff *skb, int reason)
{
	struct watch w;
	struct pm_tcp_event *r;
	if (sk) {
		if (!watch_lookup(sk, &w))
			return 0;
	} else if (skb) {
		/* No socket (a segment to a closed port): the segment's tcp
		 * header, at skb->data here, names our port as its destination,
		 * and the device it came in on names the namespace. */
		struct tcphdr th;
		if (bpf_probe_read_kernel(&th, sizeof(th), BPF_CORE_READ(skb, data)))
			return 0;
		struct pm_tcp_key key = { .netns = BPF_CORE_READ(skb, dev, nd_net.net, ns.inum), .port = bpf_ntohs(th.dest) };
		__u32 port = key.port;
		struct pm_tcp_port *p = bpf_map_lookup_elem(&ports, &key);
		if (!p || !(p->flags & PM_TCP_WATCH_LOCAL) || p->slot >= PM_TCP_MAX_SLOTS)
			return 0;
		w.slot = p->slot;
		w.service_id = p->service_id;
		w.remote = 0;
		struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &w.slot);
		if (s)
			s->rst_sent++;
		r = event_reserve(&w, PM_TCP_EV_RST_SENT);
		if (!r)
			return 0;
		r->lport = port;
		r->rport = bpf_ntohs(th.source);
		r->family = 0; /* unknown without a socket */
		r->state = 0;
		__builtin_memset(r->saddr, 0, 16);
		__builtin_memset(r->daddr, 0, 16);
		r->reason = reason;
		pm_submit(r);
		return 0;
	} else {
		return 0;
	}
	struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &w.slot);
	if (s)
		s->rst_sent++;
	r = event_reserve(&w, PM_TCP_EV_RST_SENT);
	if (!r)
		return 0;
	event_fill_sock(r, sk);
	r->reason = reason;
	pm_submit(r);
	return 0;
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset, struct sock *sk)
{
	struct watch w;
	if (!watch_lookup(sk, &w))
		return 0;
	struct pm_tcp_stats *s = bpf_map_lookup_elem(&tcp_stats, &w.slot);
	if (s)
		s->rst_recv++;
	struct pm_tcp_event *r = event_reserve(&w, PM_TCP_EV_RST_RECV);
	if (!r)
		return 0;
	event_fill_sock(r, sk);
	pm_submit(r);
	return 0;
}
