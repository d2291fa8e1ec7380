// Layouts of the lifecycle probe's records and map values (bpf/lifecycle.h).
#include "layout.h"

extern "C" {
#include "../bpf/lifecycle.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_fork) == 88, "pm_fork layout");
static_assert(offsetof(pm_fork, parent_start_ns) == 32, "pm_fork.parent_start_ns");
static_assert(offsetof(pm_fork, child_comm) == 72, "pm_fork.child_comm");
static_assert(sizeof(pm_exec) == 312, "pm_exec layout");
static_assert(offsetof(pm_exec, filename) == 56, "pm_exec.filename");
static_assert(sizeof(pm_exit) == 136, "pm_exit layout");
static_assert(offsetof(pm_exit, rss_file) == 48, "pm_exit.rss_file");
static_assert(offsetof(pm_exit, comm) == 120, "pm_exit.comm");
static_assert(sizeof(pm_signal) == 96, "pm_signal layout");
static_assert(offsetof(pm_signal, sig) == 40, "pm_signal.sig");
static_assert(offsetof(pm_signal, sender_comm) == 80, "pm_signal.sender_comm");
static_assert(sizeof(pm_oom) == 192, "pm_oom layout");
static_assert(offsetof(pm_oom, kind) == 88, "pm_oom.kind");
static_assert(offsetof(pm_oom, memcg_id) == 144, "pm_oom.memcg_id");
static_assert(offsetof(pm_oom, trigger_comm) == 176, "pm_oom.trigger_comm");
static_assert(sizeof(pm_lifecycle_stats) == 32, "pm_lifecycle_stats layout");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("fork", StructLayout(env, sizeof(pm_fork), PM_REC_FORK)
                    .PM_FIELD(pm_fork, parent_pid).PM_FIELD(pm_fork, parent_tid)
                    .PM_FIELD(pm_fork, child_pid).PM_FIELD(pm_fork, child_tid)
                    .PM_FIELD(pm_fork, parent_start_ns).PM_FIELD(pm_fork, child_start_ns)
                    .PM_FIELD(pm_fork, is_thread).PM_FIELD(pm_fork, tracked)
                    .PM_FIELD(pm_fork, parent_comm).PM_FIELD(pm_fork, child_comm).Done());
  s.Set("exec", StructLayout(env, sizeof(pm_exec), PM_REC_EXEC)
                    .PM_FIELD(pm_exec, pid).PM_FIELD(pm_exec, tid).PM_FIELD(pm_exec, old_tid).PM_FIELD(pm_exec, flags)
                    .PM_FIELD(pm_exec, start_ns).PM_FIELD(pm_exec, comm)
                    .PM_FIELD(pm_exec, filename).Done());
  s.Set("exit", StructLayout(env, sizeof(pm_exit), PM_REC_EXIT)
                    .PM_FIELD(pm_exit, pid).PM_FIELD(pm_exit, tid).PM_FIELD(pm_exit, ppid)
                    .PM_FIELD(pm_exit, exit_code).PM_FIELD(pm_exit, start_ns)
                    .PM_FIELD(pm_exit, group_dead).PM_FIELD(pm_exit, mm_present)
                    .PM_FIELD(pm_exit, rss_file).PM_FIELD(pm_exit, rss_anon)
                    .PM_FIELD(pm_exit, rss_swap).PM_FIELD(pm_exit, rss_shmem)
                    .PM_FIELD(pm_exit, rss_peak).PM_FIELD(pm_exit, min_flt)
                    .PM_FIELD(pm_exit, maj_flt).PM_FIELD(pm_exit, proc_min_flt)
                    .PM_FIELD(pm_exit, proc_maj_flt).PM_FIELD(pm_exit, comm).Done());
  s.Set("signal", StructLayout(env, sizeof(pm_signal), PM_REC_SIGNAL)
                      .PM_FIELD(pm_signal, pid).PM_FIELD(pm_signal, tid)
                      .PM_FIELD(pm_signal, sender_pid).PM_FIELD(pm_signal, sender_tid)
                      .PM_FIELD(pm_signal, start_ns).PM_FIELD(pm_signal, sig)
                      .PM_FIELD(pm_signal, si_code).PM_FIELD(pm_signal, result)
                      .PM_FIELD(pm_signal, group).PM_FIELD(pm_signal, kernel)
                      .PM_FIELD(pm_signal, si_pid).PM_FIELD(pm_signal, comm)
                      .PM_FIELD(pm_signal, sender_comm).Done());
  s.Set("oom", StructLayout(env, sizeof(pm_oom), PM_REC_OOM)
                   .PM_FIELD(pm_oom, pid).PM_FIELD(pm_oom, tid).PM_FIELD(pm_oom, start_ns)
                   .PM_FIELD(pm_oom, uid).PM_FIELD(pm_oom, oom_score_adj)
                   .PM_FIELD(pm_oom, trigger_pid).PM_FIELD(pm_oom, tracked)
                   .PM_FIELD(pm_oom, rss_file).PM_FIELD(pm_oom, rss_anon)
                   .PM_FIELD(pm_oom, rss_swap).PM_FIELD(pm_oom, rss_shmem)
                   .PM_FIELD(pm_oom, total_vm).PM_FIELD(pm_oom, kind)
                   .PM_FIELD(pm_oom, oom_level).PM_FIELD(pm_oom, cgroup_id)
                   .PM_FIELD(pm_oom, memcg_usage).PM_FIELD(pm_oom, memcg_limit)
                   .PM_FIELD(pm_oom, oom_cgroup_id).PM_FIELD(pm_oom, oom_usage)
                   .PM_FIELD(pm_oom, oom_limit).PM_FIELD(pm_oom, memcg_id)
                   .PM_FIELD(pm_oom, memcg_oom_events).PM_FIELD(pm_oom, memcg_oom_kills)
                   .PM_FIELD(pm_oom, comm).PM_FIELD(pm_oom, trigger_comm).Done());
  s.Set("lifecycle_stats", StructLayout(env, sizeof(pm_lifecycle_stats))
                               .PM_FIELD(pm_lifecycle_stats, forks_tracked)
                               .PM_FIELD(pm_lifecycle_stats, track_full)
                               .PM_FIELD(pm_lifecycle_stats, untracked_exits)
                               .PM_FIELD(pm_lifecycle_stats, stale_ignored).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
