#include "layout.h"

extern "C" {
#include "../bpf/requests.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_request) == 32 + PM_REQ_LINE_MAX, "pm_request layout");
static_assert(offsetof(pm_request, line) == 32, "pm_request.line");
static_assert(sizeof(pm_req_stats) == 40, "pm_req_stats layout");
static_assert((PM_REQ_LINE_MAX & (PM_REQ_LINE_MAX - 1)) == 0, "PM_REQ_LINE_MAX is a power of two (the BPF masks indices with it)");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("request", StructLayout(env, sizeof(pm_request))
                       .PM_FIELD(pm_request, start_ns).PM_FIELD(pm_request, sock_cookie)
                       .PM_FIELD(pm_request, tid).PM_FIELD(pm_request, fd).PM_FIELD(pm_request, len)
                       .PM_FIELD(pm_request, flags).PM_FIELD(pm_request, line).Done());
  s.Set("req_stats", StructLayout(env, sizeof(pm_req_stats))
                         .PM_FIELD(pm_req_stats, captured).PM_FIELD(pm_req_stats, answered)
                         .PM_FIELD(pm_req_stats, closed).PM_FIELD(pm_req_stats, replaced)
                         .PM_FIELD(pm_req_stats, unreadable).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
