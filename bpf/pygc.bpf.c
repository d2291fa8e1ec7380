// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Python GC pauses of tracked processes, by one of two methods per interpreter:
 * - CPython's USDT probes python:gc__start(int generation) and
 *   python:gc__done(Py_ssize_t collected), when it was built with them;
 * - else a uprobe and a uretprobe on the collector's entry point (collect /
 *   gc_collect_main, found in the symbol table by agent/python/gc-entry.ts):
 *   the generation is an argument (the attach cookie says which) and the
 *   return value is what gc__done reports.
 * The programs carry no target: the agent attaches them once per interpreter
 * binary or libpython (tracer.attachUsdt / attachUprobe). A histogram of pause
 * durations and counters per generation stay in the kernel; pauses above
 * targ_gc_min_us become records. Both methods feed the same maps and records.
 */
#include "lib/common.bpf.h"
#include <bpf/usdt.bpf.h>
#include "pygc.h"

const volatile __u64 targ_gc_min_us = 10000;

/* A collection whose generation is decided when it ends (PM_GC_GEN_FROM_ARG_OR_STATS). */
#define GC_GEN_PENDING 0xfffffffeu

struct gc_running {
	__u64 start_ns;
	__u32 generation; /* or GC_GEN_PENDING */
	__u32 stats_stride;
	__u64 stats_addr; /* &interp->gc.generation_stats[0].collections, when pending */
	__u64 collections[PM_GC_GENERATIONS]; /* their values at entry, when pending */
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

static __always_inline void gc_begin(__u32 generation)
{
	__u64 id = bpf_get_current_pid_tgid();
	/* Attached per binary for every process (pid -1): filter. */
	if (!pm_tracked_lookup(id >> 32))
		return;
	__u32 tid = (__u32)id;
	struct gc_running g = { .start_ns = bpf_ktime_get_ns(), .generation = generation };
	bpf_map_update_elem(&gc_running, &tid, &g, BPF_ANY);
}

/* Reads the three `collections` counters at `addr` (stride apart); false when unreadable. */
static __always_inline bool gc_read_collections(__u64 addr, __u32 stride, __u64 out[PM_GC_GENERATIONS])
{
	for (int i = 0; i < PM_GC_GENERATIONS; i++)
		if (bpf_probe_read_user(&out[i], sizeof(out[i]), (void *)(addr + i * stride)))
			return false;
	return true;
}

/*
 * Begins a collection whose generation is the one whose counter it moves (see
 * PM_GC_GEN_FROM_ARG_OR_STATS); `arg` (the generation argument, or "auto") is
 * the fallback when the counters cannot be read.
 */
static __always_inline void gc_begin_pending(struct pt_regs *ctx, __u64 cookie, __u32 arg)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!pm_tracked_lookup(id >> 32))
		return;
	__u32 tid = (__u32)id;
	__u64 interp = 0;
	void *tstate = (void *)PT_REGS_PARM1(ctx);
	struct gc_running g = { .start_ns = 0, .generation = arg < PM_GC_GENERATIONS ? arg : PM_GC_GEN_UNKNOWN };
	if (!bpf_probe_read_user(&interp, sizeof(interp), tstate + ((cookie >> 16) & 0xff)) && interp) {
		g.stats_stride = (cookie >> 24) & 0xff;
		g.stats_addr = interp + (cookie >> 32);
		if (gc_read_collections(g.stats_addr, g.stats_stride, g.collections))
			g.generation = GC_GEN_PENDING;
	}
	g.start_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&gc_running, &tid, &g, BPF_ANY);
}

/* The generation whose counter moved; GC_GEN_PENDING when none did (no collection happened). */
static __always_inline __u32 gc_resolve_pending(struct gc_running *gp)
{
	__u64 now[PM_GC_GENERATIONS];
	if (!gc_read_collections(gp->stats_addr, gp->stats_stride, now))
		return PM_GC_GEN_UNKNOWN;
	for (int i = PM_GC_GENERATIONS - 1; i >= 0; i--)
		if (now[i] != gp->collections[i])
			return i;
	return GC_GEN_PENDING;
}

static __always_inline void gc_account(struct pm_gc_stats *s, __u32 gen, __u64 dur, long collected)
{
	if (gen == PM_GC_GEN_UNKNOWN) {
		__sync_fetch_and_add(&s->unknown_count, 1);
		__sync_fetch_and_add(&s->unknown_sum_ns, dur);
		if (collected > 0)
			__sync_fetch_and_add(&s->unknown_collected, collected);
		if (dur > s->unknown_max_ns)
			s->unknown_max_ns = dur; /* racy max, as pm_hist_add */
		return;
	}
	__u32 g = gen < PM_GC_GENERATIONS ? gen : PM_GC_GENERATIONS - 1;
	__sync_fetch_and_add(&s->count[g], 1);
	__sync_fetch_and_add(&s->sum_ns[g], dur);
	if (collected > 0)
		__sync_fetch_and_add(&s->collected[g], collected);
	if (dur > s->max_ns[g])
		s->max_ns[g] = dur; /* racy max, as pm_hist_add */
}

static __always_inline void gc_end(long collected)
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
		return;
	}
	__u64 dur = bpf_ktime_get_ns() - gp->start_ns;
	__u32 gen = gp->generation;
	if (gen == GC_GEN_PENDING)
		gen = gc_resolve_pending(gp);
	bpf_map_delete_elem(&gc_running, &tid);
	if (gen == GC_GEN_PENDING)
		return; /* the collector returned early: nothing was collected, no pause to count */

	struct pm_hist *h = pm_hist_get(gc_hist, tgid);
	if (h)
		pm_hist_add(h, dur);
	__u32 slow = dur >= targ_gc_min_us * 1000;
	struct pm_gc_stats *s = gc_stats_get(tgid);
	if (s) {
		gc_account(s, gen, dur, collected);
		if (slow)
			__sync_fetch_and_add(&s->slow, 1);
	}
	if (!slow)
		return;
	struct pm_gc_pause *r = pm_reserve(sizeof(*r), PM_REC_GC);
	if (!r)
		return;
	r->pid = tgid;
	r->tid = tid;
	r->generation = gen;
	r->pad = 0;
	r->duration_ns = dur;
	r->collected = collected;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	pm_submit(r);
}

SEC("usdt")
int BPF_USDT(gc_start, int generation)
{
	gc_begin((__u32)generation);
	return 0;
}

SEC("usdt")
int BPF_USDT(gc_done, long collected)
{
	gc_end(collected);
	return 0;
}

/* The generation argument the attach cookie names; PM_GC_GEN_UNKNOWN when none. */
static __always_inline __u32 gc_generation_arg(struct pt_regs *ctx, __u32 which)
{
	/* Every register is loaded first: a switch over PT_REGS_PARMn would let the
	 * compiler compute a ctx offset, which the verifier refuses. */
	__u32 args[4] = {
		(__u32)PT_REGS_PARM1(ctx), (__u32)PT_REGS_PARM2(ctx),
		(__u32)PT_REGS_PARM3(ctx), (__u32)PT_REGS_PARM4(ctx),
	};
	return which < 4 ? args[which] : PM_GC_GEN_UNKNOWN;
}

SEC("uprobe")
int gc_entry(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u32 from = cookie & 0xff, which = (cookie >> 8) & 0xff;
	__u32 gen = PM_GC_GEN_UNKNOWN;
	if (from == PM_GC_GEN_FROM_CONST)
		gen = which;
	else if (from == PM_GC_GEN_FROM_ARG || from == PM_GC_GEN_FROM_ARG_OR_STATS)
		gen = gc_generation_arg(ctx, which);
	if (from == PM_GC_GEN_FROM_ARG_OR_STATS) {
		gc_begin_pending(ctx, cookie, gen);
		return 0;
	}
	gc_begin(gen < PM_GC_GENERATIONS ? gen : PM_GC_GEN_UNKNOWN);
	return 0;
}

SEC("uretprobe")
int gc_return(struct pt_regs *ctx)
{
	gc_end((long)PT_REGS_RC(ctx));
	return 0;
}
