#include "layout.h"

extern "C" {
#include "../bpf/flood.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_flood) == 24, "pm_flood layout");
static_assert(sizeof(pm_flood_cfg) == 8, "pm_flood_cfg layout");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("flood", StructLayout(env, sizeof(pm_flood), PM_REC_FLOOD).PM_FIELD(pm_flood, seq).Done());
  s.Set("flood_cfg", StructLayout(env, sizeof(pm_flood_cfg)).PM_FIELD(pm_flood_cfg, tgid)
                         .PM_FIELD(pm_flood_cfg, batch).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
