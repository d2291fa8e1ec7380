// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Runqueue latency of tracked processes: how long their threads wait runnable
 * before they get a CPU, after a wakeup and after a preemption. Histograms and
 * counters stay in the kernel; only waits above targ_min_us become records,
 * naming the task that held the CPU (the culprit).
 */
#include "lib/common.bpf.h"
#include "runqlat.h"

#define TASK_RUNNING 0

const volatile __u64 targ_min_us = 10000;

struct runq_start {
	__u64 ts_ns;
	__u32 preempted;
	__u32 pad;
};

/* Threads of tracked processes that are runnable and not yet on a CPU. Per-process
 * and per-thread maps are LRU: entries of tasks that died unseen age out rather
 * than fill the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_THREADS);
	__type(key, __u32); /* tid */
	__type(value, struct runq_start);
} start SEC(".maps");

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

static __always_inline void mark_runnable(__u32 tid, __u32 preempted)
{
	struct runq_start s = { .ts_ns = bpf_ktime_get_ns(), .preempted = preempted };
	bpf_map_update_elem(&start, &tid, &s, BPF_ANY);
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	__u32 tgid = p->tgid;
	if (!pm_tracked_lookup(tgid))
		return 0;
	mark_runnable(p->pid, 0);
	struct pm_cpu_stats *s = cpu_stats_get(tgid);
	if (s)
		__sync_fetch_and_add(&s->wakeups, 1);
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

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	/* The task leaving the CPU: still runnable means it was preempted and
	 * its wait for the next turn starts now. */
	__u32 prev_tgid = prev->tgid;
	if (pm_tracked_lookup(prev_tgid)) {
		__u32 runnable = preempt || prev_state == TASK_RUNNING;
		struct pm_cpu_stats *s = cpu_stats_get(prev_tgid);
		if (s) {
			if (runnable)
				__sync_fetch_and_add(&s->involuntary_switches, 1);
			else
				__sync_fetch_and_add(&s->voluntary_switches, 1);
		}
		if (runnable)
			mark_runnable(prev->pid, 1);
	}

	/* The task taking the CPU: its wait ends. Only tracked threads are in
	 * `start`, so this is the one lookup an untracked task costs. */
	__u32 tid = next->pid;
	struct runq_start *st = bpf_map_lookup_elem(&start, &tid);
	if (!st)
		return 0;
	__u64 wait_ns = bpf_ktime_get_ns() - st->ts_ns;
	__u32 preempted = st->preempted;
	bpf_map_delete_elem(&start, &tid);

	__u32 tgid = next->tgid;
	struct pm_hist *h = pm_hist_get(runq_hist, tgid);
	if (h)
		pm_hist_add(h, wait_ns);

	if (wait_ns < targ_min_us * 1000)
		return 0;
	struct pm_cpu_stats *s = cpu_stats_get(tgid);
	if (s)
		__sync_fetch_and_add(&s->slow_waits, 1);
	struct pm_runq_slow *r = pm_reserve(sizeof(*r), PM_REC_RUNQ_SLOW);
	if (!r)
		return 0;
	r->pid = tgid;
	r->tid = tid;
	r->wait_ns = wait_ns;
	r->culprit_pid = prev_tgid;
	r->culprit_tid = prev->pid;
	r->preempted = preempted;
	r->pad = 0;
	__builtin_memcpy(r->comm, next->comm, PM_COMM_LEN);
	__builtin_memcpy(r->culprit_comm, prev->comm, PM_COMM_LEN);
	pm_submit(r);
	return 0;
}
