/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* pygc: CPython garbage-collection pauses, from USDT python:gc__start/gc__done or from a
 * uprobe/uretprobe pair on the collector's entry point (record layout). */
#ifndef PM_PYGC_H
#define PM_PYGC_H

#include "pm_common.h"

#define PM_GC_GENERATIONS 3 /* CPython 3.x: generations 0, 1, 2 */
#define PM_GC_MAX_RUNNING 16384 /* threads inside a collection (bounded map) */
#define PM_GC_GEN_UNKNOWN 0xffffffffu /* generation not readable (the collector is a compiler clone) */

/*
 * Attach cookie of the uprobe on a collector's entry point: where it finds the
 * generation. Bits 0-7: PM_GC_GEN_FROM_*; bits 8-15: the argument index (0 = first)
 * or the constant generation.
 */
#define PM_GC_GEN_FROM_UNKNOWN 0
#define PM_GC_GEN_FROM_ARG 1
#define PM_GC_GEN_FROM_CONST 2
/*
 * The generation whose `collections` counter the call increments, read at entry
 * and return from tstate->interp->gc.generation_stats (3.13: the collector may
 * be asked to choose, GENERATION_AUTO = -1, and may return at once, having
 * collected nothing, when another thread collects); the argument when the
 * counters cannot be read.
 * Bits 16-23: offset of `interp` in PyThreadState (the first argument); bits 24-31:
 * size of one gc_generation_stats; bits 32-63: offset of generation_stats[0] in
 * PyInterpreterState (its first field is `collections`).
 */
#define PM_GC_GEN_FROM_ARG_OR_STATS 3

/* A collection slower than targ_gc_min_us. */
struct pm_gc_pause {
	struct pm_hdr hdr;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 generation; /* 0..2, or PM_GC_GEN_UNKNOWN */
	__u32 pad;
	__u64 duration_ns;
	__s64 collected; /* objects collected (gc__done argument or the collector's return value; -1 on error) */
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
	/* Collections whose generation could not be read (added after the fields above). */
	__u64 unknown_count;
	__u64 unknown_sum_ns;
	__u64 unknown_max_ns;
	__u64 unknown_collected;
};

#endif
