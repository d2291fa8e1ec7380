/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* runqlat: runqueue latency and where the time of tracked processes goes (record layout). */
#ifndef PM_RUNQLAT_H
#define PM_RUNQLAT_H

#include "pm_common.h"

/* Bounds. */
#define PM_MAX_TIMED_THREADS 32768 /* threads of tracked processes with a state and time counters */
#define PM_SYSCALL_MAX 512 /* system call numbers classified (x86_64 has fewer) */

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

/*
 * Where a thread's time goes: the state it has been in since its last
 * scheduler transition (sched_switch out/in, sched_wakeup). Numbers are fixed
 * forever: they index pm_time_acct.ns and the agent's bucket fields.
 */
enum pm_time_class {
	PM_TC_NONE = 0, /* not known yet (first seen), or dead: not accounted */
	PM_TC_ONCPU = 1,
	PM_TC_RUNQ = 2, /* runnable, waiting for a CPU */
	PM_TC_THROTTLED = 3, /* runnable, but its cgroup's CPU quota is spent */
	PM_TC_DSTATE = 4, /* uninterruptible sleep in a system call (disk I/O, ...) */
	PM_TC_FAULT = 5, /* uninterruptible sleep inside a page fault (major faults, swap-in) */
	PM_TC_NET = 6, /* sleeping in a socket, pipe or poll system call */
	PM_TC_LOCK = 7, /* sleeping on a futex (locks, the GIL) or a file lock */
	PM_TC_TIMER = 8, /* sleeping in nanosleep */
	PM_TC_OTHER = 9, /* any other sleep (wait4, signals, stopped...) */
};
#define PM_TIME_CLASSES 10

/* Cumulative time per class, per thread and per process. */
struct pm_time_acct {
	__u64 ns[PM_TIME_CLASSES]; /* indexed by pm_time_class; [0] stays 0 */
};

/* Per tracked process, cumulative since tracking began. */
struct pm_cpu_stats {
	__u64 involuntary_switches; /* switched out while still runnable */
	__u64 voluntary_switches;
	__u64 slow_waits; /* waits above targ_min_us, counted even when a record is dropped */
	__u64 wakeups;
	struct pm_time_acct time;
	__u64 dstate_syscall; /* 1 + number of the system call of the latest D sleep in one (0: none yet) */
};

/* Per thread of a tracked process (map `threads`, key tid). */
struct pm_thread_time {
	__u64 since_ns; /* bpf_ktime_get_ns() of its last transition */
	__u32 tgid;
	__u16 state; /* pm_time_class since since_ns */
	__u16 preempted; /* a runnable wait began with a preemption (1) or a wakeup (0) */
	__u32 syscall; /* 1 + number of the system call it sleeps in (0: none) */
	__u32 pad;
	struct pm_time_acct time;
};

#endif
