// libbpf's print callback is process-wide; this captures its lines per thread
// while one tracer opens, loads or attaches, so each failure carries its own log.
#pragma once

#include <string>

namespace premortem {

void InstallLibbpfLogger();

class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  LibbpfLogCapture(const LibbpfLogCapture&) = delete;
  LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

  // Everything captured so far, and forget it.
  std::string Take();

 private:
  std::string* previous_;
  std::string buffer_;
};

}  // namespace premortem
