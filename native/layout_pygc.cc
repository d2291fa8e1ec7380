#include "layout.h"

extern "C" {
#include "../bpf/pygc.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_gc_pause) == 64, "pm_gc_pause layout");
static_assert(offsetof(pm_gc_pause, duration_ns) == 32, "pm_gc_pause.duration_ns");
static_assert(sizeof(pm_gc_stats) == 144, "pm_gc_stats layout");
static_assert(offsetof(pm_gc_stats, unmatched) == 104, "pm_gc_stats: fields are only ever added at the end");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("gc_pause", StructLayout(env, sizeof(pm_gc_pause), PM_REC_GC)
                        .PM_FIELD(pm_gc_pause, pid).PM_FIELD(pm_gc_pause, tid)
                        .PM_FIELD(pm_gc_pause, generation).PM_FIELD(pm_gc_pause, duration_ns)
                        .PM_FIELD(pm_gc_pause, collected).PM_FIELD(pm_gc_pause, comm).Done());
  s.Set("gc_stats", StructLayout(env, sizeof(pm_gc_stats))
                        .PM_FIELD(pm_gc_stats, count).PM_FIELD(pm_gc_stats, sum_ns)
                        .PM_FIELD(pm_gc_stats, max_ns).PM_FIELD(pm_gc_stats, collected)
                        .PM_FIELD(pm_gc_stats, slow).PM_FIELD(pm_gc_stats, unmatched)
                        .PM_FIELD(pm_gc_stats, unknown_count).PM_FIELD(pm_gc_stats, unknown_sum_ns)
                        .PM_FIELD(pm_gc_stats, unknown_max_ns).PM_FIELD(pm_gc_stats, unknown_collected).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
