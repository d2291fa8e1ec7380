// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Memory of tracked processes, aggregated in the kernel:
 *  - page faults per process (maps `faults`), from the x86 exception
 *    tracepoints page_fault_user and page_fault_kernel (the latter only for
 *    user addresses: a read() into an untouched buffer faults in kernel mode
 *    and the kernel counts it in min_flt too);
 *  - the last RSS (map `rss_last`), refreshed by the rss_stat tracepoint,
 *    which fires whenever an mm's RSS counters change; rewritten when 10 ms
 *    old or when a counter moved by 1 MiB, so the value read after an OOM
 *    kill or an exit is within 1 MiB of the RSS at death.
 *
 * Minor vs major: the fault tracepoints fire at exception entry, before the
 * kernel knows whether the fault needs I/O. The kernel counts majors in
 * task->maj_flt when the fault completes, so each fault adds to `major` the
 * growth of the current thread's maj_flt since that thread's previous fault
 * (kept in task-local storage, freed with the task). A major fault is thus
 * counted at the same thread's next fault: the live count lags by at most
 * one major per thread; exit records carry the exact totals. minor = faults - major.
 *
 * Maps are LRU hashes of PM_MAX_TRACKED entries: entries of dead processes
 * stay readable (the agent reads the last RSS after the exit record) and
 * are evicted first when the map is full.
 */
#include "mm_core.bpf.h"
#include "memory.h"

/* rss_last is rewritten when it is this old (10 ms) or one counter moved by
 * this much (1 MiB) since the last write: the value is never more than 1 MiB
 * (plus percpu_counter folding) from the truth, however the changes are timed. */
const volatile __u64 targ_rss_interval_ns = 10000000;
const volatile __u64 targ_rss_delta_bytes = 1 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_fault_stats);
} faults SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_rss_last);
} rss_last SEC(".maps");

struct thread_flt {
	__u64 maj_flt; /* the thread's maj_flt at its previous fault */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_flt);
} thread_flt SEC(".maps");

static __always_inline void on_fault(__u32 kernel_mode)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	__u32 tgid = cur->tgid;
	if (!pm_tracked_lookup(tgid))
		return;
	__u64 start = cur->group_leader->start_boottime;
	struct pm_fault_stats *f = bpf_map_lookup_elem(&faults, &tgid);
	if (!f || f->start_ns != start) {
		/* First fault, or a reused pid: start from zero. */
		struct pm_fault_stats zero = { .start_ns = start };
		bpf_map_update_elem(&faults, &tgid, &zero, BPF_ANY);
		f = bpf_map_lookup_elem(&faults, &tgid);
		if (!f)
			return;
	}
	__sync_fetch_and_add(&f->faults, 1);
	if (kernel_mode)
		__sync_fetch_and_add(&f->kernel_mode, 1);
	f->last_ns = bpf_ktime_get_boot_ns();

	__u64 maj = cur->maj_flt;
	struct thread_flt *tf = bpf_task_storage_get(&thread_flt, cur, 0, 0);
	if (!tf) {
		/* The thread's first fault seen: its baseline, no delta yet. */
		tf = bpf_task_storage_get(&thread_flt, cur, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (tf)
			tf->maj_flt = maj;
		return;
	}
	if (maj > tf->maj_flt) {
		__sync_fetch_and_add(&f->major, maj - tf->maj_flt);
		tf->maj_flt = maj;
	}
}

SEC("tp_btf/page_fault_user")
int BPF_PROG(page_fault_user, unsigned long address, struct pt_regs *regs, unsigned long error_code)
{
	on_fault(0);
	return 0;
}

SEC("tp_btf/page_fault_kernel")
int BPF_PROG(page_fault_kernel, unsigned long address, struct pt_regs *regs,
	     unsigned long error_code)
{
	/* Kernel addresses have the top bit set on x86-64 (4- and 5-level paging). */
	if ((long)address < 0)
		return 0;
	on_fault(1);
	return 0;
}

/*
 * rss_stat fires in add_mm_counter() and friends for any mm, also from other
 * tasks (oom_reaper, khugepaged, process_madvise) and from exit_mmap() after
 * exit_mm() cleared current->mm: counting only mm == current->mm keeps the
 * value the process had before it died, not the teardown to zero.
 */
SEC("tp_btf/rss_stat")
int BPF_PROG(rss_stat, struct mm_struct *mm, int member)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	if (cur->mm != mm)
		return 0;
	__u32 tgid = cur->tgid;
	if (!pm_tracked_lookup(tgid))
		return 0;
	__u64 now = bpf_ktime_get_boot_ns();
	__u64 start = cur->group_leader->start_boottime;
	struct pm_rss_last *v = bpf_map_lookup_elem(&rss_last, &tgid);
	if (v && v->start_ns == start && now - v->ts_ns < targ_rss_interval_ns &&
	    member >= 0 && member < 4) {
		/* Written less than an interval ago: skip unless the changed counter
		 * moved by targ_rss_delta_bytes. */
		__u64 now_bytes = pm_pages_to_bytes(pm_read_rss_member(mm, member));
		__u64 was = member == MM_FILEPAGES ? v->file :
			    member == MM_ANONPAGES ? v->anon :
			    member == MM_SWAPENTS ? v->swap : v->shmem;
		__u64 moved = now_bytes > was ? now_bytes - was : was - now_bytes;
		if (moved < targ_rss_delta_bytes)
			return 0;
	}
	if (!v || v->start_ns != start) {
		struct pm_rss_last zero = { .start_ns = start };
		bpf_map_update_elem(&rss_last, &tgid, &zero, BPF_ANY);
		v = bpf_map_lookup_elem(&rss_last, &tgid);
		if (!v)
			return 0;
	}
	struct pm_rss rss;
	pm_read_rss(mm, &rss);
	/* Plain stores: two threads racing here write values a few µs apart. */
	v->ts_ns = now;
	v->file = pm_pages_to_bytes(rss.file);
	v->anon = pm_pages_to_bytes(rss.anon);
	v->swap = pm_pages_to_bytes(rss.swap);
	v->shmem = pm_pages_to_bytes(rss.shmem);
	__u64 total = v->file + v->anon + v->shmem;
	if (total > v->peak)
		v->peak = total;
	v->writes++;
	return 0;
}
