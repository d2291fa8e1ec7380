// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Python GC pauses of tracked processes from CPython's USDT probes
 * python:gc__start(int generation) and python:gc__done(Py_ssize_t collected).
 * The programs carry no target: the agent attaches them per interpreter binary
 * or libpython actually mapped by the tracked process (tracer.attachUsdt).
 * A histogram of pause durations and counters per generation stay in the
 * kernel; pauses above targ_gc_min_us become records.
 */
#include "lib/common.bpf.h"
#include <bpf/usdt.bpf.h>
#include "pygc.h"

const volatile __u64 targ_gc_min_us = 10000;

struct gc_running {
	__u64 start_ns;
	__u32 generation;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* a thread killed mid-collection ages out */
	__uint(max_entries, PM_GC_MAX_RUNNING);
	__type(key, __u32); /* tid */
	__type(value, struct gc_running);
} gc_running SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_hist);
} gc_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_gc_stats);
} gc_stats SEC(".maps");

static __always_inline struct pm_gc_stats *gc_stats_get(__u32 tgid)
{
	struct pm_gc_stats *s = bpf_map_lookup_elem(&gc_stats, &tgid);
	if (!s) {
		static const struct pm_gc_stats zero;
		bpf_map_update_elem(&gc_stats, &tgid, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&gc_stats, &tgid);
	}
	return s;
}

SEC("usdt")
int BPF_USDT(gc_start, int generation)
{
	__u64 id = bpf_get_current_pid_tgid();
	/* Attached per pid, or per binary for every process (pid -1): filter. */
	if (!pm_tracked_lookup(id >> 32))
		return 0;
	__u32 tid = (__u32)id;
	struct gc_running g = { .start_ns = bpf_ktime_get_ns(), .generation = (__u32)generation };
	bpf_map_update_elem(&gc_running, &tid, &g, BPF_ANY);
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_done, long collected)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, tgid = id >> 32;
	struct gc_running *gp = bpf_map_lookup_elem(&gc_running, &tid);
	if (!gp) {
		if (pm_tracked_lookup(tgid)) {
			struct pm_gc_stats *s = gc_stats_get(tgid);
			if (s)
				__sync_fetch_and_add(&s->unmatched, 1);
		}
		return 0;
	}
	__u64 dur = bpf_ktime_get_ns() - gp->start_ns;
	__u32 gen = gp->generation;
	bpf_map_delete_elem(&gc_running, &tid);

	struct pm_hist *h = pm_hist_get(gc_hist, tgid);
	if (h)
		pm_hist_add(h, dur);
	__u32 slow = dur >= targ_gc_min_us * 1000;
	struct pm_gc_stats *s = gc_stats_get(tgid);
	if (s) {
		__u32 g = gen < PM_GC_GENERATIONS ? gen : PM_GC_GENERATIONS - 1;
		__sync_fetch_and_add(&s->count[g], 1);
		__sync_fetch_and_add(&s->sum_ns[g], dur);
		if (collected > 0)
			__sync_fetch_and_add(&s->collected[g], collected);
		if (dur > s->max_ns[g])
			s->max_ns[g] = dur; /* racy max, as pm_hist_add */
		if (slow)
			__sync_fetch_and_add(&s->slow, 1);
	}
	if (!slow)
		return 0;
	struct pm_gc_pause *r = pm_reserve(sizeof(*r), PM_REC_GC);
	if (!r)
		return 0;
	r->pid = tgid;
	r->tid = tid;
	r->generation = gen;
	r->pad = 0;
	r->duration_ns = dur;
	r->collected = collected;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	pm_submit(r);
	return 0;
}
