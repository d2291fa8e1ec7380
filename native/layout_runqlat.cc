#include "layout.h"

extern "C" {
#include "../bpf/runqlat.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_runq_slow) == 80, "pm_runq_slow layout");
static_assert(offsetof(pm_runq_slow, wait_ns) == 24, "pm_runq_slow.wait_ns");
static_assert(sizeof(pm_cpu_stats) == 32, "pm_cpu_stats layout");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("runq_slow", StructLayout(env, sizeof(pm_runq_slow), PM_REC_RUNQ_SLOW)
                         .PM_FIELD(pm_runq_slow, pid).PM_FIELD(pm_runq_slow, tid)
                         .PM_FIELD(pm_runq_slow, wait_ns).PM_FIELD(pm_runq_slow, culprit_pid)
                         .PM_FIELD(pm_runq_slow, culprit_tid).PM_FIELD(pm_runq_slow, preempted)
                         .PM_FIELD(pm_runq_slow, comm).PM_FIELD(pm_runq_slow, culprit_comm).Done());
  s.Set("cpu_stats", StructLayout(env, sizeof(pm_cpu_stats))
                         .PM_FIELD(pm_cpu_stats, involuntary_switches)
                         .PM_FIELD(pm_cpu_stats, voluntary_switches)
                         .PM_FIELD(pm_cpu_stats, slow_waits).PM_FIELD(pm_cpu_stats, wakeups).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
