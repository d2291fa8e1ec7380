#include "layout.h"

extern "C" {
#include "../bpf/tcp.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_tcp_event) == 88, "pm_tcp_event layout");
static_assert(offsetof(pm_tcp_event, duration_ns) == 48, "pm_tcp_event.duration_ns");
static_assert(sizeof(pm_tcp_port) == 16, "pm_tcp_port layout");
static_assert(sizeof(pm_tcp_key) == 8, "pm_tcp_key layout");
static_assert(sizeof(pm_tcp_stats) == 320, "pm_tcp_stats layout");
static_assert(sizeof(pm_tcp_listen) == 88, "pm_tcp_listen layout");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("tcp_event", StructLayout(env, sizeof(pm_tcp_event), PM_REC_TCP)
                         .PM_FIELD(pm_tcp_event, subtype).PM_FIELD(pm_tcp_event, service_id)
                         .PM_FIELD(pm_tcp_event, lport).PM_FIELD(pm_tcp_event, rport)
                         .PM_FIELD(pm_tcp_event, family).PM_FIELD(pm_tcp_event, state)
                         .PM_FIELD(pm_tcp_event, ack_backlog).PM_FIELD(pm_tcp_event, max_ack_backlog)
                         .PM_FIELD(pm_tcp_event, reason).PM_FIELD(pm_tcp_event, remote)
                         .PM_FIELD(pm_tcp_event, duration_ns).PM_FIELD(pm_tcp_event, saddr)
                         .PM_FIELD(pm_tcp_event, daddr).Done());
  s.Set("tcp_key", StructLayout(env, sizeof(pm_tcp_key))
                       .PM_FIELD(pm_tcp_key, netns).PM_FIELD(pm_tcp_key, port).Done());
  s.Set("tcp_port", StructLayout(env, sizeof(pm_tcp_port))
                        .PM_FIELD(pm_tcp_port, service_id).PM_FIELD(pm_tcp_port, slot)
                        .PM_FIELD(pm_tcp_port, remote_slot).PM_FIELD(pm_tcp_port, flags).Done());
  s.Set("tcp_stats", StructLayout(env, sizeof(pm_tcp_stats))
                         .PM_FIELD(pm_tcp_stats, current).PM_FIELD(pm_tcp_stats, entered)
                         .PM_FIELD(pm_tcp_stats, transitions).PM_FIELD(pm_tcp_stats, retransmits)
                         .PM_FIELD(pm_tcp_stats, rst_sent).PM_FIELD(pm_tcp_stats, rst_recv)
                         .PM_FIELD(pm_tcp_stats, backlog_full).PM_FIELD(pm_tcp_stats, listen_overflows)
                         .PM_FIELD(pm_tcp_stats, close_wait_lingering)
                         .PM_FIELD(pm_tcp_stats, records_suppressed).Done());
  s.Set("tcp_listen", StructLayout(env, sizeof(pm_tcp_listen))
                          .PM_FIELD(pm_tcp_listen, port).PM_FIELD(pm_tcp_listen, depth)
                          .PM_FIELD(pm_tcp_listen, max).PM_FIELD(pm_tcp_listen, peak)
                          .PM_FIELD(pm_tcp_listen, updated_ns).PM_FIELD(pm_tcp_listen, last_rec_ns).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
