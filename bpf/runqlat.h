/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* runqlat: runqueue latency of tracked processes (record layout). */
#ifndef PM_RUNQLAT_H
#define PM_RUNQLAT_H

#include "pm_common.h"

/* A wait longer than targ_min_us: who waited, how long, and who held the CPU. */
struct pm_runq_slow {
	struct pm_hdr hdr;
	__u32 pid; /* tgid of the waiting thread */
	__u32 tid;
	__u64 wait_ns;
	__u32 culprit_pid; /* tgid of the task switched out when it finally ran */
	__u32 culprit_tid;
	__u32 preempted; /* 1: the wait began with a preemption, 0: with a wakeup */
	__u32 pad;
	char comm[PM_COMM_LEN];
	char culprit_comm[PM_COMM_LEN];
};

/* Per tracked process, cumulative since tracking began. */
struct pm_cpu_stats {
	__u64 involuntary_switches; /* switched out while still runnable */
	__u64 voluntary_switches;
	__u64 slow_waits; /* waits above targ_min_us, counted even when a record is dropped */
	__u64 wakeups;
};

#endif
