#include "tracer.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>

#include "libbpf_log.h"
#include "probes.h"

namespace premortem {

namespace {

constexpr uint32_t kDefaultRingBufferBytes = 8 * 1024 * 1024;
constexpr size_t kMaxBatchesPerTurn = 8;  // then yield, so timers and I/O run
constexpr const char* kSharedMaps[] = {"pids", "events", "drops"};

bool IsPowerOfTwo(uint64_t v) { return v && !(v & (v - 1)); }

uint64_t ToU64(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) return static_cast<uint64_t>(v.As<Napi::Number>().Int64Value());
  return 0;
}

// Sets a `const volatile` global in the object's .rodata before load, found by
// name through the object's BTF.
bool SetRodata(bpf_object* obj, const std::string& var, uint64_t value, std::string* why) {
  const btf* b = bpf_object__btf(obj);
  bpf_map* rodata = nullptr;
  bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const char* n = bpf_map__name(m);
    size_t len = strlen(n);
    if (bpf_map__is_internal(m) && len >= 7 && strcmp(n + len - 7, ".rodata") == 0) rodata = m;
  }
  int sec_id = b ? btf__find_by_name_kind(b, ".rodata", BTF_KIND_DATASEC) : -1;
  if (!rodata || sec_id < 0) {
    *why = "the probe has no load-time settings";
    return false;
  }
  const btf_type* sec = btf__type_by_id(b, sec_id);
  const btf_var_secinfo* vsi = btf_var_secinfos(sec);
  for (int i = 0; i < btf_vlen(sec); i++, vsi++) {
    const btf_type* t = btf__type_by_id(b, vsi->type);
    if (var != btf__name_by_offset(b, t->name_off)) continue;
    size_t size = 0;
    const void* initial = bpf_map__initial_value(rodata, &size);
    if (!initial || vsi->offset + vsi->size > size) break;
    std::vector<uint8_t> data(static_cast<const uint8_t*>(initial),
                              static_cast<const uint8_t*>(initial) + size);
    switch (vsi->size) {
      case 1: { uint8_t x = value; memcpy(&data[vsi->offset], &x, 1); break; }
      case 2: { uint16_t x = value; memcpy(&data[vsi->offset], &x, 2); break; }
      case 4: { uint32_t x = value; memcpy(&data[vsi->offset], &x, 4); break; }
      case 8: { memcpy(&data[vsi->offset], &value, 8); break; }
      default: *why = "setting '" + var + "' is not an integer"; return false;
    }
    return bpf_map__set_initial_value(rodata, data.data(), size) == 0;
  }
  *why = "no load-time setting named '" + var + "'";
  return false;
}

bool ReadValue(int fd, const void* key, bool percpu, size_t value_size, std::vector<uint8_t>& out);

Napi::Value Num(Napi::Env env, uint64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }

}  // namespace

Napi::Function Tracer::Define(Napi::Env env) {
  return DefineClass(env, "Tracer",
                     {
                         InstanceMethod<&Tracer::Close>("close"),
                         InstanceMethod<&Tracer::Probes>("probes"),
                         InstanceMethod<&Tracer::Track>("track"),
                         InstanceMethod<&Tracer::Untrack>("untrack"),
                         InstanceMethod<&Tracer::MapLookup>("mapLookup"),
                         InstanceMethod<&Tracer::MapUpdate>("mapUpdate"),
                         InstanceMethod<&Tracer::MapDelete>("mapDelete"),
                         InstanceMethod<&Tracer::MapDump>("mapDump"),
                         InstanceMethod<&Tracer::MapLookupMany>("mapLookupMany"),
                         InstanceMethod<&Tracer::Stats>("stats"),
                         InstanceMethod<&Tracer::AttachUsdt>("attachUsdt"),
                         InstanceMethod<&Tracer::AttachUprobe>("attachUprobe"),
                         InstanceMethod<&Tracer::Detach>("detach"),
                         InstanceMethod<&Tracer::Flush>("flush"),
                         InstanceMethod<&Tracer::Sync>("sync"),
                         InstanceMethod<&Tracer::Pause>("pause"),
                         InstanceMethod<&Tracer::Resume>("resume"),
                     });
}

Tracer::Tracer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tracer>(info) {
  Napi::Env env = info.Env();
  env_ = env;
  InstallLibbpfLogger();
  if (info.Length() < 1 || !info[0].IsObject())
    throw MakeFailure(kErrArg, 0, "new Tracer(options): options object required").ToError(env);
  Napi::Object options = info[0].As<Napi::Object>();
  if (!options.Get("onRecords").IsFunction())
    throw MakeFailure(kErrArg, 0, "options.onRecords must be a function").ToError(env);
  on_records_ = Napi::Persistent(options.Get("onRecords").As<Napi::Function>());

  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
    throw MakeFailure(kErrNoBtf, errno,
                      "this kernel exposes no BTF at /sys/kernel/btf/vmlinux; premortem needs "
                      "CONFIG_DEBUG_INFO_BTF=y (or a BTF file for this kernel)")
        .ToError(env);

  ringbuf_bytes_ = kDefaultRingBufferBytes;
  if (options.Has("ringBufferBytes")) {
    uint64_t v = ToU64(options.Get("ringBufferBytes"));
    if (!IsPowerOfTwo(v) || v < 4096 || v > (1u << 30))
      throw MakeFailure(kErrArg, EINVAL,
                        "ringBufferBytes must be a power of two between 4096 and 1 GiB")
          .ToError(env);
    ringbuf_bytes_ = static_cast<uint32_t>(v);
  }

  std::vector<std::string> names;
  if (options.Get("probes").IsArray()) {
    Napi::Array arr = options.Get("probes").As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) names.push_back(arr.Get(i).ToString());
  } else {
    for (const ProbeImage& p : CompiledProbes())
      if (std::string(p.name) != "flood") names.push_back(p.name);  // flood: tests only
  }
  for (const std::string& n : names)
    if (!FindProbe(n))
      throw MakeFailure(kErrUnknownProbe, EINVAL, "no probe named '" + n + "' in this build")
          .ToError(env);

  for (const std::string& n : names) LoadProbe(env, n, options);

  const Failure* first = nullptr;
  bool any = false;
  for (const LoadedProbe& p : probes_) {
    if (p.loaded) any = true;
    else if (!first) first = &p.failure;
  }
  if (!any) {
    Failure f = first ? *first : MakeFailure(kErrNoProbe, 0, "no probe was requested");
    CloseAll(false);
    throw f.ToError(env);
  }

  ReaderOptions ropts;
  if (options.Has("batchBytes")) ropts.batch_bytes = ToU64(options.Get("batchBytes"));
  if (options.Has("pollMs")) ropts.poll_ms = static_cast<int>(ToU64(options.Get("pollMs")));
  if (options.Has("maxQueuedBatches"))
    ropts.max_queued_batches = ToU64(options.Get("maxQueuedBatches"));
  if (ropts.batch_bytes < 4096 || ropts.poll_ms < 1 || ropts.max_queued_batches < 1) {
    CloseAll(false);
    throw MakeFailure(kErrArg, EINVAL,
                      "batchBytes >= 4096, pollMs >= 1 and maxQueuedBatches >= 1 are required")
        .ToError(env);
  }

  // The reader thread only signals; batches are taken on the JS thread.
  tsfn_ = Napi::ThreadSafeFunction::New(
      env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}), "premortem-records", 0, 1,
      this, [](Napi::Env, Tracer* self) {
        if (self->env_) self->Unref();  // matches the Ref() below
      });
  tsfn_.Unref(env);  // an open tracer alone does not keep Node running
  reader_ = std::make_unique<RecordReader>(events_fd_, ropts, [this] {
    if (tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function) {
          if (!closed_) DeliverQueued(env, kMaxBatchesPerTurn);
        }) != napi_ok)
      reader_->ClearNotified();
  });
  Failure f = reader_->Start();
  if (!f.ok()) {
    CloseAll(false);
    throw f.ToError(env);
  }
  Ref();  // alive until close(): records keep arriving even if JS drops its handle
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  cleanup_hook_ = true;
}

Tracer::~Tracer() {
  if (cleanup_hook_ && env_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  CloseAll(false);
}

void Tracer::CleanupHook(void* arg) {
  auto* self = static_cast<Tracer*>(arg);
  self->cleanup_hook_ = false;
  self->env_ = nullptr;  // no N-API calls from here on
  self->CloseAll(false);
}

void Tracer::LoadProbe(Napi::Env env, const std::string& name, const Napi::Object& options) {
  LoadedProbe probe;
  probe.name = name;
  const ProbeImage* image = FindProbe(name);
  LibbpfLogCapture capture;

  // CO-RE against the kernel's own BTF only: searching module BTF (bpf_btf_get_next_id)
  // needs CAP_SYS_ADMIN, and the agent runs with just CAP_BPF + CAP_PERFMON.
  LIBBPF_OPTS(bpf_object_open_opts, open_opts, .object_name = image->name,
              .btf_custom_path = "/sys/kernel/btf/vmlinux");
  bpf_object* obj = bpf_object__open_mem(image->elf, image->elf_size, &open_opts);
  if (!obj) {
    probe.failure = MakeFailure(kErrOpen, errno, "opening probe '" + name + "'", capture.Take());
    probes_.push_back(std::move(probe));
    return;
  }
  probe.obj = obj;

  // Load-time settings: the shared wakeup threshold, then per-probe ones.
  std::string why;
  uint64_t wakeup = options.Has("wakeupBytes") ? ToU64(options.Get("wakeupBytes"))
                                               : ringbuf_bytes_ / 8;
  SetRodata(obj, "pm_wakeup_bytes", wakeup, &why);
  Napi::Value rodata = options.Get("rodata");
  if (rodata.IsObject() && rodata.As<Napi::Object>().Get(name).IsObject()) {
    Napi::Object settings = rodata.As<Napi::Object>().Get(name).As<Napi::Object>();
    Napi::Array keys = settings.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); i++) {
      std::string key = keys.Get(i).ToString();
      if (!SetRodata(obj, key, ToU64(settings.Get(key)), &why)) {
        probe.failure = MakeFailure(kErrArg, EINVAL, "probe '" + name + "': " + why);
        probes_.push_back(std::move(probe));
        return;
      }
    }
  }

  // Programs disabled by option ("probe/program") are not loaded at all.
  std::set<std::string> disabled;
  if (options.Get("disablePrograms").IsArray()) {
    Napi::Array arr = options.Get("disablePrograms").As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); i++) disabled.insert(arr.Get(i).ToString());
  }
  bpf_program* prog;
  bpf_object__for_each_program(prog, obj) {
    ProgramStatus st;
    st.name = bpf_program__name(prog);
    st.section = bpf_program__section_name(prog);
    if (disabled.count(name + "/" + st.name)) {
      bpf_program__set_autoload(prog, false);
      st.enabled = false;
      st.failure = MakeFailure(kErrAttach, 0, "disabled by option");
    }
    probe.programs.push_back(std::move(st));
  }

  // One pid filter, ring buffer and drop counter for all probes.
  for (const char* shared : kSharedMaps) {
    bpf_map* map = bpf_object__find_map_by_name(obj, shared);
    if (!map) continue;
    int fd = std::string(shared) == "pids" ? pids_fd_
             : std::string(shared) == "events" ? events_fd_ : drops_fd_;
    if (fd >= 0) {
      bpf_map__reuse_fd(map, fd);
    } else if (std::string(shared) == "events") {
      bpf_map__set_max_entries(map, ringbuf_bytes_);
    }
  }

  int err = bpf_object__load(obj);
  if (err) {
    probe.failure =
        MakeFailure(kErrLoad, err, "loading probe '" + name + "' into the kernel", capture.Take());
    probes_.push_back(std::move(probe));
    return;
  }
  probe.loaded = true;
  if (pids_fd_ < 0) pids_fd_ = bpf_map__fd(bpf_object__find_map_by_name(obj, "pids"));
  if (events_fd_ < 0) events_fd_ = bpf_map__fd(bpf_object__find_map_by_name(obj, "events"));
  if (drops_fd_ < 0) drops_fd_ = bpf_map__fd(bpf_object__find_map_by_name(obj, "drops"));

  size_t i = 0;
  bpf_object__for_each_program(prog, obj) {
    ProgramStatus& st = probe.programs[i++];
    if (!st.enabled) continue;
    const char* sec = bpf_program__section_name(prog);
    if (strcmp(sec, "usdt") == 0 || strcmp(sec, "uprobe") == 0 || strcmp(sec, "uretprobe") == 0) {
      st.deferred = true;  // attached per binary by attachUsdt() / attachUprobe()
      continue;
    }
    bpf_link* link = bpf_program__attach(prog);
    if (!link) {
      st.failure = MakeFailure(kErrAttach, errno,
                               "attaching " + name + "/" + st.name + " (" + sec + ")",
                               capture.Take());
      continue;
    }
    st.link = link;
    st.attached = true;
  }
  probes_.push_back(std::move(probe));
}

void Tracer::CloseAll(bool deliver) {
  if (closed_) return;
  closed_ = true;
  // Links first: no new records; then drain; then the objects and their maps.
  for (auto& [id, link] : extra_links_) bpf_link__destroy(link);
  extra_links_.clear();
  for (LoadedProbe& p : probes_)
    for (ProgramStatus& st : p.programs)
      if (st.link) {
        bpf_link__destroy(st.link);
        st.link = nullptr;
        st.attached = false;
      }
  if (reader_) {
    reader_->Stop();
    if (deliver && env_) DeliverQueued(Napi::Env(env_), SIZE_MAX);
  }
  final_drops_.assign(PM_REC_MAX, 0);
  std::vector<uint8_t> v;
  for (uint32_t t = 0; t < PM_REC_MAX && drops_fd_ >= 0; t++)
    if (ReadValue(drops_fd_, &t, true, 8, v)) memcpy(&final_drops_[t], v.data(), 8);
  for (uint32_t t = 0; t < PM_REC_MAX && reader_; t++) final_delivered_[t] = reader_->Delivered(t);
  reader_.reset();
  for (LoadedProbe& p : probes_) {
    if (p.obj) bpf_object__close(p.obj);
    p.obj = nullptr;
  }
  pids_fd_ = events_fd_ = drops_fd_ = -1;
  if (tsfn_) {
    if (env_) tsfn_.Release();
    else tsfn_.Abort();
  }
}

void Tracer::DeliverQueued(Napi::Env env, size_t max_batches) {
  if (!reader_) return;
  reader_->ClearNotified();
  RecordBatch batch;
  size_t n = 0;
  Napi::HandleScope scope(env);
  while (n < max_batches && reader_->Pop(batch)) {
    n++;
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, batch.bytes.size());
    memcpy(ab.Data(), batch.bytes.data(), batch.bytes.size());
    try {
      on_records_.Call({ab, Napi::Number::New(env, batch.count)});
    } catch (const Napi::Error&) {
      callback_errors_++;  // an exception must never escape into the TSFN
    }
  }
  if (reader_->Queued() > 0 && !closed_ && tsfn_) {
    tsfn_.NonBlockingCall([this](Napi::Env env, Napi::Function) {
      if (!closed_) DeliverQueued(env, kMaxBatchesPerTurn);
    });
  }
}

void Tracer::EnsureOpen(Napi::Env env) {
  if (closed_) throw MakeFailure(kErrClosed, 0, "the tracer is closed").ToError(env);
}

Napi::Value Tracer::Close(const Napi::CallbackInfo& info) {
  if (!closed_) {
    if (cleanup_hook_) {
      napi_remove_env_cleanup_hook(info.Env(), CleanupHook, this);
      cleanup_hook_ = false;
    }
    CloseAll(true);
  }
  return info.Env().Undefined();
}

Napi::Value Tracer::Flush(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env());
  DeliverQueued(info.Env(), SIZE_MAX);
  return info.Env().Undefined();
}

// Delivers every record the kernel submitted before the call: waits for one
// full read pass of the reader thread (about pollMs), taking batches meanwhile
// so that a reader waiting for queue space can finish it.
Napi::Value Tracer::Sync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  int64_t timeout_ms = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int64Value() : 5000;
  bool done = false;
  if (!reader_->Paused()) {
    uint64_t ticket = reader_->RequestSync();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!(done = reader_->WaitSynced(ticket, 2)) && !reader_->Paused() &&
           std::chrono::steady_clock::now() < deadline)
      DeliverQueued(env, SIZE_MAX);
  }
  DeliverQueued(env, SIZE_MAX);
  return Napi::Boolean::New(env, done);
}

// Holds the reader: records stay in the ring buffer and, once it is full, the
// kernel counts what it cannot reserve, as when JS falls behind. Forces loss
// at any machine speed (loss tests, the ingest benchmark's overload run).
Napi::Value Tracer::Pause(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env());
  reader_->Pause();
  return info.Env().Undefined();
}

Napi::Value Tracer::Resume(const Napi::CallbackInfo& info) {
  EnsureOpen(info.Env());
  reader_->Resume();
  return info.Env().Undefined();
}

Napi::Value Tracer::Probes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env, probes_.size());
  for (size_t i = 0; i < probes_.size(); i++) {
    const LoadedProbe& p = probes_[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", p.name);
    o.Set("loaded", p.loaded);
    if (!p.failure.ok()) o.Set("error", p.failure.ToObject(env));
    Napi::Array progs = Napi::Array::New(env, p.programs.size());
    for (size_t j = 0; j < p.programs.size(); j++) {
      const ProgramStatus& st = p.programs[j];
      Napi::Object po = Napi::Object::New(env);
      po.Set("name", st.name);
      po.Set("section", st.section);
      po.Set("enabled", st.enabled);
      po.Set("attached", st.attached);
      po.Set("deferred", st.deferred);
      if (!st.failure.ok()) po.Set("error", st.failure.ToObject(env));
      progs.Set(j, po);
    }
    o.Set("programs", progs);
    out.Set(i, o);
  }
  return out;
}

Napi::Value Tracer::Track(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  if (info.Length() < 1 || !info[0].IsNumber())
    throw MakeFailure(kErrArg, EINVAL, "track(pid, startNs?, flags?): pid must be a number").ToError(env);
  uint32_t pid = info[0].As<Napi::Number>().Uint32Value();
  pm_tracked value{};
  if (info.Length() > 1) value.start_ns = ToU64(info[1]);
  if (info.Length() > 2 && info[2].IsNumber()) value.flags = info[2].As<Napi::Number>().Uint32Value();
  if (bpf_map_update_elem(pids_fd_, &pid, &value, BPF_ANY) != 0) {
    int err = errno;
    if (err == E2BIG || err == ENOMEM || err == ENOSPC)
      throw MakeFailure(kErrTrackFull, err,
                        "the pid filter is full (" + std::to_string(PM_MAX_TRACKED) +
                            " processes): untrack some first")
          .ToError(env);
    throw MakeFailure(kErrMap, err, "adding pid " + std::to_string(pid) + " to the filter").ToError(env);
  }
  return env.Undefined();
}

Napi::Value Tracer::Untrack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  if (info.Length() < 1 || !info[0].IsNumber())
    throw MakeFailure(kErrArg, EINVAL, "untrack(pid): pid must be a number").ToError(env);
  uint32_t pid = info[0].As<Napi::Number>().Uint32Value();
  return Napi::Boolean::New(env, bpf_map_delete_elem(pids_fd_, &pid) == 0);
}

int Tracer::MapFd(Napi::Env env, const Napi::Value& probe, const Napi::Value& map, bool* percpu,
                  size_t* value_size, size_t* key_size) {
  EnsureOpen(env);
  std::string pname = probe.ToString(), mname = map.ToString();
  for (const LoadedProbe& p : probes_) {
    if (p.name != pname) continue;
    if (!p.loaded)
      throw MakeFailure(kErrMap, 0, "probe '" + pname + "' is not loaded").ToError(env);
    bpf_map* m = bpf_object__find_map_by_name(p.obj, mname.c_str());
    if (!m) throw MakeFailure(kErrMap, ENOENT, "probe '" + pname + "' has no map '" + mname + "'").ToError(env);
    enum bpf_map_type t = bpf_map__type(m);
    *percpu = t == BPF_MAP_TYPE_PERCPU_ARRAY || t == BPF_MAP_TYPE_PERCPU_HASH;
    *value_size = bpf_map__value_size(m);
    size_t ks = bpf_map__key_size(m);
    if (key_size) {
      *key_size = ks;
      return bpf_map__fd(m);
    }
    if (ks != 4)
      throw MakeFailure(kErrMap, EINVAL, "map '" + mname + "' does not have 32-bit keys").ToError(env);
    if (key_size) *key_size = ks;
    return bpf_map__fd(m);
  }
  throw MakeFailure(kErrUnknownProbe, EINVAL, "no probe '" + pname + "' in this tracer").ToError(env);
}

namespace {

// A map key from JS: a number for 32-bit keys, a BigInt or a Number for 64-bit keys, or an
// ArrayBuffer of exactly the key's size (struct keys such as tcp's (netns, port)).
std::vector<uint8_t> KeyOf(Napi::Env env, const Napi::Value& v, size_t key_size) {
  std::vector<uint8_t> key(key_size, 0);
  if (v.IsNumber() && key_size == 4) {
    uint32_t k = v.As<Napi::Number>().Uint32Value();
    memcpy(key.data(), &k, 4);
  } else if ((v.IsNumber() || v.IsBigInt()) && key_size == 8) {
    uint64_t k = ToU64(v);
    memcpy(key.data(), &k, 8);
  } else if (v.IsArrayBuffer() && v.As<Napi::ArrayBuffer>().ByteLength() == key_size) {
    memcpy(key.data(), v.As<Napi::ArrayBuffer>().Data(), key_size);
  } else {
    throw MakeFailure(kErrArg, EINVAL, "the map key must be " + std::string(key_size == 4 ? "a number or " : key_size == 8 ? "a bigint, a number or " : "") +
                                           "an ArrayBuffer of " + std::to_string(key_size) + " bytes").ToError(env);
  }
  return key;
}

// Reads one value; per-CPU values are summed as u64 fields (all ours are).
bool ReadValue(int fd, const void* key, bool percpu, size_t value_size, std::vector<uint8_t>& out) {
  out.assign(value_size, 0);
  if (!percpu) return bpf_map_lookup_elem(fd, key, out.data()) == 0;
  int ncpu = libbpf_num_possible_cpus();
  size_t stride = (value_size + 7) & ~size_t(7);
  std::vector<uint8_t> all(stride * (ncpu > 0 ? ncpu : 1));
  if (bpf_map_lookup_elem(fd, key, all.data()) != 0) return false;
  for (int c = 0; c < ncpu; c++)
    for (size_t off = 0; off + 8 <= value_size; off += 8) {
      uint64_t a, b;
      memcpy(&a, out.data() + off, 8);
      memcpy(&b, all.data() + c * stride + off, 8);
      a += b;
      memcpy(out.data() + off, &a, 8);
    }
  return true;
}

}  // namespace

Napi::Value Tracer::MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool percpu;
  size_t vsize, ksize;
  int fd = MapFd(env, info[0], info[1], &percpu, &vsize, &ksize);
  std::vector<uint8_t> key = KeyOf(env, info[2], ksize);
  std::vector<uint8_t> value;
  if (!ReadValue(fd, key.data(), percpu, vsize, value)) return env.Null();
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, value.size());
  memcpy(ab.Data(), value.data(), value.size());
  return ab;
}

Napi::Value Tracer::MapUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool percpu;
  size_t vsize, ksize;
  int fd = MapFd(env, info[0], info[1], &percpu, &vsize, &ksize);
  std::vector<uint8_t> key = KeyOf(env, info[2], ksize);
  if (percpu || !info[3].IsArrayBuffer() || info[3].As<Napi::ArrayBuffer>().ByteLength() != vsize)
    throw MakeFailure(kErrArg, EINVAL, "mapUpdate needs an ArrayBuffer of " + std::to_string(vsize) +
                                           " bytes for a shared (not per-CPU) map").ToError(env);
  if (bpf_map_update_elem(fd, key.data(), info[3].As<Napi::ArrayBuffer>().Data(), BPF_ANY) != 0)
    throw MakeFailure(kErrMap, errno, "updating map '" + info[1].ToString().Utf8Value() + "'").ToError(env);
  return env.Undefined();
}

// 64-bit keys (a map keyed by tgid << 32 | fd) come as a BigInt or a Number.
Napi::Value Tracer::MapDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool percpu;
  size_t vsize, ksize;
  int fd = MapFd(env, info[0], info[1], &percpu, &vsize, &ksize);
  std::vector<uint8_t> key = KeyOf(env, info[2], ksize);
  return Napi::Boolean::New(env, bpf_map_delete_elem(fd, key.data()) == 0);
}

// Keys come back as 32-bit words, keySize / 4 per key (a 64-bit key: low word first).
Napi::Value Tracer::MapDump(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool percpu;
  size_t vsize, ksize;
  int fd = MapFd(env, info[0], info[1], &percpu, &vsize, &ksize);
  std::vector<uint8_t> keys;
  std::vector<uint8_t> key(ksize), next(ksize);
  const void* prev = nullptr;
  while (keys.size() / ksize < (1u << 20) && bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    keys.insert(keys.end(), next.begin(), next.end());
    key = next;
    prev = key.data();
  }
  std::vector<uint8_t> values;
  std::vector<uint8_t> found;
  std::vector<uint8_t> v;
  for (size_t off = 0; off < keys.size(); off += ksize)
    if (ReadValue(fd, keys.data() + off, percpu, vsize, v)) {  // a key deleted meanwhile is skipped
      found.insert(found.end(), keys.begin() + off, keys.begin() + off + ksize);
      values.insert(values.end(), v.begin(), v.end());
    }
  Napi::Object o = Napi::Object::New(env);
  Napi::ArrayBuffer kab = Napi::ArrayBuffer::New(env, found.size());
  if (!found.empty()) memcpy(kab.Data(), found.data(), found.size());
  Napi::ArrayBuffer vab = Napi::ArrayBuffer::New(env, values.size());
  if (!values.empty()) memcpy(vab.Data(), values.data(), values.size());
  o.Set("keys", Napi::Uint32Array::New(env, found.size() / 4, kab, 0));
  o.Set("keySize", Num(env, ksize));
  o.Set("values", vab);
  o.Set("valueSize", Num(env, vsize));
  return o;
}

Napi::Value Tracer::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array delivered = Napi::Array::New(env, PM_REC_MAX);
  Napi::Array dropped = Napi::Array::New(env, PM_REC_MAX);
  std::vector<uint8_t> v;
  for (uint32_t t = 0; t < PM_REC_MAX; t++) {
    delivered.Set(t, Num(env, reader_ ? reader_->Delivered(t) : final_delivered_[t]));
    uint64_t d = t < final_drops_.size() ? final_drops_[t] : 0;  // counts as they were at close
    if (drops_fd_ >= 0 && ReadValue(drops_fd_, &t, true, 8, v)) memcpy(&d, v.data(), 8);
    dropped.Set(t, Num(env, d));
  }
  o.Set("delivered", delivered);
  o.Set("dropped", dropped);
  o.Set("batches", Num(env, reader_ ? reader_->Batches() : 0));
  o.Set("polls", Num(env, reader_ ? reader_->Polls() : 0));
  o.Set("wakeups", Num(env, reader_ ? reader_->Wakeups() : 0));
  o.Set("queueWaits", Num(env, reader_ ? reader_->QueueWaits() : 0));
  o.Set("queued", Num(env, reader_ ? reader_->Queued() : 0));
  o.Set("paused", reader_ ? reader_->Paused() : false);
  o.Set("callbackErrors", Num(env, callback_errors_));
  o.Set("ringBufferBytes", Num(env, ringbuf_bytes_));
  o.Set("closed", closed_);
  return o;
}

Napi::Value Tracer::AttachUsdt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  EnsureOpen(env);
  if (info.Length() < 6)
    throw MakeFailure(kErrArg, EINVAL,
                      "attachUsdt(probe, program, binaryPath, pid, provider, name)").ToError(env);
  std::string pname = info[0].ToString(), prog_name = info[1].ToString(), path = info[2].ToString();
  int pid = info[3].As<Napi::Number>().Int32Value();
  std::string provider = info[4].ToString(), name = info[5].ToString();
  for (LoadedProbe& p : probes_) {
    if (p.name != pname || !p.loaded) continue;
    bpf_program* prog = bpf_object__find_program_by_name(p.obj, prog_name.c_str());
    if (!prog) break;
    LibbpfLogCapture capture;
    LIBBPF_OPTS(bpf_usdt_opts, opts);
    bpf_link* link = bpf_program__attach_usdt(prog, pid, path.c_str(), provider.c_str(), name.c_str(), &opts);
    if (!link)
      throw MakeFailure(kErrAttach, errno,
                        "attaching USDT " + provider + ":" + name + " in " + path, capture.Take())
          .ToError(env);
    uint32_t id = next_link_id_++;
    extra_links_[id] = link;
    return Num(env, id);
  }
  throw MakeFailure(kErrUnknownProbe, EINVAL, "no loaded program " + pname + "/" + prog_name).ToError(env);
}

Napi::Value Tracer::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto it = extra_links_.find(id);
  if (it == extra_links_.end()) return Napi::Boolean::New(env, false);
  bpf_link__destroy(it->second);
  extra_links_.erase(it);
  return Napi::Boolean::New(env, true);
}

}  // namespace premortem
