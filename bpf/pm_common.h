/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The record layout shared by the BPF programs, the native addon and (through
 * the offsets the addon reports) the TypeScript decoder. Fixed-width fields
 * only; every record starts with struct pm_hdr and is a multiple of 8 bytes.
 * Record type numbers are fixed forever: add, never renumber.
 */
#ifndef PM_COMMON_H
#define PM_COMMON_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define PM_LAYOUT_VERSION 1

#define PM_COMM_LEN 16
/* Bounds shared by every probe. */
#define PM_MAX_TRACKED 8192 /* tracked processes (tgids) in the pid filter */
#define PM_MAX_THREADS 65536 /* threads with a pending runnable timestamp */
#define PM_HIST_SLOTS 32 /* log2 µs buckets: slot 0 < 1 µs, slot i in [2^(i-1), 2^i) µs */
#define PM_REC_MAX 32 /* record types, sizes the drop counters */

enum pm_record_type {
	PM_REC_RUNQ_SLOW = 1,
	PM_REC_FORK = 2,
	PM_REC_EXEC = 3,
	PM_REC_EXIT = 4,
	PM_REC_SIGNAL = 5,
	PM_REC_OOM = 6,
	PM_REC_BIO_SLOW = 7,
	PM_REC_TCP = 8,
	PM_REC_GC = 9,
	PM_REC_FLOOD = 10,
};

/* Flags kept per tracked process in the pid filter. */
#define PM_TRACK_FOLLOW_FORKS 0x1 /* children forked by it are tracked too */

struct pm_tracked {
	__u64 start_ns; /* task start_boottime when tracked: identity with the pid */
	__u32 flags;
	__u32 pad;
};

struct pm_hdr {
	__u16 type;
	__u16 size; /* whole record, header included */
	__u32 cpu;
	__u64 ts_ns; /* bpf_ktime_get_boot_ns(): CLOCK_BOOTTIME */
};

/* log2 histogram with count, sum and max, updated with atomics. */
struct pm_hist {
	__u64 slots[PM_HIST_SLOTS];
	__u64 count;
	__u64 sum_ns;
	__u64 max_ns;
};

#endif /* PM_COMMON_H */
