/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Maps and helpers every probe shares. Each probe object declares these maps;
 * the native tracer creates them once (with the first probe it loads) and
 * hands the same fds to every later probe (bpf_map__reuse_fd), so there is one
 * pid filter, one ring buffer and one set of drop counters per tracer.
 */
#ifndef PM_COMMON_BPF_H
#define PM_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "../pm_common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Ring buffer bytes past which a submit wakes the reader; below it the
 * reader's 10 ms poll collects records without a wakeup per record. */
const volatile __u64 pm_wakeup_bytes = 256 * 1024;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_tracked);
} pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 * 1024 * 1024); /* set by the tracer before load */
} events SEC(".maps");

/* Records that could not be reserved, per record type and CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PM_REC_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline struct pm_tracked *pm_tracked_lookup(__u32 tgid)
{
	return bpf_map_lookup_elem(&pids, &tgid);
}

static __always_inline void pm_count_drop(__u32 type)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &type);
	if (n)
		*n += 1; /* per-CPU slot: no atomic needed */
}

/* Reserve a record of `size` bytes and fill its header; counts the drop and
 * returns NULL when the ring buffer is full. */
static __always_inline void *pm_reserve(__u32 size, __u16 type)
{
	struct pm_hdr *h = bpf_ringbuf_reserve(&events, size, 0);
	if (!h) {
		pm_count_drop(type);
		return NULL;
	}
	h->type = type;
	h->size = size;
	h->cpu = bpf_get_smp_processor_id();
	h->ts_ns = bpf_ktime_get_boot_ns();
	return h;
}

/* Submit without waking the reader unless enough data is waiting. */
static __always_inline void pm_submit(void *rec)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	bpf_ringbuf_submit(rec, avail >= pm_wakeup_bytes ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}


static __always_inline __u32 pm_log2(__u64 v)
{
	__u32 r = 0, shift;
	shift = (v > 0xFFFFFFFF) << 5; v >>= shift; r = shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* Add one observation of `ns` to a histogram in microsecond log2 slots. */
static __always_inline void pm_hist_add(struct pm_hist *h, __u64 ns)
{
	__u64 us = ns / 1000;
	__u64 slot = us ? pm_log2(us) + 1 : 0; /* slot 0: < 1 µs */
	if (slot >= PM_HIST_SLOTS)
		slot = PM_HIST_SLOTS - 1;
	slot &= PM_HIST_SLOTS - 1; /* a no-op the verifier can see (PM_HIST_SLOTS is 2^n) */
	__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, ns);
	if (ns > h->max_ns)
		h->max_ns = ns; /* racy max: may miss a concurrent larger value by one update */
}

/* Find-or-create the histogram of `tgid` in a hash map of pm_hist. */
#define pm_hist_get(map, tgid)                                                  \
	({                                                                      \
		__u32 __k = (tgid);                                             \
		struct pm_hist *__h = bpf_map_lookup_elem(&(map), &__k);        \
		if (!__h) {                                                     \
			static const struct pm_hist __zero;                     \
			bpf_map_update_elem(&(map), &__k, &__zero, BPF_NOEXIST); \
			__h = bpf_map_lookup_elem(&(map), &__k);                \
		}                                                               \
		__h;                                                            \
	})

#endif
