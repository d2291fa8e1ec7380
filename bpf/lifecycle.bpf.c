// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Lifecycle of tracked processes: fork (children of a process tracked with
 * PM_TRACK_FOLLOW_FORKS are added to the pid filter here, so a new gunicorn
 * worker is tracked from its first instruction), exec, exit (code, signal,
 * core dump, RSS and fault counts at exit), notable signals and OOM kills.
 * All hooks are tp_btf: argument lists from the btf_trace_<name> typedefs of
 * the running kernel (sched_process_exit is (p, group_dead) on 6.18).
 * Records only for rare events; untracked tasks cost one pid-filter lookup.
 */
#include "mm_core.bpf.h"
#include "lifecycle.h"

/* Emit fork/exit records for threads too (not only processes). */
const volatile __u32 targ_threads = 1;
/* Signals that become records, bit n = signal n. Default: HUP INT QUIT ILL
 * ABRT BUS FPE KILL USR1 SEGV USR2 PIPE TERM XCPU XFSZ SYS. */
const volatile __u64 targ_sig_mask = (1ULL << 1) | (1ULL << 2) | (1ULL << 3) | (1ULL << 4) |
				     (1ULL << 6) | (1ULL << 7) | (1ULL << 8) | (1ULL << 9) |
				     (1ULL << 10) | (1ULL << 11) | (1ULL << 12) | (1ULL << 13) |
				     (1ULL << 15) | (1ULL << 24) | (1ULL << 25) | (1ULL << 31);

#define SIGNAL_GROUP_EXIT 0x00000004 /* include/linux/sched/signal.h, stable since 2.6 */
#define SI_KERNEL 0x80
#define SEND_SIG_PRIV ((struct kernel_siginfo *)1) /* include/linux/sched/signal.h */
/* /proc/PID/stat start times are clock ticks (USER_HZ = 100): an agent that
 * tracks a pid from /proc knows its start time only to 10 ms. */
#define PM_START_GRAIN_NS 10000000ULL

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pm_lifecycle_stats);
} lc_stats SEC(".maps");

static __always_inline struct pm_lifecycle_stats *lc_stats_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&lc_stats, &zero);
}

static __always_inline __u64 proc_start_ns(struct task_struct *task)
{
	return BPF_CORE_READ(task, group_leader, start_boottime);
}

/*
 * The pid filter entry of `task`'s process, or NULL. An entry that names
 * another start time belongs to a dead process whose pid was reused (its exit
 * was missed, or the agent raced): ignored, so the new process is never
 * reported as the old one. start_ns 0 means "unknown" and always matches.
 */
static __always_inline bool lc_stale(struct pm_tracked *t, struct task_struct *task)
{
	if (!t->start_ns ||
	    t->start_ns / PM_START_GRAIN_NS == proc_start_ns(task) / PM_START_GRAIN_NS)
		return false;
	struct pm_lifecycle_stats *s = lc_stats_get();
	if (s)
		s->stale_ignored++;
	return true;
}

static __always_inline struct pm_tracked *lc_tracked(__u32 tgid, struct task_struct *task)
{
	struct pm_tracked *t = pm_tracked_lookup(tgid);
	return t && !lc_stale(t, task) ? t : NULL;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	struct pm_tracked *t = lc_tracked(ptgid, parent);
	if (!t)
		return 0;
	__u32 ctgid = child->tgid, ctid = child->pid;
	__u32 is_thread = ctgid != ctid; /* CLONE_THREAD: same tgid, new tid */
	__u32 tracked = PM_FORK_NOT_TRACKED;
	if (!is_thread && (t->flags & PM_TRACK_FOLLOW_FORKS)) {
		/* BPF_ANY: a stale entry left by a dead holder of this pid is replaced. */
		struct pm_tracked v = { .start_ns = child->start_boottime, .flags = t->flags };
		struct pm_lifecycle_stats *s = lc_stats_get();
		if (bpf_map_update_elem(&pids, &ctgid, &v, BPF_ANY) == 0) {
			tracked = PM_FORK_TRACKED;
			if (s)
				s->forks_tracked++;
		} else {
			tracked = PM_FORK_TRACK_FULL;
			if (s)
				s->track_full++;
		}
	}
	if (is_thread && !targ_threads)
		return 0;
	struct pm_fork *r = pm_reserve(sizeof(*r), PM_REC_FORK);
	if (!r)
		return 0;
	r->parent_pid = ptgid;
	r->parent_tid = parent->pid;
	r->child_pid = ctgid;
	r->child_tid = ctid;
	r->parent_start_ns = proc_start_ns(parent);
	r->child_start_ns = child->start_boottime;
	r->is_thread = is_thread;
	r->tracked = tracked;
	__builtin_memcpy(r->parent_comm, parent->comm, PM_COMM_LEN);
	__builtin_memcpy(r->child_comm, child->comm, PM_COMM_LEN);
	pm_submit(r);
	return 0;
}

static __always_inline bool comm_starts_with(const char *comm, const char *prefix, int n)
{
	for (int i = 0; i < n; i++)
		if (comm[i] != prefix[i])
			return false;
	return true;
}

/* Execs are rare (tens per second on a busy host): a few byte compares each. */
static __always_inline bool comm_names_python_server(const char *comm)
{
	return comm_starts_with(comm, "python", 6) || comm_starts_with(comm, "gunicorn", 8) ||
	       comm_starts_with(comm, "uvicorn", 7) || comm_starts_with(comm, "uwsgi", 5) ||
	       comm_starts_with(comm, "celery", 6) || comm_starts_with(comm, "hypercorn", 9) ||
	       comm_starts_with(comm, "daphne", 6);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;
	__u32 flags = 0;
	if (!lc_tracked(tgid, p)) {
		if (!comm_names_python_server(p->comm))
			return 0;
		flags = PM_EXEC_CANDIDATE;
	}
	struct pm_exec *r = pm_reserve(sizeof(*r), PM_REC_EXEC);
	if (!r)
		return 0;
	r->pid = tgid;
	r->tid = p->pid;
	r->old_tid = old_pid;
	r->flags = flags;
	r->start_ns = proc_start_ns(p);
	__builtin_memcpy(r->comm, p->comm, PM_COMM_LEN); /* begin_new_exec() already set it */
	const char *fn = BPF_CORE_READ(bprm, filename);
	if (bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), fn) < 0)
		r->filename[0] = 0;
	pm_submit(r);
	return 0;
}

/*
 * 6.18 calls trace_sched_process_exit(tsk, group_dead) in do_exit() after
 * `tsk->exit_code = code` and BEFORE exit_mm(): task->mm is still set here
 * (verified by test/lifecycle.test.ts, which asserts mm_present and an RSS
 * near what the process had). Older kernels fired it after exit_mm() with
 * mm == NULL: mm_present is 0 then, and the memory probe's rss_last map holds
 * the last RSS (≤ 10 ms old) instead.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *p, bool group_dead)
{
	__u32 tgid = p->tgid;
	struct pm_tracked *t = pm_tracked_lookup(tgid);
	if (!t)
		return 0;
	if (lc_stale(t, p)) {
		/* A stale entry (another start time) is dead weight once the pid's
		 * current holder is gone too. */
		if (group_dead)
			bpf_map_delete_elem(&pids, &tgid);
		return 0;
	}
	if (!group_dead && !targ_threads)
		return 0;

	struct pm_exit *r = pm_reserve(sizeof(*r), PM_REC_EXIT);
	if (r) {
		struct signal_struct *sig = p->signal;
		r->pid = tgid;
		r->tid = p->pid;
		r->ppid = BPF_CORE_READ(p, real_parent, tgid);
		/* What wait() will report: the group's code once the group is
		 * exiting (exit_group, fatal signal, core dump), else the task's. */
		__u32 code = p->exit_code;
		if (group_dead && (BPF_CORE_READ(sig, flags) & SIGNAL_GROUP_EXIT))
			code = BPF_CORE_READ(sig, group_exit_code);
		r->exit_code = code;
		r->start_ns = proc_start_ns(p);
		r->group_dead = group_dead;
		struct mm_struct *mm = p->mm;
		r->mm_present = mm != NULL;
		if (mm) {
			struct pm_rss rss;
			pm_read_rss(mm, &rss);
			__u64 total = rss.file + rss.anon + rss.shmem;
			__u64 hiwater = BPF_CORE_READ(mm, hiwater_rss);
			r->rss_file = pm_pages_to_bytes(rss.file);
			r->rss_anon = pm_pages_to_bytes(rss.anon);
			r->rss_swap = pm_pages_to_bytes(rss.swap);
			r->rss_shmem = pm_pages_to_bytes(rss.shmem);
			r->rss_peak = pm_pages_to_bytes(hiwater > total ? hiwater : total);
		} else {
			r->rss_file = r->rss_anon = r->rss_swap = r->rss_shmem = r->rss_peak = 0;
		}
		r->min_flt = p->min_flt;
		r->maj_flt = p->maj_flt;
		/* signal->min_flt/maj_flt sum the threads already released. */
		r->proc_min_flt = BPF_CORE_READ(sig, min_flt) + r->min_flt;
		r->proc_maj_flt = BPF_CORE_READ(sig, maj_flt) + r->maj_flt;
		__builtin_memcpy(r->comm, p->comm, PM_COMM_LEN);
		pm_submit(r);
	}
	if (group_dead) {
		/* After the record: the process is gone, its pid may be reused. */
		bpf_map_delete_elem(&pids, &tgid);
		struct pm_lifecycle_stats *s = lc_stats_get();
		if (s)
			s->untracked_exits++;
	}
	return 0;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	if (sig <= 0 || sig >= 64 || !(targ_sig_mask & (1ULL << sig)))
		return 0;
	__u32 tgid = task->tgid;
	if (!lc_tracked(tgid, task))
		return 0;
	struct pm_signal *r = pm_reserve(sizeof(*r), PM_REC_SIGNAL);
	if (!r)
		return 0;
	struct task_struct *cur = bpf_get_current_task_btf();
	r->pid = tgid;
	r->tid = task->pid;
	r->sender_pid = cur->tgid;
	r->sender_tid = cur->pid;
	r->start_ns = proc_start_ns(task);
	r->sig = sig;
	r->group = group;
	r->result = result;
	/* info may be SEND_SIG_NOINFO (0: from user space, like kill()) or
	 * SEND_SIG_PRIV (1: from the kernel), as the tracepoint itself decodes it. */
	__s32 code = 0;
	__u32 si_pid = 0;
	if ((unsigned long)info > (unsigned long)SEND_SIG_PRIV) {
		code = BPF_CORE_READ(info, si_code);
		if (code <= 0) /* SI_USER, SI_QUEUE, SI_TKILL...: a user sender */
			si_pid = BPF_CORE_READ(info, _sifields._kill._pid);
	} else if (info == SEND_SIG_PRIV) {
		code = SI_KERNEL;
	}
	r->si_code = code;
	r->si_pid = si_pid;
	r->kernel = code > 0 ? PM_SIG_FROM_KERNEL : PM_SIG_FROM_USER;
	__builtin_memcpy(r->comm, task->comm, PM_COMM_LEN);
	__builtin_memcpy(r->sender_comm, cur->comm, PM_COMM_LEN);
	pm_submit(r);
	return 0;
}

/*
 * Cgroup or global OOM: mark_victim carries no oom_control, so the kind is
 * inferred. A memcg OOM happens when a charge cannot fit under a page_counter
 * max even after reclaim: usage + nr_pages > max, nr_pages ≤ 512 (a PMD THP).
 * So the memcg that caused it has usage within a few MiB of its max. We walk
 * the victim's memcg and up to PM_OOM_MAX_LEVELS ancestors (v1 is always
 * hierarchical on 6.x) and call the first one whose usage is within
 * max(4 MiB, max/32) of its max the OOM cgroup; none: a global OOM. The root
 * memcg's max is PAGE_COUNTER_MAX, never near. Only the `memory` counter is
 * checked (v1 memsw limits, rarely set, are not).
 */
#define PM_OOM_MAX_LEVELS 8
#define PM_OOM_MIN_MARGIN_PAGES 1024

SEC("tp_btf/mark_victim")
int BPF_PROG(mark_victim, struct task_struct *task, uid_t uid)
{
	struct pm_oom *r = pm_reserve(sizeof(*r), PM_REC_OOM);
	if (!r)
		return 0;
	struct task_struct *cur = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	r->pid = tgid;
	r->tid = task->pid;
	r->start_ns = proc_start_ns(task);
	r->uid = uid;
	r->oom_score_adj = BPF_CORE_READ(task, signal, oom_score_adj);
	r->trigger_pid = cur->tgid;
	r->tracked = pm_tracked_lookup(tgid) != NULL;
	struct mm_struct *mm = task->mm;
	if (mm) {
		struct pm_rss rss;
		pm_read_rss(mm, &rss);
		r->rss_file = pm_pages_to_bytes(rss.file);
		r->rss_anon = pm_pages_to_bytes(rss.anon);
		r->rss_swap = pm_pages_to_bytes(rss.swap);
		r->rss_shmem = pm_pages_to_bytes(rss.shmem);
		r->total_vm = pm_pages_to_bytes(BPF_CORE_READ(mm, total_vm));
	} else {
		r->rss_file = r->rss_anon = r->rss_swap = r->rss_shmem = r->total_vm = 0;
	}
	r->kind = PM_OOM_GLOBAL;
	r->oom_level = PM_OOM_LEVEL_NONE;
	r->cgroup_id = r->memcg_usage = r->memcg_limit = 0;
	r->oom_cgroup_id = r->oom_usage = r->oom_limit = 0;
	r->memcg_id = r->memcg_oom_events = r->memcg_oom_kills = 0;
	r->pad = 0;

	struct mem_cgroup *memcg = pm_task_memcg(task);
	if (memcg) {
		r->cgroup_id = pm_memcg_cgroup_id(memcg);
		r->memcg_id = BPF_CORE_READ(memcg, id.id);
		r->memcg_usage = pm_pages_to_bytes(BPF_CORE_READ(memcg, memory.usage.counter));
		r->memcg_limit = pm_pages_to_bytes(BPF_CORE_READ(memcg, memory.max));
		if (bpf_core_field_exists(memcg->memory_events)) {
			int ev_oom = bpf_core_enum_value(enum memcg_memory_event, MEMCG_OOM);
			int ev_kill = bpf_core_enum_value(enum memcg_memory_event, MEMCG_OOM_KILL);
			if (ev_oom >= 0 && ev_oom < 9)
				r->memcg_oom_events = BPF_CORE_READ(memcg, memory_events[ev_oom].counter);
			if (ev_kill >= 0 && ev_kill < 9)
				r->memcg_oom_kills = BPF_CORE_READ(memcg, memory_events[ev_kill].counter);
		}
	}
	struct cgroup_subsys_state *css = memcg ? &memcg->css : NULL;
	for (__u32 level = 0; level < PM_OOM_MAX_LEVELS && css; level++) {
		struct mem_cgroup *m = (void *)css - bpf_core_field_offset(struct mem_cgroup, css);
		__u64 usage = BPF_CORE_READ(m, memory.usage.counter);
		__u64 max = BPF_CORE_READ(m, memory.max);
		__u64 margin = max / 32;
		if (margin < PM_OOM_MIN_MARGIN_PAGES)
			margin = PM_OOM_MIN_MARGIN_PAGES;
		if (usage + margin >= max) {
			r->kind = PM_OOM_CGROUP;
			r->oom_level = level;
			r->oom_cgroup_id = pm_memcg_cgroup_id(m);
			r->oom_usage = pm_pages_to_bytes(usage);
			r->oom_limit = pm_pages_to_bytes(max);
			break;
		}
		css = BPF_CORE_READ(css, parent);
	}
	__builtin_memcpy(r->comm, task->comm, PM_COMM_LEN);
	__builtin_memcpy(r->trigger_comm, cur->comm, PM_COMM_LEN);
	pm_submit(r);
	return 0;
}
