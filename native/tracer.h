// Tracer: opens, loads and attaches the BPF probes, owns their links, maps and
// the record reader, and delivers record batches to one JS callback.
// One owner, one close(): also run at environment teardown and on GC.
#pragma once

#include <napi.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "reader.h"

struct bpf_object;
struct bpf_link;

namespace premortem {

struct ProgramStatus {
  std::string name;
  std::string section;  // e.g. tp_btf/sched_switch: the kernel hook
  bool enabled = true;  // false: disabled by option before load
  bool attached = false;
  bool deferred = false;  // attached later per target (USDT, uprobe)
  Failure failure;
  bpf_link* link = nullptr;
};

struct LoadedProbe {
  std::string name;
  bpf_object* obj = nullptr;
  bool loaded = false;
  Failure failure;
  std::vector<ProgramStatus> programs;
};

class Tracer : public Napi::ObjectWrap<Tracer> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Tracer(const Napi::CallbackInfo& info);
  ~Tracer() override;

 private:
  // JS methods
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Probes(const Napi::CallbackInfo& info);
  Napi::Value Track(const Napi::CallbackInfo& info);
  Napi::Value Untrack(const Napi::CallbackInfo& info);
  Napi::Value MapLookup(const Napi::CallbackInfo& info);
  Napi::Value MapUpdate(const Napi::CallbackInfo& info);
  Napi::Value MapDelete(const Napi::CallbackInfo& info);
  Napi::Value MapDump(const Napi::CallbackInfo& info);
  Napi::Value MapLookupMany(const Napi::CallbackInfo& info);  // tracer_batch.cc
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value AttachUsdt(const Napi::CallbackInfo& info);
  Napi::Value AttachUprobe(const Napi::CallbackInfo& info);  // tracer_uprobe.cc
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  Napi::Value Sync(const Napi::CallbackInfo& info);
  Napi::Value Pause(const Napi::CallbackInfo& info);
  Napi::Value Resume(const Napi::CallbackInfo& info);

  void LoadProbe(Napi::Env env, const std::string& name, const Napi::Object& options);
  // key_size: null for maps with 32-bit keys only; else the map's key size (any: KeyOf checks).
  int MapFd(Napi::Env env, const Napi::Value& probe, const Napi::Value& map,
            bool* percpu, size_t* value_size, size_t* key_size = nullptr);
  void DeliverQueued(Napi::Env env, size_t max_batches);
  void CloseAll(bool deliver);
  void EnsureOpen(Napi::Env env);
  static void CleanupHook(void* arg);

  std::vector<LoadedProbe> probes_;
  int pids_fd_ = -1;
  int events_fd_ = -1;
  int drops_fd_ = -1;
  uint32_t ringbuf_bytes_ = 0;
  std::unique_ptr<RecordReader> reader_;
  Napi::ThreadSafeFunction tsfn_;
  Napi::FunctionReference on_records_;
  std::map<uint32_t, bpf_link*> extra_links_;  // USDT and uprobe attachments by id
  uint32_t next_link_id_ = 1;
  bool closed_ = false;
  bool cleanup_hook_ = false;
  napi_env env_ = nullptr;
  uint64_t callback_errors_ = 0;
  std::vector<uint64_t> final_drops_;  // drop and delivery counts as they were at close
  uint64_t final_delivered_[PM_REC_MAX] = {};
};

}  // namespace premortem
