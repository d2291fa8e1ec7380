/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* requests: HTTP requests read and not yet answered by tracked workers (map layouts). */
#ifndef PM_REQUESTS_H
#define PM_REQUESTS_H

#include "pm_common.h"

/* Bounds. */
#define PM_REQ_MAX_INFLIGHT 4096 /* (tgid, fd) pairs with a request read and not answered */
#define PM_REQ_LINE_MAX 128 /* bytes of the request line kept: method, target, version; never headers */

/* pm_request.flags */
#define PM_REQ_TRUNCATED 0x1 /* the line was longer than PM_REQ_LINE_MAX (or split across reads) */
#define PM_REQ_QUERY_CUT 0x2 /* a query string was dropped in the kernel */

/* One request in flight: key (tgid << 32 | fd) in map `requests`. */
struct pm_request {
	__u64 start_ns; /* bpf_ktime_get_boot_ns() when its request line was read */
	__u64 sock_cookie; /* the socket it came on: a new connection on a reused fd is another request */
	__u32 tid; /* the thread that read it */
	__u32 fd;
	__u16 len; /* bytes of line[] used (the rest is zero) */
	__u16 flags;
	__u32 pad;
	char line[PM_REQ_LINE_MAX]; /* "GET /report HTTP/1.1", no CR/LF */
};

/* What the probe did, summed over CPUs (map `req_stats`, key 0). */
struct pm_req_stats {
	__u64 captured; /* request lines stored */
	__u64 answered; /* a response ("HTTP/1.x", not 1xx) written on the same socket */
	__u64 closed; /* end of file or an error read on the socket: the peer is gone */
	__u64 replaced; /* the fd now names another socket: the old connection was closed unanswered */
	__u64 unreadable; /* the request bytes could not be read from user memory */
};

#endif
