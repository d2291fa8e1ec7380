// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Requests in flight: for every tracked worker, the HTTP request line it read
 * on a socket and has not answered yet, with when it read it. The agent reads
 * the map when a worker dies (and for a live worker on request).
 *
 * Hooks: the socket layer's own tracepoints sock_recv_length and
 * sock_send_length, which fire inside the read/recv/send system calls after
 * the data moved. The system call's arguments (fd, user buffer) come from the
 * task's saved registers, so no system-call hook runs for anyone else's calls.
 *
 * Captured: only the request line ("GET /report HTTP/1.1"), at most
 * PM_REQ_LINE_MAX bytes, cut at the first CR/LF in the kernel; the query
 * string is dropped in the kernel too unless targ_keep_query is set. Never
 * headers, never bodies. Answered: the worker wrote "HTTP/1.x NNN" (not 1xx)
 * on the same socket; gone: it read end-of-file or an error there, or the fd
 * now names another socket. Plain HTTP/1.x only: TLS and HTTP/2 are not read.
 */
#include "lib/common.bpf.h"
#include "requests.h"

#define SOCK_STREAM 1
#define MSG_PEEK 0x2
#define EAGAIN 11
#define EINTR 4

/* x86_64 system call numbers whose buffer we can find. */
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47

#define METHOD_MAX 10 /* longest method token accepted ("PROPPATCH" is 9) */

const volatile __u32 targ_keep_query = 0;

/* LRU: a request whose end was never seen (its connection closed unnoticed)
 * ages out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_REQ_MAX_INFLIGHT);
	__type(key, __u64); /* tgid << 32 | fd */
	__type(value, struct pm_request);
} requests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pm_req_stats);
} req_stats SEC(".maps");

/* Per-CPU room for one request being parsed: the bytes read, the line built
 * from them and the record. Offsets and sizes are masked with RAW_MASK for the
 * verifier, so the buffers hold a masked offset plus a masked size. */
#define RAW_MASK (2 * PM_REQ_LINE_MAX - 1)
struct parse {
	struct pm_request r;
	__u32 end, query, rest, pad; /* positions found in raw */
	char raw[4 * PM_REQ_LINE_MAX];
	char out[4 * PM_REQ_LINE_MAX];
};

/* Each search loop returns from a different iteration with a different exact
 * position, and the verifier would walk the rest of the program once per
 * position (and per pair of them: E2BIG). Storing a position in the map and
 * reading it back leaves it a bounded unknown: one walk for all. */
#define FORGET(p, field, value)                     \
	({                                          \
		*(volatile __u32 *)&(p)->field = (value); \
		*(volatile __u32 *)&(p)->field;           \
	})

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct parse);
} scratch SEC(".maps");

static __always_inline struct pm_req_stats *stats(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&req_stats, &zero);
}

/* The socket system call the current task is in, its fd and the user address
 * of its first data byte; 0 when it is not one we read (sendfile, io_uring...). */
static __always_inline __u64 syscall_buffer(__u32 *fd, __u32 *count, __u32 want_send)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (!regs)
		return 0;
	long nr = regs->orig_ax;
	__u64 arg = regs->si;
	*fd = regs->di;
	*count = regs->dx;
	struct iovec iov;
	if (want_send ? (nr == NR_WRITE || nr == NR_SENDTO) : (nr == NR_READ || nr == NR_RECVFROM))
		return arg;
	if (want_send ? nr == NR_SENDMSG : nr == NR_RECVMSG) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)arg))
			return 0;
		arg = (__u64)msg.msg_iov;
	} else if (!(want_send ? nr == NR_WRITEV : nr == NR_READV)) {
		return 0;
	}
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)arg))
		return 0;
	*count = iov.iov_len;
	return (__u64)iov.iov_base;
}

/* "GET /x", "OPTIONS *", "GET http://h/x": 1..METHOD_MAX capitals, a space, a
 * target. Returns the method's length, 0 when it is not a request line. */
static __always_inline __u32 method_len(const char *b, __u32 n)
{
	__u32 i;
	for (i = 0; i < METHOD_MAX + 1; i++) {
		if (i >= n)
			return 0;
		char c = b[i];
		if (c == ' ')
			break;
		if (c < 'A' || c > 'Z')
			return 0;
	}
	if (i == 0 || i > METHOD_MAX || i + 1 >= n)
		return 0;
	char t = b[(i + 1) & RAW_MASK];
	return t == '/' || t == '*' || t == 'h' ? i : 0;
}

/* The first CR or LF in b[0, n), else n. */
static __always_inline __u32 find_eol(const char *b, __u32 n)
{
	for (__u32 i = 0; i < PM_REQ_LINE_MAX; i++) {
		if (i >= n)
			return n;
		char c = b[i];
		if (c == '\r' || c == '\n')
			return i;
	}
	return n;
}

/* The first `want` in b[from, end), else end. */
static __always_inline __u32 find_char(const char *b, __u32 from, __u32 end, char want)
{
	for (__u32 k = 0; k < PM_REQ_LINE_MAX; k++) {
		__u32 i = from + k;
		if (i >= end)
			return end;
		if (b[i & RAW_MASK] == want)
			return i;
	}
	return end;
}

/* r->line = the request line in p->raw (n bytes): up to the first CR/LF,
 * without the query string unless asked for ("GET /a?b=1 HTTP/1.1" ->
 * "GET /a HTTP/1.1"). */
static __always_inline void copy_line(struct parse *p, __u32 n, __u32 method)
{
	struct pm_request *r = &p->r;
	__u32 end = FORGET(p, end, find_eol(p->raw, n));
	if (end > PM_REQ_LINE_MAX)
		return;
	__u32 query = end, rest = end;
	if (!targ_keep_query) {
		query = FORGET(p, query, find_char(p->raw, method + 1, end, '?'));
		if (query < end)
			rest = FORGET(p, rest, find_char(p->raw, query, end, ' '));
	}
	/* line = raw[0, query) + raw[rest, end): all within the first PM_REQ_LINE_MAX bytes. */
	__u32 head = query & RAW_MASK, tail = (rest <= end ? end - rest : 0) & RAW_MASK;
	rest &= RAW_MASK;
	__builtin_memset(p->out, 0, 2 * PM_REQ_LINE_MAX);
	bpf_probe_read_kernel(p->out, head, p->raw);
	bpf_probe_read_kernel(p->out + head, tail, p->raw + rest);
	__builtin_memcpy(r->line, p->out, PM_REQ_LINE_MAX);
	r->len = head + tail < PM_REQ_LINE_MAX ? head + tail : PM_REQ_LINE_MAX;
	r->flags = (end == n ? PM_REQ_TRUNCATED : 0) | (query < end ? PM_REQ_QUERY_CUT : 0);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	if (flags & MSG_PEEK)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!pm_tracked_lookup(tgid))
		return 0;
	if (sk->sk_type != SOCK_STREAM)
		return 0;
	__u32 fd, count;
	__u64 buf = syscall_buffer(&fd, &count, 0);
	if (!buf)
		return 0;
	__u64 key = (__u64)tgid << 32 | fd;
	struct pm_request *old = bpf_map_lookup_elem(&requests, &key);
	struct pm_req_stats *st = stats();
	if (ret <= 0) {
		/* End of file or a connection error: the peer is gone, no answer will follow. */
		if (ret == -EAGAIN || ret == -EINTR || !old || old->sock_cookie != bpf_get_socket_cookie(sk))
			return 0;
		bpf_map_delete_elem(&requests, &key);
		if (st)
			__sync_fetch_and_add(&st->closed, 1);
		return 0;
	}
	/* The same connection with its request unanswered: this is its body (or a
	 * pipelined request, whose turn comes when the first is answered). */
	if (old && old->sock_cookie == bpf_get_socket_cookie(sk))
		return 0;

	__u32 zero = 0;
	struct parse *p = bpf_map_lookup_elem(&scratch, &zero);
	if (!p)
		return 0;
	__u32 n = ret < PM_REQ_LINE_MAX ? ret : PM_REQ_LINE_MAX;
	if (count < n)
		n = count;
	if (n < 4)
		return 0;
	/* 1..PM_REQ_LINE_MAX in a form the verifier sees through clang's copies. */
	barrier_var(n);
	n = ((n - 1) & (PM_REQ_LINE_MAX - 1)) + 1;
	if (bpf_probe_read_user(p->raw, n, (void *)buf)) {
		if (st)
			__sync_fetch_and_add(&st->unreadable, 1);
		return 0;
	}
	__u32 method = method_len(p->raw, n);
	if (!method)
		return 0;
	struct pm_request *r = &p->r;
	__builtin_memset(r, 0, sizeof(*r));
	r->start_ns = bpf_ktime_get_boot_ns();
	r->sock_cookie = bpf_get_socket_cookie(sk);
	r->tid = (__u32)bpf_get_current_pid_tgid();
	r->fd = fd;
	copy_line(p, n, method);
	if (old) {
		if (st)
			__sync_fetch_and_add(&st->replaced, 1);
	}
	bpf_map_update_elem(&requests, &key, r, BPF_ANY);
	if (st)
		__sync_fetch_and_add(&st->captured, 1);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!pm_tracked_lookup(tgid))
		return 0;
	__u32 fd, count;
	__u64 buf = syscall_buffer(&fd, &count, 1);
	if (!buf)
		return 0;
	__u64 key = (__u64)tgid << 32 | fd;
	struct pm_request *r = bpf_map_lookup_elem(&requests, &key);
	if (!r)
		return 0;
	struct pm_req_stats *st = stats();
	if (r->sock_cookie != bpf_get_socket_cookie(sk)) {
		/* The fd names another socket now: the request's connection was closed unanswered. */
		bpf_map_delete_elem(&requests, &key);
		if (st)
			__sync_fetch_and_add(&st->replaced, 1);
		return 0;
	}
	char status[12];
	if (count < sizeof(status) || bpf_probe_read_user(status, sizeof(status), (void *)buf))
		return 0;
	/* "HTTP/1.1 200": a final response; "HTTP/1.1 100 Continue" is not. */
	if (status[0] != 'H' || status[1] != 'T' || status[2] != 'T' || status[3] != 'P' || status[4] != '/' ||
	    status[5] != '1' || status[6] != '.' || status[8] != ' ' || status[9] == '1')
		return 0;
	bpf_map_delete_elem(&requests, &key);
	if (st)
		__sync_fetch_and_add(&st->answered, 1);
	return 0;
}
