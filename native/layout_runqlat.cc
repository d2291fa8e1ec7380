#include "layout.h"

extern "C" {
#include "../bpf/runqlat.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_runq_slow) == 80, "pm_runq_slow layout");
static_assert(offsetof(pm_runq_slow, wait_ns) == 24, "pm_runq_slow.wait_ns");
static_assert(sizeof(pm_time_acct) == PM_TIME_CLASSES * 8, "pm_time_acct layout");
static_assert(sizeof(pm_cpu_stats) == 32 + PM_TIME_CLASSES * 8 + 8, "pm_cpu_stats layout");
static_assert(offsetof(pm_cpu_stats, time) == 32, "pm_cpu_stats.time");
static_assert(sizeof(pm_thread_time) == 24 + PM_TIME_CLASSES * 8, "pm_thread_time layout");
static_assert(PM_TC_OTHER == PM_TIME_CLASSES - 1, "time classes: add, never renumber");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("runq_slow", StructLayout(env, sizeof(pm_runq_slow), PM_REC_RUNQ_SLOW)
                         .PM_FIELD(pm_runq_slow, pid).PM_FIELD(pm_runq_slow, tid)
                         .PM_FIELD(pm_runq_slow, wait_ns).PM_FIELD(pm_runq_slow, culprit_pid)
                         .PM_FIELD(pm_runq_slow, culprit_tid).PM_FIELD(pm_runq_slow, preempted)
                         .PM_FIELD(pm_runq_slow, comm).PM_FIELD(pm_runq_slow, culprit_comm).Done());
  s.Set("cpu_stats", StructLayout(env, sizeof(pm_cpu_stats))
                         .PM_FIELD(pm_cpu_stats, involuntary_switches)
                         .PM_FIELD(pm_cpu_stats, voluntary_switches)
                         .PM_FIELD(pm_cpu_stats, slow_waits).PM_FIELD(pm_cpu_stats, wakeups)
                         .PM_FIELD(pm_cpu_stats, time).PM_FIELD(pm_cpu_stats, dstate_syscall).Done());
  s.Set("thread_time", StructLayout(env, sizeof(pm_thread_time))
                           .PM_FIELD(pm_thread_time, since_ns).PM_FIELD(pm_thread_time, tgid)
                           .PM_FIELD(pm_thread_time, state).PM_FIELD(pm_thread_time, preempted)
                           .PM_FIELD(pm_thread_time, syscall).PM_FIELD(pm_thread_time, time).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
