/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Memory reads shared by the lifecycle and memory probes (BPF side only):
 * a process's RSS counters from its mm_struct, and its memory cgroup.
 * Kernel-version differences are CO-RE flavours, each with the change it covers.
 */
#ifndef PM_MM_CORE_BPF_H
#define PM_MM_CORE_BPF_H

#include "lib/common.bpf.h"

/* Page size as a shift: x86-64 is 12; the agent may set it from the OS. */
const volatile __u32 page_shift = 12;

/*
 * Linux < 6.2 kept RSS in `struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }`;
 * 6.2 (commit f1a7941243c1, "mm: convert mm's rss stats into percpu_counter")
 * made mm->rss_stat an array of percpu_counter. On 6.18 it is the new form.
 * percpu_counter.count is the folded value: per-CPU deltas not yet folded
 * (at most percpu_counter_batch pages per CPU, 32 pages with 2 CPUs) are not in
 * it, the same approximation get_mm_counter() and the rss_stat tracepoint use.
 */
struct mm_rss_stat___old {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

struct pm_rss {
	__u64 file, anon, swap, shmem; /* pages */
};

static __always_inline __u64 pm_clamp(long v)
{
	return v < 0 ? 0 : (__u64)v; /* a percpu_counter may read negative briefly */
}

static __always_inline void pm_read_rss(struct mm_struct *mm, struct pm_rss *r)
{
	if (bpf_core_type_exists(struct mm_rss_stat___old)) {
		struct mm_struct___old *old = (void *)mm;
		r->file = pm_clamp(BPF_CORE_READ(old, rss_stat.count[MM_FILEPAGES].counter));
		r->anon = pm_clamp(BPF_CORE_READ(old, rss_stat.count[MM_ANONPAGES].counter));
		r->swap = pm_clamp(BPF_CORE_READ(old, rss_stat.count[MM_SWAPENTS].counter));
		r->shmem = pm_clamp(BPF_CORE_READ(old, rss_stat.count[MM_SHMEMPAGES].counter));
	} else {
		r->file = pm_clamp(BPF_CORE_READ(mm, rss_stat[MM_FILEPAGES].count));
		r->anon = pm_clamp(BPF_CORE_READ(mm, rss_stat[MM_ANONPAGES].count));
		r->swap = pm_clamp(BPF_CORE_READ(mm, rss_stat[MM_SWAPENTS].count));
		r->shmem = pm_clamp(BPF_CORE_READ(mm, rss_stat[MM_SHMEMPAGES].count));
	}
}

/* One RSS counter (member: MM_FILEPAGES..MM_SHMEMPAGES), pages. */
static __always_inline __u64 pm_read_rss_member(struct mm_struct *mm, int member)
{
	if (bpf_core_type_exists(struct mm_rss_stat___old)) {
		struct mm_struct___old *old = (void *)mm;
		return pm_clamp(BPF_CORE_READ(old, rss_stat.count[member & 3].counter));
	}
	return pm_clamp(BPF_CORE_READ(mm, rss_stat[member & 3].count));
}

static __always_inline __u64 pm_pages_to_bytes(__u64 pages)
{
	return pages << (page_shift & 31);
}

/* The memory cgroup of a task (v1 memory controller or v2), NULL without memcg. */
static __always_inline struct mem_cgroup *pm_task_memcg(struct task_struct *task)
{
	if (!bpf_core_enum_value_exists(enum cgroup_subsys_id, memory_cgrp_id))
		return NULL; /* kernel built without CONFIG_MEMCG */
	int id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css = NULL;
	struct css_set *cset = BPF_CORE_READ(task, cgroups);
	if (!cset || id < 0 || id >= 16)
		return NULL;
	bpf_core_read(&css, sizeof(css), &cset->subsys[id]);
	if (!css)
		return NULL;
	/* css is mem_cgroup's first member; subtract its offset anyway. */
	return (void *)css - bpf_core_field_offset(struct mem_cgroup, css);
}

static __always_inline __u64 pm_memcg_cgroup_id(struct mem_cgroup *memcg)
{
	return BPF_CORE_READ(memcg, css.cgroup, kn, id);
}

#endif
