#include "runtime/io/detail/standing_stream.h"

#include <atomic>

#include "runtime/io/detail/descriptor_use.h"

namespace weft::detail {
namespace {

std::atomic<bool> multishot_allowed{true};

}  // namespace

void AllowMultishot(bool allowed) {
  multishot_allowed.store(allowed, std::memory_order_relaxed);
}

bool MultishotAllowed() { return multishot_allowed.load(std::memory_order_relaxed); }

void StopStreamIfIdleLocked(DescriptorState& slot, StandingStream* stream) {
  if (stream != nullptr && stream->Stands() && slot.waiters[0].empty()) {
    stream->stopping = true;
    stream->ring->Cancel(stream);
  }
}

void DetachStreamLocked(DescriptorState& slot, StandingStream* stream) {
  stream->attached = false;
  if (stream->armed) {
    stream->next_closing = slot.closing_streams;
    slot.closing_streams = stream;
  }
  if (stream->Stands()) stream->ring->Cancel(stream);
  if (stream->Unused()) delete stream;
}

Waiter* EndStreamLocked(DescriptorState& slot, StandingStream* stream) {
  stream->armed = false;
  stream->ring = nullptr;
  if (stream->attached) return nullptr;
  for (StandingStream** link = &slot.closing_streams; *link != nullptr;
       link = &(*link)->next_closing) {
    if (*link == stream) {
      *link = stream->next_closing;
      stream->next_closing = nullptr;
      break;
    }
  }
  return stream->closing_waiters.PopAll();
}

void FinishCompletion(DescriptorState& slot, int fd, std::uint32_t generation,
                      StandingStream* unused, bool last, Waiter* closers) {
  delete unused;
  if (!last) return;
  // The request ended (the kernel drops its reference to the file a moment
  // later: docs/io.md, Known limits); with no other use left this closes the
  // number, before Close() and its cancelled calls return.
  ReleaseUse(fd, slot, generation);
  WaitQueue::WakeAll(closers);
}

void AwaitDetachedStreams(DescriptorState& slot, std::uint32_t generation) {
  for (;;) {
    slot.lock.lock();
    StandingStream* stream = slot.closing_streams;
    while (stream != nullptr && stream->generation != generation) {
      stream = stream->next_closing;
    }
    if (stream == nullptr) {
      slot.lock.unlock();
      return;
    }
    Waiter waiter;
    stream->closing_waiters.Park(&waiter, slot.lock);
  }
}

}  // namespace weft::detail
