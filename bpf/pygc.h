/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* pygc: CPython garbage-collection pauses from USDT python:gc__start/gc__done (record layout). */
#ifndef PM_PYGC_H
#define PM_PYGC_H

#include "pm_common.h"

#define PM_GC_GENERATIONS 3 /* CPython 3.x: generations 0, 1, 2 */
#define PM_GC_MAX_RUNNING 16384 /* threads inside a collection (bounded map) */

/* A collection slower than targ_gc_min_us. */
struct pm_gc_pause {
	struct pm_hdr hdr;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 generation;
	__u32 pad;
	__u64 duration_ns;
	__s64 collected; /* objects collected (gc__done argument; -1 on error) */
	char comm[PM_COMM_LEN];
};

/* Per tracked process, cumulative, per generation. */
struct pm_gc_stats {
	__u64 count[PM_GC_GENERATIONS];
	__u64 sum_ns[PM_GC_GENERATIONS];
	__u64 max_ns[PM_GC_GENERATIONS];
	__u64 collected[PM_GC_GENERATIONS];
	__u64 slow; /* pauses above targ_gc_min_us, counted even when a record is dropped */
	__u64 unmatched; /* gc__done without a gc__start seen (attached mid-collection) */
};

#endif
