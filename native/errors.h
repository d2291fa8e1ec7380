// Errors thrown to JavaScript: a stable .code, the errno when there is one,
// and what libbpf said while it failed.
#pragma once

#include <napi.h>

#include <string>

namespace premortem {

// Codes are part of the API: the agent matches on them.
constexpr const char* kErrNoBtf = "PREMORTEM_ERR_NO_BTF";
constexpr const char* kErrOpen = "PREMORTEM_ERR_BPF_OPEN";
constexpr const char* kErrLoad = "PREMORTEM_ERR_BPF_LOAD";
constexpr const char* kErrAttach = "PREMORTEM_ERR_BPF_ATTACH";
constexpr const char* kErrMap = "PREMORTEM_ERR_BPF_MAP";
constexpr const char* kErrRingBuffer = "PREMORTEM_ERR_RINGBUF";
constexpr const char* kErrUnknownProbe = "PREMORTEM_ERR_UNKNOWN_PROBE";
constexpr const char* kErrNoProbe = "PREMORTEM_ERR_NO_PROBE_LOADED";
constexpr const char* kErrClosed = "PREMORTEM_ERR_CLOSED";
constexpr const char* kErrTrackFull = "PREMORTEM_ERR_TRACK_FULL";
constexpr const char* kErrArg = "PREMORTEM_ERR_ARG";

// A failure kept as data (per probe) and thrown when it must be.
struct Failure {
  std::string code;
  int err = 0;  // positive errno, 0 when none
  std::string message;
  std::string log;  // libbpf's own lines, verifier log included

  bool ok() const { return code.empty(); }
  std::string Full() const;
  Napi::Error ToError(Napi::Env env) const;
  Napi::Object ToObject(Napi::Env env) const;
};

Failure MakeFailure(const char* code, int err, const std::string& message,
                    const std::string& log = "");

}  // namespace premortem
