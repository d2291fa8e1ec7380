// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Disk: block request latency (issue -> completion) per device and per tracked
 * process, and the time threads of tracked processes spend in uninterruptible
 * sleep (D state). Histograms and counters stay in the kernel; only requests
 * slower than targ_slow_us become records.
 *
 * Attribution: a request counts for a process when that process is tracked and
 * is the task submitting it (reads, O_DIRECT writes, the flush of its fsync):
 * the owner is taken at block_io_start, in the submitter's context, with the
 * task at block_rq_issue as the fallback.
 * Buffered writes reach the disk later from write-back kernel threads: those
 * count for the device only. D-state time holds either way: a worker waiting
 * on its fsync shows up there even when a kworker issued the I/O.
 */
#include "lib/common.bpf.h"
#include "disk.h"

#define TASK_UNINTERRUPTIBLE 0x2
#define TASK_NOLOAD 0x400 /* with UNINTERRUPTIBLE: TASK_IDLE, idle kthreads, not a stall */
#define PF_KTHREAD 0x00200000
#define REQ_OP_MASK 0xff
#define MKDEV(ma, mi) (((__u32)(ma) << 20) | (__u32)(mi))

const volatile __u64 targ_slow_us = 50000;

struct inflight {
	__u64 issue_ns;
	__u64 sector;
	__u32 bytes;
	__u32 op;
	__u32 pid; /* 0 for kernel threads */
	__u32 tid;
	__u32 tracked;
	__u32 pad;
	char comm[PM_COMM_LEN];
};

/* Requests between issue and completion. LRU: a request that never completes
 * (device torn down) ages out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_DISK_MAX_INFLIGHT);
	__type(key, __u64); /* struct request * */
	__type(value, struct inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PM_DISK_MAX_DEVICES);
	__type(key, __u32); /* dev */
	__type(value, struct pm_disk_stats);
} disk_dev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_disk_stats);
} disk_proc SEC(".maps");

/* Threads of tracked processes that went to sleep in D state: when. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_DISK_MAX_DSTATE);
	__type(key, __u32); /* tid */
	__type(value, __u64); /* switch-out time */
} dstate_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PM_MAX_TRACKED);
	__type(key, __u32); /* tgid */
	__type(value, struct pm_hist);
} dstate_hist SEC(".maps");

static __always_inline struct pm_disk_stats *stats_get(void *map, __u32 key)
{
	struct pm_disk_stats *s = bpf_map_lookup_elem(map, &key);
	if (!s) {
		static const struct pm_disk_stats zero;
		bpf_map_update_elem(map, &key, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(map, &key);
	}
	return s;
}

static __always_inline void stats_add(struct pm_disk_stats *s, struct inflight *f, __u64 lat_ns,
				      __u32 error, __u32 slow)
{
	pm_hist_add(&s->lat, lat_ns);
	switch (f->op) {
	case PM_DISK_OP_READ:
		__sync_fetch_and_add(&s->read_ops, 1);
		__sync_fetch_and_add(&s->read_bytes, f->bytes);
		break;
	case PM_DISK_OP_WRITE:
		__sync_fetch_and_add(&s->write_ops, 1);
		__sync_fetch_and_add(&s->write_bytes, f->bytes);
		break;
	case PM_DISK_OP_FLUSH:
		__sync_fetch_and_add(&s->flush_ops, 1);
		break;
	default:
		__sync_fetch_and_add(&s->other_ops, 1);
		__sync_fetch_and_add(&s->other_bytes, f->bytes);
	}
	if (error)
		__sync_fetch_and_add(&s->errors, 1);
	if (slow)
		__sync_fetch_and_add(&s->slow, 1);
}

/* Who a request is for: the task in whose context it is created. */
static __always_inline void owner_fill(struct inflight *f)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (!(task->flags & PF_KTHREAD)) {
		f->pid = tgid;
		f->tid = (__u32)id;
		f->tracked = pm_tracked_lookup(tgid) != NULL;
	}
	bpf_get_current_comm(f->comm, sizeof(f->comm));
}

/* block_io_start runs in the submitter's context when a bio becomes a
 * request (6.5+); block_rq_issue may run later from kblockd when the queue
 * was busy, where `current` is a kernel thread. So the owner is taken here. */
SEC("tp_btf/block_io_start")
int BPF_PROG(block_io_start, struct request *rq)
{
	struct inflight f = {};
	owner_fill(&f);
	__u64 key = (__u64)rq;
	bpf_map_update_elem(&inflight, &key, &f, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq)
{
	__u64 key = (__u64)rq;
	__u64 now = bpf_ktime_get_ns();
	struct inflight *fp = bpf_map_lookup_elem(&inflight, &key);
	if (fp) {
		/* Sizes at issue: bios may have merged in since io_start. A
		 * requeued request restarts its clock. */
		fp->issue_ns = now;
		fp->sector = rq->__sector;
		fp->bytes = rq->__data_len;
		fp->op = rq->cmd_flags & REQ_OP_MASK;
		return 0;
	}
	/* No io_start seen (flush requests, older kernels): the issuer owns it. */
	struct inflight f = {
		.issue_ns = now,
		.sector = rq->__sector,
		.bytes = rq->__data_len,
		.op = rq->cmd_flags & REQ_OP_MASK,
	};
	owner_fill(&f);
	bpf_map_update_elem(&inflight, &key, &f, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	__u64 key = (__u64)rq;
	struct inflight *fp = bpf_map_lookup_elem(&inflight, &key);
	if (!fp)
		return 0; /* issued before we attached */
	struct inflight f = *fp;
	bpf_map_delete_elem(&inflight, &key);
	if (!f.issue_ns)
		return 0; /* completed without an issue we saw */
	__u64 lat_ns = bpf_ktime_get_ns() - f.issue_ns;

	struct gendisk *disk = rq->q->disk;
	__u32 dev = disk ? MKDEV(disk->major, disk->first_minor) : 0;
	__u32 slow = lat_ns >= targ_slow_us * 1000;

	struct pm_disk_stats *s = stats_get(&disk_dev, dev);
	if (s)
		stats_add(s, &f, lat_ns, error, slow);
	if (f.tracked) {
		s = stats_get(&disk_proc, f.pid);
		if (s) {
			stats_add(s, &f, lat_ns, error, slow);
			s->last_dev = dev;
		}
	}
	if (!slow)
		return 0;
	struct pm_bio_slow *r = pm_reserve(sizeof(*r), PM_REC_BIO_SLOW);
	if (!r)
		return 0;
	r->dev = dev;
	r->op = f.op;
	r->sector = f.sector;
	r->latency_ns = lat_ns;
	r->bytes = f.bytes;
	r->pid = f.pid;
	r->tid = f.tid;
	r->error = error;
	r->tracked = f.tracked;
	r->pad = 0;
	__builtin_memcpy(r->comm, f.comm, PM_COMM_LEN);
	pm_submit(r);
	return 0;
}

/* D state begins when a tracked thread leaves the CPU uninterruptible (not
 * preempted, not an idle-type TASK_NOLOAD sleep). Untracked tasks cost one
 * state test, and a lookup only when they block in D. */
SEC("tp_btf/sched_switch")
int BPF_PROG(dstate_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	if (preempt || !(prev_state & TASK_UNINTERRUPTIBLE) || (prev_state & TASK_NOLOAD))
		return 0;
	if (!pm_tracked_lookup(prev->tgid))
		return 0;
	__u32 tid = prev->pid;
	__u64 now = bpf_ktime_get_ns();
	bpf_map_update_elem(&dstate_start, &tid, &now, BPF_ANY);
	return 0;
}

/* D state ends at the wakeup: one lookup for every woken task. */
SEC("tp_btf/sched_wakeup")
int BPF_PROG(dstate_wakeup, struct task_struct *p)
{
	__u32 tid = p->pid;
	__u64 *start = bpf_map_lookup_elem(&dstate_start, &tid);
	if (!start)
		return 0;
	__u64 d = bpf_ktime_get_ns() - *start;
	bpf_map_delete_elem(&dstate_start, &tid);
	struct pm_hist *h = pm_hist_get(dstate_hist, p->tgid);
	if (h)
		pm_hist_add(h, d);
	return 0;
}
