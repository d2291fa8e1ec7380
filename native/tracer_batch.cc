// Tracer.mapLookupMany: the values of many keys of one map in one call. The
// agent reads a few per-process maps for every tracked process each tick; one
// call per map instead of one per process and map keeps that cost off the JS
// side (one crossing and one buffer per map per tick). Missing keys read as
// zeros with found[i] = 0. Per-CPU values are summed as u64 fields, as
// mapLookup does. Kept apart from tracer.cc so that it changes on its own.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "tracer.h"

namespace premortem {

namespace {

// Keys per call: the agent's tracked-process cap is far below it (bounded work per call).
constexpr size_t kMaxKeysPerCall = 1 << 16;

bool LookupSummed(int fd, uint32_t key, size_t value_size, int ncpu, std::vector<uint8_t>& scratch,
                  uint8_t* out) {
  size_t stride = (value_size + 7) & ~size_t(7);
  scratch.resize(stride * ncpu);
  if (bpf_map_lookup_elem(fd, &key, scratch.data()) != 0) return false;
  for (int c = 0; c < ncpu; c++)
    for (size_t off = 0; off + 8 <= value_size; off += 8) {
      uint64_t a, b;
      memcpy(&a, out + off, 8);
      memcpy(&b, scratch.data() + c * stride + off, 8);
      a += b;
      memcpy(out + off, &a, 8);
    }
  return true;
}

}  // namespace

Napi::Value Tracer::MapLookupMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[2].IsTypedArray() ||
      info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array)
    throw MakeFailure(kErrArg, EINVAL, "mapLookupMany(probe, map, keys): keys must be a Uint32Array").ToError(env);
  bool percpu;
  size_t vsize;
  int fd = MapFd(env, info[0], info[1], &percpu, &vsize);
  Napi::Uint32Array keys = info[2].As<Napi::Uint32Array>();
  size_t n = keys.ElementLength();
  if (n > kMaxKeysPerCall)
    throw MakeFailure(kErrArg, E2BIG, "mapLookupMany: at most " + std::to_string(kMaxKeysPerCall) + " keys per call")
        .ToError(env);
  Napi::ArrayBuffer values = Napi::ArrayBuffer::New(env, n * vsize);
  Napi::Uint8Array found = Napi::Uint8Array::New(env, n);
  uint8_t* out = static_cast<uint8_t*>(values.Data());
  memset(out, 0, n * vsize);
  int ncpu = percpu ? libbpf_num_possible_cpus() : 1;
  if (ncpu < 1) ncpu = 1;
  std::vector<uint8_t> scratch;
  for (size_t i = 0; i < n; i++) {
    uint32_t key = keys[i];
    bool ok = percpu ? LookupSummed(fd, key, vsize, ncpu, scratch, out + i * vsize)
                     : bpf_map_lookup_elem(fd, &key, out + i * vsize) == 0;
    found[i] = ok ? 1 : 0;
    if (!ok) memset(out + i * vsize, 0, vsize);  // a failed lookup may have written part of it
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("found", found);
  o.Set("values", values);
  o.Set("valueSize", Napi::Number::New(env, static_cast<double>(vsize)));
  return o;
}

}  // namespace premortem
