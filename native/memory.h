// Reading another process's memory (process_vm_readv), for the Python stack
// sampler: many small ranges in one system call, into one caller-owned buffer.
#pragma once

#include <napi.h>

namespace premortem {

// Error codes thrown by readProcessMemory (part of the API: the agent matches on them).
constexpr const char* kErrProcessGone = "PREMORTEM_ERR_PROCESS_GONE";
constexpr const char* kErrProcessMemoryDenied = "PREMORTEM_ERR_PROCESS_MEMORY_DENIED";
constexpr const char* kErrProcessMemory = "PREMORTEM_ERR_PROCESS_MEMORY";

// Most ranges one call reads (the kernel's IOV_MAX).
constexpr size_t kMaxReadRanges = 1024;

// readProcessMemory(pid, ranges: Float64Array [addr, len, ...], out: Uint8Array): bytes read.
Napi::Value ReadProcessMemory(const Napi::CallbackInfo& info);

// Most frames walkFrameChain follows, the most bytes of one frame it reads,
// and the most bytes of the region it may read at once (a thread's frame stack chunk).
constexpr size_t kMaxChainFrames = 4096;
constexpr size_t kMaxFrameBytes = 512;
constexpr size_t kMaxRegionBytes = 256 * 1024;

// walkFrameChain(pid, first, layout: Float64Array, out: Float64Array, regionStart?, regionBytes?):
// {count, truncated, regionUsed}.
Napi::Value WalkFrameChain(const Napi::CallbackInfo& info);

}  // namespace premortem
