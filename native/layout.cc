#include "layout.h"

#include <cstddef>
#include <cstdint>
#include <vector>

extern "C" {
#include "../bpf/pm_common.h"
}

namespace premortem {

namespace {

// Layouts the decoder depends on; a change here is a layout version bump.
static_assert(sizeof(pm_hdr) == 16, "pm_hdr is 16 bytes");
static_assert(sizeof(pm_tracked) == 16, "pm_tracked is 16 bytes");
static_assert(sizeof(pm_hist) == (PM_HIST_SLOTS + 3) * 8, "pm_hist layout");

std::vector<LayoutFiller>& Fillers() {
  static std::vector<LayoutFiller> fillers;
  return fillers;
}

#define F PM_FIELD

}  // namespace

LayoutRegistrar::LayoutRegistrar(LayoutFiller fill) { Fillers().push_back(fill); }

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
  for (LayoutFiller fill : Fillers()) fill(env, s);
  out.Set("structs", s);
  return out;
}

}  // namespace premortem
