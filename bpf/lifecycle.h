/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * lifecycle: fork, exec, exit, signals and OOM kills of tracked processes
 * (record layouts). Every record carries the task's start time (start_boottime,
 * CLOCK_BOOTTIME ns): pid + start time is a process's identity, so a reused
 * pid is never mistaken for the process that had it before.
 * Memory amounts are bytes (pages << page_shift, set at load time).
 */
#ifndef PM_LIFECYCLE_H
#define PM_LIFECYCLE_H

#include "pm_common.h"

#define PM_PATH_LEN 256 /* exec filename; longer paths are cut (NUL-terminated) */

/* pm_fork.tracked */
#define PM_FORK_NOT_TRACKED 0 /* parent does not follow forks, or a thread */
#define PM_FORK_TRACKED 1 /* the child was added to the pid filter */
#define PM_FORK_TRACK_FULL 2 /* the pid filter was full: child not tracked */

/* An exec record of a process the filter does not track yet, whose new comm
 * names a Python server (python*, gunicorn, uvicorn, uwsgi, ...): the agent
 * looks at it at once, so a service that dies within a second is still seen. */
#define PM_EXEC_CANDIDATE 0x1

/* A process or thread created by a tracked process. */
struct pm_fork {
	struct pm_hdr hdr;
	__u32 parent_pid; /* tgid */
	__u32 parent_tid;
	__u32 child_pid; /* tgid (== parent_pid for a thread) */
	__u32 child_tid;
	__u64 parent_start_ns; /* start_boottime of the parent process (group leader) */
	__u64 child_start_ns; /* start_boottime of the new task */
	__u32 is_thread; /* 1: a new thread in the same process */
	__u32 tracked; /* PM_FORK_* */
	char parent_comm[PM_COMM_LEN];
	char child_comm[PM_COMM_LEN];
};

/* A successful execve by a tracked process (comm is already the new one). */
struct pm_exec {
	struct pm_hdr hdr;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 old_tid; /* the exec'ing thread's tid before de_thread() made it the leader */
	__u32 flags; /* PM_EXEC_* */
	__u64 start_ns;
	char comm[PM_COMM_LEN];
	char filename[PM_PATH_LEN];
};

/* A thread or process of a tracked process exits (group_dead: the last thread). */
struct pm_exit {
	struct pm_hdr hdr;
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 ppid; /* tgid of the real parent */
	__u32 exit_code; /* wait status: (status << 8) | termsig | 0x80 if core dumped */
	__u64 start_ns; /* start_boottime of the process (group leader) */
	__u32 group_dead; /* 1: process exit (last thread), 0: thread exit */
	__u32 mm_present; /* 1: the rss_* fields were read from task->mm at exit */
	__u64 rss_file;
	__u64 rss_anon;
	__u64 rss_swap; /* swap entries, not resident */
	__u64 rss_shmem;
	__u64 rss_peak; /* max(mm->hiwater_rss, current rss) */
	__u64 min_flt; /* this thread */
	__u64 maj_flt;
	__u64 proc_min_flt; /* whole process: dead threads' sum + this thread */
	__u64 proc_maj_flt;
	char comm[PM_COMM_LEN];
};

/* pm_signal.kernel */
#define PM_SIG_FROM_USER 0 /* kill/tgkill/sigqueue by sender_pid */
#define PM_SIG_FROM_KERNEL 1 /* a fault, the OOM killer, a timer... */

/* A signal of the watched set generated for a tracked process. */
struct pm_signal {
	struct pm_hdr hdr;
	__u32 pid; /* target tgid */
	__u32 tid; /* target tid */
	__u32 sender_pid; /* tgid of the task that generated it (current) */
	__u32 sender_tid;
	__u64 start_ns; /* target's start_boottime */
	__s32 sig;
	__s32 si_code; /* SI_USER 0, SI_KERNEL 0x80, SI_TKILL -6, SEGV_MAPERR 1 ... */
	__s32 result; /* TRACE_SIGNAL_DELIVERED 0, IGNORED 1, ALREADY_PENDING 2, OVERFLOW_FAIL 3, LOSE_INFO 4 */
	__u32 group; /* 1: sent to the whole thread group */
	__u32 kernel; /* PM_SIG_FROM_* */
	__u32 si_pid; /* siginfo's sender pid for user signals (in the target's pid ns), else 0 */
	char comm[PM_COMM_LEN];
	char sender_comm[PM_COMM_LEN];
};

/* pm_oom.kind */
#define PM_OOM_UNKNOWN 0
#define PM_OOM_GLOBAL 1 /* no memcg on the victim's path was at its limit */
#define PM_OOM_CGROUP 2 /* a memcg on the victim's path was at its limit */

#define PM_OOM_LEVEL_NONE 0xffffffff

/* The OOM killer chose a victim (every victim, tracked or not: OOM kills are rare). */
struct pm_oom {
	struct pm_hdr hdr;
	__u32 pid; /* victim tgid */
	__u32 tid;
	__u64 start_ns;
	__u32 uid;
	__s32 oom_score_adj;
	__u32 trigger_pid; /* tgid of the task whose allocation failed (current) */
	__u32 tracked; /* 1: the victim is in the pid filter */
	__u64 rss_file; /* victim's memory at the kill, from its mm */
	__u64 rss_anon;
	__u64 rss_swap;
	__u64 rss_shmem;
	__u64 total_vm;
	__u32 kind; /* PM_OOM_* */
	__u32 oom_level; /* memcg at its limit: 0 the victim's own, n its n-th ancestor; PM_OOM_LEVEL_NONE */
	__u64 cgroup_id; /* kernfs id (= directory inode) of the victim's memory cgroup, 0 if none */
	__u64 memcg_usage; /* its memory page_counter, bytes */
	__u64 memcg_limit;
	__u64 oom_cgroup_id; /* the memcg at its limit (== cgroup_id at level 0) */
	__u64 oom_usage;
	__u64 oom_limit;
	__u32 memcg_id; /* mem_cgroup.id.id */
	__u32 memcg_oom_events; /* memory_events[MEMCG_OOM] of the victim's memcg (hierarchical) */
	__u32 memcg_oom_kills; /* memory_events[MEMCG_OOM_KILL], not yet counting this kill */
	__u32 pad;
	char comm[PM_COMM_LEN];
	char trigger_comm[PM_COMM_LEN];
};

/* Per-CPU counters of the lifecycle probe (one slot, summed on read). */
struct pm_lifecycle_stats {
	__u64 forks_tracked; /* children added to the pid filter */
	__u64 track_full; /* children not added: pid filter full */
	__u64 untracked_exits; /* tracked processes removed from the pid filter at exit */
	__u64 stale_ignored; /* events of a pid whose filter entry names another start time */
};

#endif
