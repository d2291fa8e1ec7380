// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A synthetic record source: each getppid() of the configured process emits
 * `batch` records. Drives the ingest benchmark and the loss-accounting tests
 * through the same ring buffer, drop counters and reader as the real probes.
 */
#include "lib/common.bpf.h"
#include "flood.h"

#define NR_getppid 110 /* x86_64 */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pm_flood_cfg);
} flood_cfg SEC(".maps");

/* Records attempted (reserved or dropped), per CPU: the independent count of
 * what was produced. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} flood_produced SEC(".maps");

static long emit_one(__u64 index, void *ctx)
{
	__u32 zero = 0;
	__u64 *produced = bpf_map_lookup_elem(&flood_produced, &zero);
	if (produced)
		*produced += 1;
	struct pm_flood *r = pm_reserve(sizeof(*r), PM_REC_FLOOD);
	if (!r)
		return 0;
	r->seq = index;
	pm_submit(r);
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	if (id != NR_getppid)
		return 0;
	__u32 zero = 0;
	struct pm_flood_cfg *cfg = bpf_map_lookup_elem(&flood_cfg, &zero);
	if (!cfg || !cfg->tgid || cfg->tgid != (bpf_get_current_pid_tgid() >> 32))
		return 0;
	__u32 batch = cfg->batch;
	if (batch > PM_FLOOD_MAX_BATCH)
		batch = PM_FLOOD_MAX_BATCH;
	bpf_loop(batch, emit_one, NULL, 0);
	return 0;
}
