// Tracer.attachUprobe: a deferred uprobe/uretprobe program attached to one
// function of one binary (by file offset), with a BPF cookie the program reads.
// Kept apart from tracer.cc so that it changes on its own.
#include <bpf/libbpf.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "libbpf_log.h"
#include "tracer.h"

namespace premortem {

namespace {

std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

Napi::Value Tracer::AttachUprobe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  if (info.Length() < 5 || !info[3].IsNumber() || !info[4].IsNumber())
    throw MakeFailure(kErrArg, EINVAL,
                      "attachUprobe(probe, program, binaryPath, fileOffset, pid, cookie?)").ToError(env);
  std::string pname = info[0].ToString(), prog_name = info[1].ToString(), path = info[2].ToString();
  double offset = info[3].As<Napi::Number>().DoubleValue();
  int pid = info[4].As<Napi::Number>().Int32Value();
  double cookie = info.Length() > 5 && info[5].IsNumber() ? info[5].As<Napi::Number>().DoubleValue() : 0;
  if (!(offset > 0) || offset != std::floor(offset) || !(cookie >= 0) || cookie != std::floor(cookie))
    throw MakeFailure(kErrArg, EINVAL, "attachUprobe: fileOffset > 0 and cookie >= 0 must be integers").ToError(env);
  for (LoadedProbe& p : probes_) {
    if (p.name != pname || !p.loaded) continue;
    bpf_program* prog = bpf_object__find_program_by_name(p.obj, prog_name.c_str());
    if (!prog) break;
    const char* sec = bpf_program__section_name(prog);
    bool ret = strcmp(sec, "uretprobe") == 0;
    if (!ret && strcmp(sec, "uprobe") != 0)
      throw MakeFailure(kErrArg, EINVAL, pname + "/" + prog_name + " is not a uprobe program (" + sec + ")").ToError(env);
    LibbpfLogCapture capture;
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = static_cast<__u64>(cookie), .retprobe = ret);
    bpf_link* link = bpf_program__attach_uprobe_opts(prog, pid, path.c_str(), static_cast<size_t>(offset), &opts);
    if (!link)
      throw MakeFailure(kErrAttach, errno,
                        std::string("attaching ") + (ret ? "uretprobe " : "uprobe ") + prog_name + " at " +
                            path + "+" + Hex(static_cast<uint64_t>(offset)),
                        capture.Take())
          .ToError(env);
    uint32_t id = next_link_id_++;
    extra_links_[id] = link;
    return Napi::Number::New(env, id);
  }
  throw MakeFailure(kErrUnknownProbe, EINVAL, "no loaded program " + pname + "/" + prog_name).ToError(env);
}

}  // namespace premortem
