#include "errors.h"

#include <cstring>

namespace premortem {

static const char* ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EINVAL: return "EINVAL";
    case ENOMEM: return "ENOMEM";
    case E2BIG: return "E2BIG";
    case ENOSPC: return "ENOSPC";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ESRCH: return "ESRCH";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    default: return nullptr;
  }
}

Failure MakeFailure(const char* code, int err, const std::string& message,
                    const std::string& log) {
  Failure f;
  f.code = code;
  f.err = err < 0 ? -err : err;
  f.message = message;
  f.log = log;
  return f;
}

std::string Failure::Full() const {
  std::string s = message;
  if (err) {
    const char* name = ErrnoName(err);
    s += ": ";
    s += name ? name : "errno " + std::to_string(err);
    s += " (";
    s += std::strerror(err);
    s += ")";
  }
  if (err == EPERM || err == EACCES)
    s += ". Run as root, or grant CAP_BPF and CAP_PERFMON";
  if (!log.empty()) {
    // Keep the tail: the verifier's reason is at the end of its log.
    constexpr size_t kMaxLog = 4096;
    s += "\n";
    s += log.size() > kMaxLog ? "..." + log.substr(log.size() - kMaxLog) : log;
  }
  return s;
}

Napi::Object Failure::ToObject(Napi::Env env) const {
  Napi::Object o = Napi::Object::New(env);
  o.Set("code", code);
  o.Set("errno", err);
  o.Set("message", Full());
  return o;
}

Napi::Error Failure::ToError(Napi::Env env) const {
  Napi::Error e = Napi::Error::New(env, Full());
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, err));
  if (err) {
    const char* name = ErrnoName(err);
    e.Set("syscallCode", name ? name : "");
  }
  e.Set("libbpfLog", Napi::String::New(env, log));
  return e;
}

}  // namespace premortem
