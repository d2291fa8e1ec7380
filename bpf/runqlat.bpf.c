// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Runqueue latency of tracked processes, and where their time goes.
 *
 * Every thread of a tracked process has one entry in `threads`: the state it
 * is in since its last scheduler transition (on CPU, waiting for a CPU,
 * throttled, in D state, sleeping, classified by the system call it sleeps
 * in). Each transition (sched_switch out and in, sched_wakeup) adds the time
 * spent in the state it leaves to the thread's counters and its process's
 * (`cpu_stats`): the agent reads those per tick, so any window is a sum of
 * buckets. Runqueue waits also go into a histogram; waits above targ_min_us
 * become records naming the task that held the CPU (the culprit).
 *
 * Cost: untracked tasks cost what they cost before the time accounting: one
 * pid-filter lookup for the task leaving the CPU, one `threads` lookup for
 * the one taking it (the entry replaced the old runnable-since map), one
 * pid-filter lookup per wakeup. Tracked threads update entries in place
 * instead of inserting and deleting one per wait.
 */
#include "lib/common.bpf.h"
#include "runqlat.h"

#define TASK_RUNNING 0
#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_DEAD 0x80
#define TASK_NOLOAD 0x400
#define PF_EXITING 0x00000004

const volatile __u64 targ_min_us = 10000;

/* Threads of tracked processes. LRU: entries of threads that died unseen age
 * out rather than fill the map; a dead thread's entry stays readable until
 * then (the agent reads per-thread time after the process died). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TIMED_THREADS);
	__type(key, __u32); /* tid */
	__type(value, struct pm_thread_time);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_hist);
} runq_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_cpu_stats);
} cpu_stats SEC(".maps");

/* The sleep class of a system call (x86_64 numbers); absent ones are PM_TC_OTHER. */
static const __u8 sleep_class[PM_SYSCALL_MAX] = {
	[0] = PM_TC_NET, /* read: sockets and pipes (files sleep in D) */
	[1] = PM_TC_NET, /* write */
	[7] = PM_TC_NET, /* poll */
	[19] = PM_TC_NET, /* readv */
	[20] = PM_TC_NET, /* writev */
	[23] = PM_TC_NET, /* select */
	[40] = PM_TC_NET, /* sendfile */
	[42] = PM_TC_NET, /* connect */
	[43] = PM_TC_NET, /* accept */
	[44] = PM_TC_NET, /* sendto */
	[45] = PM_TC_NET, /* recvfrom */
	[46] = PM_TC_NET, /* sendmsg */
	[47] = PM_TC_NET, /* recvmsg */
	[232] = PM_TC_NET, /* epoll_wait */
	[270] = PM_TC_NET, /* pselect6 */
	[271] = PM_TC_NET, /* ppoll */
	[281] = PM_TC_NET, /* epoll_pwait */
	[288] = PM_TC_NET, /* accept4 */
	[299] = PM_TC_NET, /* recvmmsg */
	[307] = PM_TC_NET, /* sendmmsg */
	[441] = PM_TC_NET, /* epoll_pwait2 */
	[202] = PM_TC_LOCK, /* futex */
	[449] = PM_TC_LOCK, /* futex_waitv */
	[72] = PM_TC_LOCK, /* fcntl (F_SETLKW) */
	[73] = PM_TC_LOCK, /* flock */
	[35] = PM_TC_TIMER, /* nanosleep */
	[230] = PM_TC_TIMER, /* clock_nanosleep */
};

static __always_inline struct pm_cpu_stats *cpu_stats_get(__u32 tgid)
{
	struct pm_cpu_stats *s = bpf_map_lookup_elem(&cpu_stats, &tgid);
	if (!s) {
		static const struct pm_cpu_stats zero;
		bpf_map_update_elem(&cpu_stats, &tgid, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&cpu_stats, &tgid);
	}
	return s;
}

/* The entry of a thread of a tracked process, made on first sight (or when its
 * tid now belongs to another process). */
static __always_inline struct pm_thread_time *thread_get(__u32 tid, __u32 tgid)
{
	struct pm_thread_time *t = bpf_map_lookup_elem(&threads, &tid);
	if (t && t->tgid == tgid)
		return t;
	struct pm_thread_time fresh = { .tgid = tgid };
	bpf_map_update_elem(&threads, &tid, &fresh, BPF_ANY);
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Adds the time since the thread's last transition to its state's counters. */
static __always_inline void account(struct pm_thread_time *t, struct pm_cpu_stats *s, __u64 now)
{
	__u32 st = t->state;
	__u64 since = t->since_ns;
	if (st == PM_TC_NONE || st >= PM_TIME_CLASSES || !since || now <= since)
		return;
	__u64 d = now - since;
	t->time.ns[st] += d; /* only this thread's own transitions write its entry */
	if (!s)
		return;
	__sync_fetch_and_add(&s->time.ns[st], d);
	if (st == PM_TC_DSTATE)
		s->dstate_syscall = t->syscall;
}

/* The system call a sleeping task is in: 1 + its number, 0 when it is not in
 * one. A page fault's frame holds the error code where a system call's holds
 * its number (orig_ax), so the number alone is ambiguous; the SYSCALL
 * instruction's own convention tells them apart: the entry code saves the
 * user rip it left in rcx and the rflags it left in r11, which an exception
 * frame matches only by accident. */
static __always_inline __u32 syscall_of(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (!regs)
		return 0;
	long nr = regs->orig_ax;
	if (nr < 0 || nr >= PM_SYSCALL_MAX)
		return 0;
	if (regs->cx != regs->ip || regs->r11 != regs->flags)
		return 0;
	return nr + 1;
}

/* A runnable task that cannot run because its cgroup spent its CPU quota: its
 * cfs_rq (or an ancestor) is throttled. Since 6.18 the task itself is also
 * marked once it is parked (task-based throttling); a task preempted just as
 * the quota ran out is not marked yet, but its cfs_rq already counts. */
static __always_inline __u32 is_throttled(struct task_struct *p)
{
	if (bpf_core_field_exists(p->throttled) && BPF_CORE_READ(p, throttled))
		return 1;
	return BPF_CORE_READ(p, se.cfs_rq, throttle_count) > 0;
}

/* The state a task leaving the CPU goes into. */
static __always_inline __u32 state_after(struct task_struct *prev, __u32 runnable, unsigned int prev_state,
					 __u32 *syscall)
{
	*syscall = 0;
	if (runnable)
		return is_throttled(prev) ? PM_TC_THROTTLED : PM_TC_RUNQ;
	if (prev_state & TASK_DEAD)
		return PM_TC_NONE; /* its last switch: nothing more to account */
	__u32 sc = syscall_of(prev);
	*syscall = sc;
	if ((prev_state & TASK_UNINTERRUPTIBLE) && !(prev_state & TASK_NOLOAD))
		return sc ? PM_TC_DSTATE : PM_TC_FAULT;
	if (!sc)
		return PM_TC_OTHER;
	__u32 idx = sc - 1;
	if (idx >= PM_SYSCALL_MAX)
		return PM_TC_OTHER;
	__u32 c = sleep_class[idx];
	return c ? c : PM_TC_OTHER;
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	__u32 tgid = p->tgid;
	if (!pm_tracked_lookup(tgid))
		return 0;
	struct pm_cpu_stats *s = cpu_stats_get(tgid);
	if (s)
		__sync_fetch_and_add(&s->wakeups, 1);
	struct pm_thread_time *t = thread_get(p->pid, tgid);
	if (!t)
		return 0;
	__u32 st = t->state;
	/* Woken while still on its CPU (before it could sleep), or already runnable: no change. */
	if (st == PM_TC_ONCPU || st == PM_TC_RUNQ || st == PM_TC_THROTTLED)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	account(t, s, now);
	t->state = is_throttled(p) ? PM_TC_THROTTLED : PM_TC_RUNQ;
	t->preempted = 0;
	t->syscall = 0;
	t->since_ns = now;
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p);
}

/* The task leaving the CPU: its on-CPU time ends; still runnable means it was
 * preempted and its wait for the next turn starts now. */
static __always_inline void switch_out(struct task_struct *prev, bool preempt, unsigned int prev_state, __u64 now)
{
	__u32 tgid = prev->tgid;
	if (!pm_tracked_lookup(tgid))
		return;
	__u32 runnable = preempt || prev_state == TASK_RUNNING;
	struct pm_cpu_stats *s = cpu_stats_get(tgid);
	if (s) {
		if (runnable)
			__sync_fetch_and_add(&s->involuntary_switches, 1);
		else
			__sync_fetch_and_add(&s->voluntary_switches, 1);
	}
	struct pm_thread_time *t = thread_get(prev->pid, tgid);
	if (!t)
		return;
	account(t, s, now);
	__u32 syscall;
	t->state = state_after(prev, runnable, prev_state, &syscall);
	t->syscall = syscall;
	t->preempted = runnable;
	t->since_ns = now;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();
	switch_out(prev, preempt, prev_state, now);

	/* The task taking the CPU: only tracked threads are in `threads`, so
	 * this is the one lookup an untracked task costs. */
	__u32 tid = next->pid;
	struct pm_thread_time *t = bpf_map_lookup_elem(&threads, &tid);
	if (!t)
		return 0;
	__u32 st = t->state;
	__u32 tgid = t->tgid;
	if (st == PM_TC_ONCPU) {
		/* Its switch-out was not seen: its process is no longer tracked. An
		 * exiting thread keeps its counters (the lifecycle probe untracks the
		 * process early in the last thread's exit, which still switches):
		 * the agent reads them after the death. Others go. */
		if (next->flags & PF_EXITING)
			t->state = PM_TC_NONE;
		else if (!pm_tracked_lookup(tgid))
			bpf_map_delete_elem(&threads, &tid);
		else
			t->since_ns = now; /* tracked: a switch-out lost to a race; restart the span */
		return 0;
	}
	__u64 since = t->since_ns;
	__u32 preempted = t->preempted;
	struct pm_cpu_stats *s = bpf_map_lookup_elem(&cpu_stats, &tgid);
	account(t, s, now);
	t->state = PM_TC_ONCPU;
	t->syscall = 0;
	t->since_ns = now;
	/* A wait for a CPU ends (a sleep whose wakeup was not seen is no wait). */
	if ((st != PM_TC_RUNQ && st != PM_TC_THROTTLED) || !since)
		return 0;
	__u64 wait_ns = now - since;
	struct pm_hist *h = pm_hist_get(runq_hist, tgid);
	if (h)
		pm_hist_add(h, wait_ns);

	if (wait_ns < targ_min_us * 1000)
		return 0;
	if (s)
		__sync_fetch_and_add(&s->slow_waits, 1);
	struct pm_runq_slow *r = pm_reserve(sizeof(*r), PM_REC_RUNQ_SLOW);
	if (!r)
		return 0;
	r->pid = tgid;
	r->tid = tid;
	r->wait_ns = wait_ns;
	r->culprit_pid = prev->tgid;
	r->culprit_tid = prev->pid;
	r->preempted = preempted;
	r->pad = 0;
	__builtin_memcpy(r->comm, next->comm, PM_COMM_LEN);
	__builtin_memcpy(r->culprit_comm, prev->comm, PM_COMM_LEN);
	pm_submit(r);
	return 0;
}
