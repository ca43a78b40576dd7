#include "runtime/io/detail/accept_stream.h"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <deque>

#include "runtime/detail/libc.h"
#include "runtime/io/detail/descriptor_use.h"

namespace weft::detail {

// The most connections a stream holds that no call took: past that its
// request is cancelled, and further connections wait in the kernel's backlog,
// whose bound (listen's backlog) then pushes back on clients as it would
// without a stream.
constexpr std::size_t kMaxHeld = 32;

struct AcceptStream : StandingStream {
  std::deque<int> accepted;  // taken by no call yet, oldest first (slot->lock)
};

namespace {

std::atomic<bool> refused_by_kernel{false};
std::atomic<bool> disabled_for_testing{false};

// The reaper's call for each completion of a stream's multishot accept.
Waiter* OnCompletion(RingRequest* request, int result, unsigned flags) {
  auto* stream = static_cast<AcceptStream*>(request);
  DescriptorState& slot = *stream->slot;
  const bool last = (flags & IORING_CQE_F_MORE) == 0;
  int stray = -1;
  Waiter* woken = nullptr;
  Waiter* closers = nullptr;
  slot.lock.lock();
  FileRing* ring = stream->ring;
  if (last) {
    closers = EndStreamLocked(slot, stream);
    // The backlog was empty and the listener listening a moment ago (the
    // caller's accept said EAGAIN): EINVAL is a kernel without multishot
    // accept (before 5.19).
    if (result == -EINVAL) refused_by_kernel.store(true, std::memory_order_relaxed);
  }
  if (stream->attached) {
    if (result >= 0) stream->accepted.push_back(result);
    if (!last && !stream->stopping && stream->accepted.size() >= kMaxHeld) {
      stream->stopping = true;
      ring->Cancel(stream);
    }
    // A connection, or the end of the request: an edge for the waiters.
    if (result >= 0 || last) {
      slot.edges[0].fetch_add(1, std::memory_order_release);
      woken = slot.waiters[0].PopFront();
    }
  } else if (result >= 0) {
    stray = result;  // accepted as the listener closed
  }
  // Read under the lock: once it is released Close() may free the stream.
  const int fd = stream->fd;
  const std::uint32_t generation = stream->generation;
  StandingStream* const unused = stream->Unused() ? stream : nullptr;
  slot.lock.unlock();
  if (stray >= 0) Libc().close(stray);
  FinishCompletion(slot, fd, generation, unused, last, closers);
  return woken;
}

}  // namespace

bool MultishotAcceptEnabled() {
  return SocketRingsEnabled() && MultishotAllowed() &&
         !refused_by_kernel.load(std::memory_order_relaxed) &&
         !disabled_for_testing.load(std::memory_order_relaxed);
}

void SetMultishotAcceptForTesting(bool enabled) {
  disabled_for_testing.store(!enabled, std::memory_order_relaxed);
}

int TakeAccepted(DescriptorState& slot, std::uint32_t generation, bool* stands) {
  int fd = -1;
  *stands = false;
  slot.lock.lock();
  AcceptStream* stream = slot.accept_stream;
  if (stream != nullptr && HoldsOpen(slot, generation)) {
    if (!stream->accepted.empty()) {
      fd = stream->accepted.front();
      stream->accepted.pop_front();
    }
    *stands = stream->Stands();
  }
  slot.lock.unlock();
  return fd;
}

ArmResult ArmAcceptStream(DescriptorState& slot, std::uint32_t generation, int fd,
                          FileRing* ring) {
  if (!MultishotAcceptEnabled()) return ArmResult::kOneShot;
  return ArmStream(
      slot, &DescriptorState::accept_stream, generation, fd, ring,
      [] {
        auto* stream = new AcceptStream;
        stream->on_completion = &OnCompletion;
        return stream;
      },
      [&](io_uring_sqe* sqe) {
        io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr,
                                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      });
}

void StopAcceptStreamIfIdle(DescriptorState& slot, std::uint32_t generation) {
  slot.lock.lock();
  if (HoldsOpen(slot, generation)) StopStreamIfIdleLocked(slot, slot.accept_stream);
  slot.lock.unlock();
}

void DetachAcceptStreamLocked(DescriptorState& slot) {
  AcceptStream* stream = slot.accept_stream;
  if (stream == nullptr) return;
  slot.accept_stream = nullptr;
  for (const int fd : stream->accepted) Libc().close(fd);
  stream->accepted.clear();
  DetachStreamLocked(slot, stream);
}

}  // namespace weft::detail
