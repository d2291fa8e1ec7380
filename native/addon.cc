// premortem's Node-API addon: the Tracer class and the record layout.
#include <malloc.h>
#include <napi.h>
#include <time.h>

#include "layout.h"
#include "memory.h"
#include "probes.h"
#include "tracer.h"

namespace premortem {

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) {
    tracer_ = Napi::Persistent(Tracer::Define(env));
    DefineAddon(exports, {
                             InstanceValue("Tracer", tracer_.Value(), napi_enumerable),
                             InstanceMethod<&Addon::GetLayout>("layout", napi_enumerable),
                             InstanceMethod<&Addon::GetProbeNames>("probeNames", napi_enumerable),
                             InstanceMethod<&Addon::BootTimeNs>("bootTimeNs", napi_enumerable),
                             InstanceMethod<&Addon::ReadMemory>("readProcessMemory", napi_enumerable),
                             InstanceMethod<&Addon::WalkFrames>("walkFrameChain", napi_enumerable),
                             InstanceMethod<&Addon::TuneMalloc>("tuneMalloc", napi_enumerable),
                         });
  }

 private:
  Napi::Value GetLayout(const Napi::CallbackInfo& info) { return Layout(info.Env()); }
  Napi::Value GetProbeNames(const Napi::CallbackInfo& info) {
    const auto& probes = CompiledProbes();
    Napi::Array out = Napi::Array::New(info.Env(), probes.size());
    for (size_t i = 0; i < probes.size(); i++) out.Set(i, probes[i].name);
    return out;
  }
  // CLOCK_BOOTTIME, the clock of every record's ts_ns (bpf_ktime_get_boot_ns).
  Napi::Value BootTimeNs(const Napi::CallbackInfo& info) {
    timespec ts{};
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return Napi::Number::New(info.Env(), double(ts.tv_sec) * 1e9 + double(ts.tv_nsec));
  }
  Napi::Value ReadMemory(const Napi::CallbackInfo& info) { return ReadProcessMemory(info); }
  Napi::Value WalkFrames(const Napi::CallbackInfo& info) { return WalkFrameChain(info); }
  // glibc's malloc for a long-lived agent (issue 16): a fixed mmap threshold (the dynamic one climbs to
  // 32 MiB after the first large free, so multi-MiB /proc reads then live in the brk heap and stay
  // resident: 42 MiB of it at 256 workers, 8 MiB with these), trimming beyond 64 KiB, two arenas.
  Napi::Value TuneMalloc(const Napi::CallbackInfo& info) {
    constexpr int kMmapThreshold = 64 * 1024, kTrimThreshold = 64 * 1024, kArenaMax = 2;
    bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThreshold) == 1;
    ok = mallopt(M_TRIM_THRESHOLD, kTrimThreshold) == 1 && ok;
    ok = mallopt(M_ARENA_MAX, kArenaMax) == 1 && ok;
    return Napi::Boolean::New(info.Env(), ok);
  }
  Napi::FunctionReference tracer_;
};

}  // namespace premortem

using PremortemAddon = premortem::Addon;
NODE_API_ADDON(PremortemAddon)
