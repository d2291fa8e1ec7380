// RecordReader: one thread that drains the BPF ring buffer into batches (many
// fixed-layout records in one byte vector) and hands them to the JS thread
// through a bounded queue. When the queue is full the thread waits, the ring
// buffer fills, and the kernel counts what it cannot reserve: loss happens in
// one place, where it is counted. Pause() holds the thread the same way on
// purpose (tests and the ingest benchmark force loss with it, at any speed).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "../bpf/pm_common.h"
#include "errors.h"

struct ring_buffer;

namespace premortem {

struct RecordBatch {
  std::vector<uint8_t> bytes;
  uint32_t count = 0;
};

struct ReaderOptions {
  size_t batch_bytes = 256 * 1024;  // a batch is handed over when it reaches this
  int poll_ms = 10;                 // longest a record waits in the ring buffer
  size_t max_queued_batches = 64;   // bound on memory held between threads
};

class RecordReader {
 public:
  // `notify` is called from the reader thread when the queue goes non-empty.
  RecordReader(int ringbuf_fd, ReaderOptions options, std::function<void()> notify);
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  Failure Start();
  // Stops and joins the thread, then drains what is left in the ring buffer
  // into the queue (without bound: nothing is lost at close).
  void Stop();

  // Holds the thread: from return on, no record leaves the ring buffer until
  // Resume() (or Stop(), which still drains). Batches already queued are still
  // delivered. Returns once the thread is held: paused, or waiting for queue
  // space (then it pauses before reading another record).
  void Pause();
  void Resume();
  bool Paused() const { return pause_requested_.load(std::memory_order_acquire); }

  // A barrier: RequestSync() returns a ticket; the first read pass that starts
  // after it (and so sees every record submitted before it) completes the
  // ticket. WaitSynced() waits up to `ms` for that; false while not done (or
  // paused: a held reader completes no pass).
  uint64_t RequestSync() { return sync_requested_.fetch_add(1, std::memory_order_acq_rel) + 1; }
  bool WaitSynced(uint64_t ticket, int ms);

  // JS thread: takes the oldest batch; false when none.
  bool Pop(RecordBatch& out);
  // JS thread: call before draining, so a push after it notifies again.
  void ClearNotified() { notified_.store(false, std::memory_order_release); }

  uint64_t Delivered(uint32_t type) const {
    return type < PM_REC_MAX ? delivered_[type].load(std::memory_order_relaxed) : 0;
  }
  uint64_t Batches() const { return batches_.load(std::memory_order_relaxed); }
  uint64_t Polls() const { return polls_.load(std::memory_order_relaxed); }
  uint64_t Wakeups() const { return wakeups_.load(std::memory_order_relaxed); }
  uint64_t QueueWaits() const { return queue_waits_.load(std::memory_order_relaxed); }
  size_t Queued();

 private:
  static int OnRecord(void* ctx, void* data, size_t size);
  void Run();
  void Flush();
  void Push(RecordBatch&& batch);
  void HoldWhilePaused();

  int ringbuf_fd_;
  ReaderOptions options_;
  std::function<void()> notify_;
  ring_buffer* rb_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> unbounded_{false};
  std::atomic<bool> notified_{false};
  std::atomic<bool> pause_requested_{false};
  std::atomic<uint64_t> sync_requested_{0};

  RecordBatch current_;  // reader thread only (and the JS thread after Stop)

  std::mutex mutex_;
  std::condition_variable not_full_;
  std::deque<RecordBatch> queue_;
  // Under mutex_: the thread is held (paused, or waiting for queue space).
  std::condition_variable held_changed_;
  std::condition_variable resumed_;
  bool held_ = false;
  std::condition_variable synced_;
  uint64_t sync_done_ = 0;

  std::atomic<uint64_t> delivered_[PM_REC_MAX] = {};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> polls_{0};
  std::atomic<uint64_t> wakeups_{0};
  std::atomic<uint64_t> queue_waits_{0};
};

}  // namespace premortem
