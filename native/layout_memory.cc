// Layouts of the memory probe's map values (bpf/memory.h).
#include "layout.h"

extern "C" {
#include "../bpf/memory.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_fault_stats) == 40, "pm_fault_stats layout");
static_assert(offsetof(pm_fault_stats, major) == 16, "pm_fault_stats.major");
static_assert(sizeof(pm_rss_last) == 64, "pm_rss_last layout");
static_assert(offsetof(pm_rss_last, peak) == 48, "pm_rss_last.peak");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("fault_stats", StructLayout(env, sizeof(pm_fault_stats))
                           .PM_FIELD(pm_fault_stats, start_ns).PM_FIELD(pm_fault_stats, faults)
                           .PM_FIELD(pm_fault_stats, major).PM_FIELD(pm_fault_stats, kernel_mode)
                           .PM_FIELD(pm_fault_stats, last_ns).Done());
  s.Set("rss_last", StructLayout(env, sizeof(pm_rss_last))
                        .PM_FIELD(pm_rss_last, start_ns).PM_FIELD(pm_rss_last, ts_ns)
                        .PM_FIELD(pm_rss_last, file).PM_FIELD(pm_rss_last, anon)
                        .PM_FIELD(pm_rss_last, swap).PM_FIELD(pm_rss_last, shmem)
                        .PM_FIELD(pm_rss_last, peak).PM_FIELD(pm_rss_last, writes).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
