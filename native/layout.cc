#include "layout.h"

#include <cstddef>
#include <cstdint>

extern "C" {
#include "../bpf/flood.h"
#include "../bpf/pm_common.h"
#include "../bpf/runqlat.h"
}

namespace premortem {

namespace {

// Layouts the decoder depends on; a change here is a layout version bump.
static_assert(sizeof(pm_hdr) == 16, "pm_hdr is 16 bytes");
static_assert(sizeof(pm_tracked) == 16, "pm_tracked is 16 bytes");
static_assert(sizeof(pm_hist) == (PM_HIST_SLOTS + 3) * 8, "pm_hist layout");
static_assert(sizeof(pm_runq_slow) == 80, "pm_runq_slow layout");
static_assert(offsetof(pm_runq_slow, wait_ns) == 24, "pm_runq_slow.wait_ns");
static_assert(sizeof(pm_flood) == 24, "pm_flood layout");
static_assert(sizeof(pm_cpu_stats) == 32, "pm_cpu_stats layout");

class StructLayout {
 public:
  StructLayout(Napi::Env env, size_t size, uint32_t type = 0)
      : obj_(Napi::Object::New(env)), fields_(Napi::Object::New(env)) {
    obj_.Set("size", Napi::Number::New(env, size));
    if (type) obj_.Set("type", Napi::Number::New(env, type));
    obj_.Set("offsets", fields_);
  }
  StructLayout& Field(const char* name, size_t offset) {
    fields_.Set(name, Napi::Number::New(fields_.Env(), offset));
    return *this;
  }
  Napi::Object Done() { return obj_; }

 private:
  Napi::Object obj_;
  Napi::Object fields_;
};

#define F(s, f) Field(#f, offsetof(s, f))

}  // namespace

Napi::Object Layout(Napi::Env env) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", Napi::Number::New(env, PM_LAYOUT_VERSION));
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxTracked", Napi::Number::New(env, PM_MAX_TRACKED));
  limits.Set("maxThreads", Napi::Number::New(env, PM_MAX_THREADS));
  limits.Set("histSlots", Napi::Number::New(env, PM_HIST_SLOTS));
  limits.Set("recordTypes", Napi::Number::New(env, PM_REC_MAX));
  limits.Set("commLen", Napi::Number::New(env, PM_COMM_LEN));
  out.Set("limits", limits);

  Napi::Object s = Napi::Object::New(env);
  s.Set("hdr", StructLayout(env, sizeof(pm_hdr)).F(pm_hdr, type).F(pm_hdr, size).F(pm_hdr, cpu)
                   .F(pm_hdr, ts_ns).Done());
  s.Set("tracked", StructLayout(env, sizeof(pm_tracked)).F(pm_tracked, start_ns)
                       .F(pm_tracked, flags).Done());
  s.Set("hist", StructLayout(env, sizeof(pm_hist)).F(pm_hist, slots).F(pm_hist, count)
                    .F(pm_hist, sum_ns).F(pm_hist, max_ns).Done());
  s.Set("runq_slow", StructLayout(env, sizeof(pm_runq_slow), PM_REC_RUNQ_SLOW)
                         .F(pm_runq_slow, pid).F(pm_runq_slow, tid).F(pm_runq_slow, wait_ns)
                         .F(pm_runq_slow, culprit_pid).F(pm_runq_slow, culprit_tid)
                         .F(pm_runq_slow, preempted).F(pm_runq_slow, comm)
                         .F(pm_runq_slow, culprit_comm).Done());
  s.Set("cpu_stats", StructLayout(env, sizeof(pm_cpu_stats))
                         .F(pm_cpu_stats, involuntary_switches).F(pm_cpu_stats, voluntary_switches)
                         .F(pm_cpu_stats, slow_waits).F(pm_cpu_stats, wakeups).Done());
  s.Set("flood", StructLayout(env, sizeof(pm_flood), PM_REC_FLOOD).F(pm_flood, seq).Done());
  s.Set("flood_cfg", StructLayout(env, sizeof(pm_flood_cfg)).F(pm_flood_cfg, tgid)
                         .F(pm_flood_cfg, batch).Done());
  out.Set("structs", s);
  return out;
}

}  // namespace premortem
