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

struct AcceptStream : RingRequest {
  DescriptorState* slot = nullptr;
  // The listener. While armed, the stream holds a use of it (as a call
  // does): the number is closed only after the kernel let go of the socket,
  // so a closed listener refuses connections at once.
  int fd = -1;
  std::uint32_t generation = 0;
  // The rest is guarded by slot->lock.
  std::deque<int> accepted;  // taken by no call yet, oldest first
  bool attached = true;      // slot->accept_stream is this stream
  bool armed = false;        // its request stands in a ring (or is being submitted)
  bool submitted = false;    // ... and was submitted: Close() may cancel it
  bool stopping = false;     // ... and holds kMaxHeld: cancelled
  FileRing* ring = nullptr;  // where it stands
  int pins = 0;              // calls that use it without the slot's lock
  // Detached while armed: linked in slot->closing_accept_streams, where
  // Close() and the calls it cancelled wait in `closing_waiters` for the
  // request's last completion.
  AcceptStream* next_closing = nullptr;
  WaitQueue closing_waiters;

  bool Unused() const { return !attached && !armed && pins == 0; }
  // Its request stands and is not being cancelled: it drains the backlog.
  bool Stands() const { return armed && submitted && !stopping; }
};

namespace {

std::atomic<bool> refused_by_kernel{false};
std::atomic<bool> disabled_for_testing{false};

// Unlinks a detached `stream` from its slot's closing streams.
void UnlinkClosingLocked(DescriptorState& slot, AcceptStream* stream)
    WEFT_REQUIRES(slot.lock) {
  for (AcceptStream** link = &slot.closing_accept_streams; *link != nullptr;
       link = &(*link)->next_closing) {
    if (*link == stream) {
      *link = stream->next_closing;
      stream->next_closing = nullptr;
      return;
    }
  }
}

// The reaper's call for each completion of a stream's multishot accept.
void OnCompletion(RingRequest* request, int result, unsigned flags) {
  auto* stream = static_cast<AcceptStream*>(request);
  DescriptorState& slot = *stream->slot;
  const bool last = (flags & IORING_CQE_F_MORE) == 0;
  int stray = -1;
  Waiter* woken = nullptr;
  Waiter* closers = nullptr;
  slot.lock.lock();
  if (last) {
    stream->armed = false;
    stream->ring = nullptr;
    if (!stream->attached) {
      UnlinkClosingLocked(slot, stream);
      closers = stream->closing_waiters.PopAll();
    }
    // The backlog was empty and the listener listening a moment ago (the
    // caller's accept said EAGAIN): EINVAL is a kernel without multishot
    // accept (before 5.19).
    if (result == -EINVAL) refused_by_kernel.store(true, std::memory_order_relaxed);
  }
  if (stream->attached) {
    if (result >= 0) stream->accepted.push_back(result);
    if (!last && !stream->stopping && stream->accepted.size() >= kMaxHeld) {
      stream->stopping = true;
      stream->ring->Cancel(stream);
    }
    // A connection, or the end of the request: an edge for the waiters.
    if (result >= 0 || last) {
      slot.edges[0].fetch_add(1, std::memory_order_release);
      woken = slot.waiters[0].PopFront();
    }
  } else if (result >= 0) {
    stray = result;  // accepted as the listener closed
  }
  const bool unused = stream->Unused();
  const int fd = stream->fd;
  const std::uint32_t generation = stream->generation;
  slot.lock.unlock();
  if (stray >= 0) Libc().close(stray);
  if (woken != nullptr) WaitQueue::Wake(woken);
  if (unused) delete stream;
  if (last) {
    // The kernel let go of the socket; with no other use left this closes
    // it, before Close() and its cancelled calls return.
    ReleaseUse(fd, slot, generation);
    WaitQueue::WakeAll(closers);
  }
}

}  // namespace

bool MultishotAcceptEnabled() {
  return SocketRingsEnabled() && !refused_by_kernel.load(std::memory_order_relaxed) &&
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
  slot.lock.lock();
  if (!HoldsOpen(slot, generation)) {
    slot.lock.unlock();
    return ArmResult::kClosed;
  }
  AcceptStream* stream = slot.accept_stream;
  if (stream == nullptr) {
    stream = new AcceptStream;
    stream->slot = &slot;
    stream->fd = fd;
    stream->generation = generation;
    stream->on_completion = &OnCompletion;
    slot.accept_stream = stream;
  }
  if (stream->armed) {
    slot.lock.unlock();
    return ArmResult::kWait;
  }
  stream->armed = true;
  stream->submitted = false;
  stream->stopping = false;
  stream->ring = ring;
  ++stream->pins;
  // The request's use of the listener, released by its last completion. The
  // caller's own use keeps the count above zero here, so Close() cannot have
  // finished closing in between.
  slot.word.fetch_add(1, std::memory_order_acq_rel);
  slot.lock.unlock();
  ring->StartStanding(stream, [&](io_uring_sqe* sqe) {
    io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr,
                                   SOCK_NONBLOCK | SOCK_CLOEXEC);
  });
  slot.lock.lock();
  stream->submitted = true;
  --stream->pins;
  // Closed while the request was on its way: Close() left its cancellation
  // to us.
  const bool closed = !stream->attached;
  if (closed && stream->armed) ring->Cancel(stream);
  const bool unused = stream->Unused();
  slot.lock.unlock();
  if (unused) delete stream;
  return closed ? ArmResult::kClosed : ArmResult::kWait;
}

void StopAcceptStreamIfIdle(DescriptorState& slot, std::uint32_t generation) {
  slot.lock.lock();
  AcceptStream* stream = slot.accept_stream;
  if (stream != nullptr && HoldsOpen(slot, generation) && stream->Stands() &&
      slot.waiters[0].empty()) {
    stream->stopping = true;
    stream->ring->Cancel(stream);
  }
  slot.lock.unlock();
}

void DetachAcceptStreamLocked(DescriptorState& slot) {
  AcceptStream* stream = slot.accept_stream;
  if (stream == nullptr) return;
  slot.accept_stream = nullptr;
  stream->attached = false;
  for (const int fd : stream->accepted) Libc().close(fd);
  stream->accepted.clear();
  if (stream->armed) {
    stream->next_closing = slot.closing_accept_streams;
    slot.closing_accept_streams = stream;
  }
  if (stream->Stands()) stream->ring->Cancel(stream);
  if (stream->Unused()) delete stream;
}

void AwaitDetachedAcceptStream(DescriptorState& slot, std::uint32_t generation) {
  slot.lock.lock();
  AcceptStream* stream = slot.closing_accept_streams;
  while (stream != nullptr && stream->generation != generation) stream = stream->next_closing;
  if (stream == nullptr) {
    slot.lock.unlock();
    return;
  }
  Waiter waiter;
  stream->closing_waiters.Park(&waiter, slot.lock);
}

}  // namespace weft::detail
