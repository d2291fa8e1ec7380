/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* disk: block I/O latency per device and per tracked process, D-state time (record layout). */
#ifndef PM_DISK_H
#define PM_DISK_H

#include "pm_common.h"

/* Bounds. */
#define PM_DISK_MAX_INFLIGHT 16384 /* block requests between issue and completion */
#define PM_DISK_MAX_DEVICES 256 /* block devices with statistics */
#define PM_DISK_MAX_DSTATE 16384 /* threads of tracked processes currently in D state */

/* Block request operation (REQ_OP_* & REQ_OP_MASK), as far as we classify it. */
#define PM_DISK_OP_READ 0
#define PM_DISK_OP_WRITE 1
#define PM_DISK_OP_FLUSH 2
#define PM_DISK_OP_DISCARD 3

/* A block request slower than targ_slow_us, issue to completion. */
struct pm_bio_slow {
	struct pm_hdr hdr;
	__u32 dev; /* kernel dev_t of the disk: major << 20 | minor */
	__u32 op; /* REQ_OP_* */
	__u64 sector;
	__u64 latency_ns;
	__u32 bytes;
	__u32 pid; /* tgid of the issuing task; 0 when a kernel thread issued it */
	__u32 tid;
	__u32 error; /* blk_status_t at completion, 0 = ok */
	__u32 tracked; /* 1: the issuing process was tracked at issue time */
	__u32 pad;
	char comm[PM_COMM_LEN]; /* issuing task (kworker/... for write-back) */
};

/* Counters kept per device (key: dev) and per tracked process (key: tgid). */
struct pm_disk_stats {
	struct pm_hist lat; /* issue -> completion */
	__u64 read_ops;
	__u64 read_bytes;
	__u64 write_ops;
	__u64 write_bytes;
	__u64 flush_ops;
	__u64 other_ops; /* discard, write-zeroes, ... */
	__u64 other_bytes;
	__u64 errors;
	__u64 slow; /* requests above targ_slow_us, counted even when the record is dropped */
	__u64 last_dev; /* per process: dev of the latest request it issued (where its I/O goes) */
};

#endif
