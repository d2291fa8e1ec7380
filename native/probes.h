// The probes compiled into this addon: one BPF object per bpf/<name>.bpf.c,
// embedded through its generated skeleton.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace premortem {

struct ProbeImage {
  const char* name;
  const void* elf;
  size_t elf_size;
};

const std::vector<ProbeImage>& CompiledProbes();
const ProbeImage* FindProbe(const std::string& name);

}  // namespace premortem
