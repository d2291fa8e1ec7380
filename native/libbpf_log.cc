#include "libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace premortem {

namespace {

thread_local std::string* tls_capture = nullptr;
constexpr size_t kMaxCapturedBytes = 64 * 1024;  // a verifier log can be huge

int Print(enum libbpf_print_level level, const char* format, va_list args) {
  if (!tls_capture) return 0;  // outside a capture nobody asked: stay quiet
  if (level == LIBBPF_DEBUG) return 0;
  va_list copy;
  va_copy(copy, args);
  int n = vsnprintf(nullptr, 0, format, copy);
  va_end(copy);
  if (n <= 0 || tls_capture->size() >= kMaxCapturedBytes) return n;
  std::string line(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(line.data(), line.size(), format, args);
  line.pop_back();
  tls_capture->append(line, 0, kMaxCapturedBytes - tls_capture->size());
  return n;
}

}  // namespace

void InstallLibbpfLogger() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(Print); });
}

LibbpfLogCapture::LibbpfLogCapture() : previous_(tls_capture) {
  tls_capture = &buffer_;
}

LibbpfLogCapture::~LibbpfLogCapture() { tls_capture = previous_; }

std::string LibbpfLogCapture::Take() {
  std::string out;
  out.swap(buffer_);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace premortem
