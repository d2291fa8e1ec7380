#include "memory.h"

#include <sys/uio.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

#include "errors.h"

namespace premortem {

namespace {

Napi::Error MemoryError(Napi::Env env, const char* code, int err, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message + ": " + std::strerror(err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

}  // namespace

// Ranges are read in order into `out`, laid end to end. A range that cannot be
// read ends the transfer there (the kernel never splits a range): the return
// value tells how many bytes, hence which ranges, are valid. Nothing is thrown
// for unmapped addresses (a racing interpreter frees memory): only for a gone
// process, a refused permission, or bad arguments.
Napi::Value ReadProcessMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsTypedArray())
    throw MakeFailure(kErrArg, EINVAL, "readProcessMemory(pid, ranges: Float64Array, out: Uint8Array)").ToError(env);
  int pid = info[0].As<Napi::Number>().Int32Value();
  Napi::TypedArray ranges_ta = info[1].As<Napi::TypedArray>();
  Napi::TypedArray out_ta = info[2].As<Napi::TypedArray>();
  if (ranges_ta.TypedArrayType() != napi_float64_array || out_ta.TypedArrayType() != napi_uint8_array)
    throw MakeFailure(kErrArg, EINVAL, "readProcessMemory: ranges must be a Float64Array, out a Uint8Array").ToError(env);
  Napi::Float64Array ranges = ranges_ta.As<Napi::Float64Array>();
  Napi::Uint8Array out = out_ta.As<Napi::Uint8Array>();
  size_t n = ranges.ElementLength() / 2;
  if (pid <= 0 || n > kMaxReadRanges)
    throw MakeFailure(kErrArg, EINVAL, "readProcessMemory: pid > 0 and at most " +
                                           std::to_string(kMaxReadRanges) + " ranges").ToError(env);
  iovec remote[kMaxReadRanges];
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    double addr = ranges[2 * i], len = ranges[2 * i + 1];
    if (!(addr >= 0) || !(len >= 0) || addr != std::floor(addr) || len != std::floor(len) || addr > 9.0e15)
      throw MakeFailure(kErrArg, EINVAL, "readProcessMemory: range " + std::to_string(i) + " is not an address and a length").ToError(env);
    remote[i].iov_base = reinterpret_cast<void*>(static_cast<uintptr_t>(addr));
    remote[i].iov_len = static_cast<size_t>(len);
    total += remote[i].iov_len;
  }
  if (total > out.ByteLength())
    throw MakeFailure(kErrArg, EINVAL, "readProcessMemory: ranges total " + std::to_string(total) +
                                           " bytes, the buffer holds " + std::to_string(out.ByteLength())).ToError(env);
  if (n == 0 || total == 0) return Napi::Number::New(env, 0);
  iovec local{out.Data(), total};
  ssize_t got = process_vm_readv(pid, &local, 1, remote, n, 0);
  if (got >= 0) return Napi::Number::New(env, static_cast<double>(got));
  int err = errno;
  if (err == EFAULT) return Napi::Number::New(env, 0);  // the first range is not mapped
  if (err == ESRCH) throw MemoryError(env, kErrProcessGone, err, "process " + std::to_string(pid) + " is gone");
  if (err == EPERM || err == EACCES)
    throw MemoryError(env, kErrProcessMemoryDenied, err,
                      "reading the memory of process " + std::to_string(pid) +
                          " was refused: the agent needs CAP_SYS_PTRACE (and the same user or root)");
  throw MemoryError(env, kErrProcessMemory, err, "reading the memory of process " + std::to_string(pid));
}

namespace {

constexpr uint64_t kUserMax = uint64_t(1) << 47;  // x86-64 user addresses
bool UserPointer(uint64_t p) { return p >= 4096 && p < kUserMax; }

uint64_t LoadU64(const uint8_t* b, size_t off) {
  uint64_t v;
  memcpy(&v, b + off, 8);
  return v;
}

// A frame: from the prefetched region when it lies inside, else one read.
// Returns false when it cannot be read (errno says why).
bool ReadFrame(int pid, uint64_t frame, size_t bytes, const std::vector<uint8_t>& region, uint64_t region_start,
               uint8_t* buf, bool* from_region) {
  *from_region = !region.empty() && frame >= region_start && frame + bytes <= region_start + region.size();
  if (*from_region) {
    memcpy(buf, region.data() + (frame - region_start), bytes);
    return true;
  }
  iovec local{buf, bytes};
  iovec remote{reinterpret_cast<void*>(frame), bytes};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(bytes);
}

}  // namespace

// Follows a chain of interpreter frames in another process in C: the chain is
// sequential (each frame names the previous one), so it costs a system call
// per frame whatever the language; this saves the JavaScript round trip
// around each, and when given a region (3.11+: the used part of the thread's
// frame stack chunk, where most frames live) reads it once and serves the
// frames inside it from there.
// layout = [frameBytes, previousOffset, codeOffset, instrOffset, instrIsPointer (0/1),
//           ownerOffset (-1: none), skipOwner (-1: none)].
// out receives [code, instr] pairs, innermost first. truncated: more than
// maxFrames (out.length / 2) frames, or a frame that could not be read.
Napi::Value WalkFrameChain(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsTypedArray() || !info[3].IsTypedArray())
    throw MakeFailure(kErrArg, EINVAL, "walkFrameChain(pid, first, layout: Float64Array, out: Float64Array, regionStart?, regionBytes?)").ToError(env);
  int pid = info[0].As<Napi::Number>().Int32Value();
  double first = info[1].As<Napi::Number>().DoubleValue();
  Napi::Float64Array layout = info[2].As<Napi::Float64Array>();
  Napi::Float64Array out = info[3].As<Napi::Float64Array>();
  if (layout.ElementLength() < 7 || pid <= 0 || !(first >= 0))
    throw MakeFailure(kErrArg, EINVAL, "walkFrameChain: a pid, a frame address and 7 layout numbers").ToError(env);
  size_t frame_bytes = static_cast<size_t>(layout[0]);
  size_t prev_off = static_cast<size_t>(layout[1]), code_off = static_cast<size_t>(layout[2]);
  size_t instr_off = static_cast<size_t>(layout[3]);
  bool instr_ptr = layout[4] != 0;
  double owner_off = layout[5], skip_owner = layout[6];
  if (frame_bytes > kMaxFrameBytes || prev_off + 8 > frame_bytes || code_off + 8 > frame_bytes ||
      instr_off + (instr_ptr ? 8 : 4) > frame_bytes || owner_off >= static_cast<double>(frame_bytes))
    throw MakeFailure(kErrArg, EINVAL, "walkFrameChain: the offsets do not fit in the frame").ToError(env);
  size_t max_frames = std::min(out.ElementLength() / 2, kMaxChainFrames);

  // The region, read once (a region that cannot be read is simply not used).
  std::vector<uint8_t> region;
  uint64_t region_start = 0;
  if (info.Length() >= 6 && info[4].IsNumber() && info[5].IsNumber()) {
    double rs = info[4].As<Napi::Number>().DoubleValue(), rb = info[5].As<Napi::Number>().DoubleValue();
    if (rs > 0 && rs < 9.0e15 && rb > 0 && rb <= kMaxRegionBytes && UserPointer(static_cast<uint64_t>(rs))) {
      region_start = static_cast<uint64_t>(rs);
      region.resize(static_cast<size_t>(rb));
      iovec local{region.data(), region.size()};
      iovec remote{reinterpret_cast<void*>(region_start), region.size()};
      if (process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(region.size())) region.clear();
    }
  }
  bool region_used = !region.empty();

  uint8_t buf[kMaxFrameBytes];
  uint64_t frame = first >= 9.0e15 ? 0 : static_cast<uint64_t>(first);
  size_t count = 0, reads = region_used ? 1 : 0;
  bool truncated = false;
  for (size_t steps = 0; UserPointer(frame); steps++) {
    if (count >= max_frames || steps >= kMaxChainFrames) {
      truncated = true;
      break;
    }
    bool from_region;
    if (!ReadFrame(pid, frame, frame_bytes, region, region_start, buf, &from_region)) {
      if (errno == ESRCH) throw MemoryError(env, kErrProcessGone, ESRCH, "process " + std::to_string(pid) + " is gone");
      if (errno == EPERM)
        throw MemoryError(env, kErrProcessMemoryDenied, EPERM, "reading the memory of process " + std::to_string(pid) + " was refused");
      truncated = true;
      break;
    }
    if (!from_region) reads++;
    bool skip = owner_off >= 0 && skip_owner >= 0 && buf[static_cast<size_t>(owner_off)] == static_cast<uint8_t>(skip_owner);
    if (!skip) {
      int32_t lasti;
      memcpy(&lasti, buf + instr_off, 4);
      out[2 * count] = static_cast<double>(LoadU64(buf, code_off));
      out[2 * count + 1] = instr_ptr ? static_cast<double>(LoadU64(buf, instr_off)) : static_cast<double>(lasti);
      count++;
    }
    frame = LoadU64(buf, prev_off);
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("count", Napi::Number::New(env, static_cast<double>(count)));
  r.Set("truncated", Napi::Boolean::New(env, truncated));
  r.Set("reads", Napi::Number::New(env, static_cast<double>(reads)));
  return r;
}

}  // namespace premortem
