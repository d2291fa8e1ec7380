#include "reader.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>

namespace premortem {

RecordReader::RecordReader(int ringbuf_fd, ReaderOptions options,
                           std::function<void()> notify)
    : ringbuf_fd_(ringbuf_fd), options_(options), notify_(std::move(notify)) {}

RecordReader::~RecordReader() {
  Stop();
  if (rb_) ring_buffer__free(rb_);
}

Failure RecordReader::Start() {
  rb_ = ring_buffer__new(ringbuf_fd_, OnRecord, this, nullptr);
  if (!rb_) return MakeFailure(kErrRingBuffer, errno, "opening the ring buffer");
  current_.bytes.reserve(options_.batch_bytes + 256);
  thread_ = std::thread([this] { Run(); });
  return Failure{};
}

void RecordReader::Run() {
  while (!stop_.load(std::memory_order_acquire)) {
    if (pause_requested_.load(std::memory_order_acquire)) {
      HoldWhilePaused();
      continue;
    }
    // Read before the pass: a sync requested by now is complete after it.
    uint64_t sync = sync_requested_.load(std::memory_order_acquire);
    // Records are submitted without a wakeup below a fill threshold, so the
    // poll mostly times out; consume() then collects what arrived meanwhile.
    int n = ring_buffer__poll(rb_, options_.poll_ms);
    polls_.fetch_add(1, std::memory_order_relaxed);
    if (n > 0) wakeups_.fetch_add(1, std::memory_order_relaxed);
    if (pause_requested_.load(std::memory_order_acquire)) continue;  // pass cut short
    ring_buffer__consume(rb_);
    Flush();
    if (sync) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (sync > sync_done_) sync_done_ = sync;
      synced_.notify_all();
    }
  }
}

bool RecordReader::WaitSynced(uint64_t ticket, int ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  synced_.wait_for(lock, std::chrono::milliseconds(ms), [&] {
    return sync_done_ >= ticket || pause_requested_.load(std::memory_order_acquire) ||
           stop_.load(std::memory_order_acquire);
  });
  return sync_done_ >= ticket;
}

void RecordReader::HoldWhilePaused() {
  Flush();  // what was read before the pause still reaches JS
  std::unique_lock<std::mutex> lock(mutex_);
  held_ = true;
  held_changed_.notify_all();
  resumed_.wait(lock, [this] {
    return !pause_requested_.load(std::memory_order_acquire) || stop_.load(std::memory_order_acquire);
  });
  held_ = false;
}

void RecordReader::Pause() {
  std::unique_lock<std::mutex> lock(mutex_);
  pause_requested_.store(true, std::memory_order_release);
  if (!thread_.joinable() || stop_.load(std::memory_order_acquire)) return;
  // Waiting in Push() counts as held: it pauses before its next record, and
  // waiting for it there would deadlock with the JS thread that calls this.
  held_changed_.wait(lock, [this] { return held_; });
}

void RecordReader::Resume() {
  std::lock_guard<std::mutex> lock(mutex_);
  pause_requested_.store(false, std::memory_order_release);
  resumed_.notify_all();
}

void RecordReader::Stop() {
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);  // no lost wakeup for a held thread
    stop_.store(true, std::memory_order_release);
    unbounded_.store(true, std::memory_order_release);
  }
  not_full_.notify_all();
  resumed_.notify_all();
  thread_.join();
  // Whatever the kernel wrote before the links went away is still delivered.
  if (rb_) ring_buffer__consume(rb_);
  Flush();
}

int RecordReader::OnRecord(void* ctx, void* data, size_t size) {
  auto* self = static_cast<RecordReader*>(ctx);
  if (size < sizeof(pm_hdr)) return 0;
  const auto* hdr = static_cast<const pm_hdr*>(data);
  if (hdr->type < PM_REC_MAX)
    self->delivered_[hdr->type].fetch_add(1, std::memory_order_relaxed);
  RecordBatch& b = self->current_;
  const auto* p = static_cast<const uint8_t*>(data);
  b.bytes.insert(b.bytes.end(), p, p + size);
  b.count++;
  if (b.bytes.size() >= self->options_.batch_bytes) self->Flush();
  // A negative return stops ring_buffer__consume() after this record (which
  // it has consumed): a pause takes effect at once, even mid-flood.
  // Stop() drains everything, paused or not.
  bool hold = self->pause_requested_.load(std::memory_order_acquire) &&
              !self->stop_.load(std::memory_order_acquire);
  return hold ? -EINTR : 0;
}

void RecordReader::Flush() {
  if (current_.count == 0) return;
  RecordBatch full;
  full.bytes.reserve(options_.batch_bytes + 256);
  std::swap(full, current_);
  Push(std::move(full));
}

void RecordReader::Push(RecordBatch&& batch) {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    if (queue_.size() >= options_.max_queued_batches &&
        !unbounded_.load(std::memory_order_acquire)) {
      queue_waits_.fetch_add(1, std::memory_order_relaxed);
      held_ = true;
      held_changed_.notify_all();
      not_full_.wait(lock, [this] {
        return queue_.size() < options_.max_queued_batches ||
               unbounded_.load(std::memory_order_acquire);
      });
      held_ = false;
    }
    queue_.push_back(std::move(batch));
    batches_.fetch_add(1, std::memory_order_relaxed);
  }
  if (!notified_.exchange(true, std::memory_order_acq_rel) && notify_) notify_();
}

bool RecordReader::Pop(RecordBatch& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (queue_.empty()) return false;
  out = std::move(queue_.front());
  queue_.pop_front();
  not_full_.notify_one();
  return true;
}

size_t RecordReader::Queued() {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

}  // namespace premortem
