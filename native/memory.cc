#include "memory.h"

#include <sys/uio.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

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

}  // namespace premortem
