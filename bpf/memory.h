/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * memory: page faults and last-known RSS of tracked processes, kept in kernel
 * maps keyed by tgid (map values only: no records). Both values carry the
 * process's start time, so a reused pid starts from zero, never from the
 * counters of the process that had the pid before.
 */
#ifndef PM_MEMORY_H
#define PM_MEMORY_H

#include "pm_common.h"

/* Per tracked process, cumulative since its first fault seen while tracked. */
struct pm_fault_stats {
	__u64 start_ns; /* start_boottime of the process these counts belong to */
	__u64 faults; /* page faults on user addresses (user mode + kernel mode, e.g. copy_to_user) */
	__u64 major; /* of which major: from task->maj_flt deltas, see memory.bpf.c */
	__u64 kernel_mode; /* of `faults`, taken in kernel mode */
	__u64 last_ns; /* CLOCK_BOOTTIME of the last fault */
};

/* The process's RSS as of ts_ns, refreshed from rss_stat at most every targ_rss_interval_ns. */
struct pm_rss_last {
	__u64 start_ns;
	__u64 ts_ns; /* CLOCK_BOOTTIME of the write */
	__u64 file; /* bytes */
	__u64 anon;
	__u64 swap;
	__u64 shmem;
	__u64 peak; /* highest file + anon + shmem written */
	__u64 writes; /* times the value was written */
};

#endif
