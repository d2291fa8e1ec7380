#include "layout.h"

extern "C" {
#include "../bpf/disk.h"
}

namespace premortem {
namespace {

static_assert(sizeof(pm_bio_slow) == 80, "pm_bio_slow layout");
static_assert(offsetof(pm_bio_slow, sector) == 24, "pm_bio_slow.sector");
static_assert(offsetof(pm_bio_slow, comm) == 64, "pm_bio_slow.comm");
static_assert(sizeof(pm_disk_stats) == 360, "pm_disk_stats layout");
static_assert(offsetof(pm_disk_stats, read_ops) == sizeof(pm_hist), "pm_disk_stats.read_ops");

void Fill(Napi::Env env, Napi::Object s) {
  s.Set("bio_slow", StructLayout(env, sizeof(pm_bio_slow), PM_REC_BIO_SLOW)
                        .PM_FIELD(pm_bio_slow, dev).PM_FIELD(pm_bio_slow, op)
                        .PM_FIELD(pm_bio_slow, sector).PM_FIELD(pm_bio_slow, latency_ns)
                        .PM_FIELD(pm_bio_slow, bytes).PM_FIELD(pm_bio_slow, pid)
                        .PM_FIELD(pm_bio_slow, tid).PM_FIELD(pm_bio_slow, error)
                        .PM_FIELD(pm_bio_slow, tracked).PM_FIELD(pm_bio_slow, comm).Done());
  s.Set("disk_stats", StructLayout(env, sizeof(pm_disk_stats))
                          .PM_FIELD(pm_disk_stats, lat).PM_FIELD(pm_disk_stats, read_ops)
                          .PM_FIELD(pm_disk_stats, read_bytes).PM_FIELD(pm_disk_stats, write_ops)
                          .PM_FIELD(pm_disk_stats, write_bytes).PM_FIELD(pm_disk_stats, flush_ops)
                          .PM_FIELD(pm_disk_stats, other_ops).PM_FIELD(pm_disk_stats, other_bytes)
                          .PM_FIELD(pm_disk_stats, errors).PM_FIELD(pm_disk_stats, slow)
                          .PM_FIELD(pm_disk_stats, last_dev).Done());
}

LayoutRegistrar registrar(Fill);

}  // namespace
}  // namespace premortem
