// premortem's Node-API addon: the Tracer class and the record layout.
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
  Napi::FunctionReference tracer_;
};

}  // namespace premortem

using PremortemAddon = premortem::Addon;
NODE_API_ADDON(PremortemAddon)
