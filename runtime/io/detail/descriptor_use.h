// One call's use of a descriptor through weft::io (runtime/io/fd.h): the
// descriptor's lifecycle in its slot (descriptor_table.h) as weft::io's calls
// drive it (opening a generation, cancelling waiters, the last use closing),
// and DescriptorUse, which a call holds while it uses the descriptor and
// through which it waits for readiness, through a poller or, with the
// io_uring socket engine, in its worker's ring.
#ifndef WEFT_RUNTIME_IO_DETAIL_DESCRIPTOR_USE_H_
#define WEFT_RUNTIME_IO_DETAIL_DESCRIPTOR_USE_H_

#include <sys/types.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "runtime/deadline.h"
#include "runtime/detail/check.h"
#include "runtime/detail/errno.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/file_ring.h"
#include "runtime/scheduling_group/io_poller.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft::detail {

constexpr int DirectionIndex(IoDirection direction) {
  return static_cast<int>(direction);
}

inline bool WouldBlock(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

// The poller a descriptor used by the caller belongs with: its scheduling
// group's, or the fallback poller for a plain thread.
IoPoller& PollerForCaller();

// Whether a socket created or first used by the caller waits in the rings
// (io_uring socket engine) rather than in a poller: then it is not
// registered with epoll (a plain thread that waits on it later registers it).
bool WaitsInRings(bool is_socket);

// Cancels every waiter of `slot` (its lock held), and asks the kernel to
// cancel the requests its calls have in the rings; returns the waiters to be
// woken once the lock is released.
Waiter* CancelWaitersLocked(DescriptorState& slot) WEFT_REQUIRES(slot.lock);

// What a descriptor's user asked for, as the hooks show it back (the
// descriptor_table.h fields of the same names).
struct UserView {
  bool nonblocking = false;
  std::int64_t receive_timeout_ns = 0;
  std::int64_t send_timeout_ns = 0;
};

// Starts a new generation of `fd` in its slot: non-blocking already, and
// registered with the caller's poller when it can be polled. With
// `known_new` (a descriptor just made by socket or accept) whatever the slot
// held is stale: its number was closed behind weft's back and reused.
// Returns 0 or an errno.
int OpenSlot(int fd, DescriptorState& slot, bool is_socket, bool pollable, bool known_new,
             const UserView& view = {});

// First use of a descriptor that weft did not make: checks that it is open,
// makes it non-blocking and registers it. Returns 0 or an errno.
// The mode and socket timeouts it had are kept as the user's view (hook/).
int OpenExisting(int fd, DescriptorState& slot);

// The caller's close of the descriptor, once no call uses it any more.
void FinishClose(int fd, DescriptorState& slot, std::uint32_t generation);

// Whether `slot` still holds generation `generation` of its descriptor, open
// (not closing).
inline bool HoldsOpen(const DescriptorState& slot, std::uint32_t generation) {
  const std::uint64_t word = slot.word.load(std::memory_order_seq_cst);
  return DescriptorState::GenerationOf(word) == generation &&
         (word & DescriptorState::kClosing) == 0;
}

// Drops the fallback poller's registration of `fd`, which a plain thread that
// no longer waits left behind, when the descriptor's waits now go elsewhere
// (rings, an accept stream): the fallback poller's thread would wake them for
// nothing. A plain thread that waits again registers it again.
inline void DropIdleFallbackRegistrationLocked(int fd, DescriptorState& slot)
    WEFT_REQUIRES(slot.lock) {
  if (slot.poller == &FallbackPoller() && slot.waiters[0].empty() &&
      slot.waiters[1].empty()) {
    slot.poller->Unregister(fd);
    slot.poller = nullptr;
  }
}

// Ends one use of generation `generation` of `fd` (a DescriptorUse's, or a
// standing ring request's): the last use of a closing descriptor closes it.
// Keeps errno.
void ReleaseUse(int fd, DescriptorState& slot, std::uint32_t generation);

// One call's use of a descriptor: while it lasts, Close() cannot release the
// number (it cancels the call's waits instead, and the last use closes).
class DescriptorUse {
 public:
  // On failure ok() is false and errno says why (EBADF).
  explicit DescriptorUse(int fd) : fd_(fd) {
    if (fd < 0) {
      detail::SetErrno(EBADF);
      return;
    }
    DescriptorState& slot = detail::DescriptorSlot(fd);
    std::uint64_t word = slot.word.load(std::memory_order_acquire);
    for (;;) {
      if ((word & DescriptorState::kOpen) == 0) {
        if (const int error = OpenExisting(fd, slot)) {
          detail::SetErrno(error);
          return;
        }
        word = slot.word.load(std::memory_order_acquire);
        continue;
      }
      if ((word & DescriptorState::kClosing) != 0) {
        detail::SetErrno(EBADF);
        return;
      }
      if (slot.word.compare_exchange_weak(word, word + 1, std::memory_order_acquire,
                                          std::memory_order_acquire)) {
        break;
      }
    }
    slot_ = &slot;
    generation_ = DescriptorState::GenerationOf(word);
  }

  ~DescriptorUse() {
    if (slot_ != nullptr) ReleaseUse(fd_, *slot_, generation_);
  }

  DescriptorUse(const DescriptorUse&) = delete;
  DescriptorUse& operator=(const DescriptorUse&) = delete;

  bool ok() const { return slot_ != nullptr; }
  int fd() const { return fd_; }
  DescriptorState& slot() const { return *slot_; }
  std::uint32_t generation() const { return generation_; }
  bool pollable() const { return slot_->pollable; }
  bool is_socket() const { return slot_->is_socket; }

  // Call before each attempt of the system call in `direction`: an edge that
  // comes after it makes WaitForEdge return at once.
  void Snapshot(IoDirection direction) {
    seen_[DirectionIndex(direction)] =
        slot_->edges[DirectionIndex(direction)].load(std::memory_order_acquire);
  }

  // After the system call said EAGAIN: waits for the next edge in `direction`.
  // Returns 0 (try again) or an errno: ETIMEDOUT, ECANCELED. Without
  // `through_poller` the edge comes from elsewhere (a listener's multishot
  // accept) and the descriptor is not registered with a poller for it.
  int WaitForEdge(IoDirection direction, Deadline deadline, bool through_poller = true) {
    const int d = DirectionIndex(direction);
    DescriptorState& slot = *slot_;
    detail::FiberWorker* worker = detail::CurrentWorker();
    slot.lock.lock();
    const std::uint64_t word = slot.word.load(std::memory_order_relaxed);
    if (DescriptorState::GenerationOf(word) != generation_ ||
        (word & DescriptorState::kClosing) != 0) {
      slot.lock.unlock();
      return ECANCELED;
    }
    if (slot.edges[d].load(std::memory_order_relaxed) != seen_[d]) {
      // An edge came since the system call started: it may succeed now.
      slot.lock.unlock();
      return 0;
    }
    // A fiber waits through its group's poller; a descriptor registered by a
    // plain thread (or whose group stopped) moves there.
    if (!through_poller) {
      // Edges come from the descriptor's accept stream, which the fallback
      // poller's thread would also race for the connection.
      DropIdleFallbackRegistrationLocked(fd_, slot);
    } else if (detail::InFiber(worker) && slot.poller != &worker->group()->poller()) {
      IoPoller& target = worker->group()->poller();
      if (slot.poller == nullptr || slot.poller == &detail::FallbackPoller()) {
        if (target.Register(fd_, generation_) == 0) {
          if (slot.poller != nullptr) slot.poller->Unregister(fd_);
          slot.poller = &target;
        }
      }
    } else if (slot.poller == nullptr) {
      IoPoller& target = PollerForCaller();
      if (target.Register(fd_, generation_) == 0) slot.poller = &target;
    }
    IoWaiter waiter;
    if (!slot.waiters[d].ParkUntil(&waiter, slot.lock, deadline.TimePoint())) {
      return ETIMEDOUT;
    }
    if (waiter.cancelled) return ECANCELED;
    woken_[d] = true;
    return 0;
  }

  // The ring this call's waits go through (io_uring socket engine), or
  // nullptr: waits go through a poller (WaitForEdge).
  FileRing* Ring() const {
    if (!WaitsInRings(slot_->is_socket)) return nullptr;
    return detail::CurrentWorker()->FileRingForCurrentFiber();
  }

  // After the system call said EAGAIN, with the io_uring socket engine: the
  // call's request, made by `prepare(sqe)`, goes to `ring` (Ring(), the ring
  // of the caller's worker), which makes it when the socket is ready. One request per
  // direction at a time is in a ring; other calls wait their turn in the
  // slot's queue, in the order they came, as with a poller.
  // Returns the request's result (a count, >= 0), -errno (ETIMEDOUT,
  // ECANCELED, or the call's own error), or kRetry: make the system call
  // again (the call's turn came, or the request ended without a result).
  static constexpr ssize_t kRetry = -(ssize_t{1} << 20);
  template <class Prepare>
  ssize_t OnRing(FileRing* ring, IoDirection direction, Deadline deadline,
                 Prepare&& prepare) {
    const int d = DirectionIndex(direction);
    DescriptorState& slot = *slot_;
    slot.lock.lock();
    if (!Current(slot)) {
      slot.lock.unlock();
      return -ECANCELED;
    }
    // Fibers wait in the rings.
    DropIdleFallbackRegistrationLocked(fd_, slot);
    // Queue behind the request in flight, whose end hands the turn on. With
    // none in flight this call makes the request, even if others queue: they
    // queued behind a request that ended, and the one it handed the turn to
    // came back here (its retry failed) or the next is on its way.
    if (slot.ring_requests[d] != nullptr) {
      IoWaiter waiter;
      if (!slot.waiters[d].ParkUntil(&waiter, slot.lock, deadline.TimePoint())) {
        return -ETIMEDOUT;
      }
      if (waiter.cancelled) return -ECANCELED;
      woken_[d] = true;
      return kRetry;
    }
    RingRequest request;
    // A socket's request may wait as long as its connection idles: it does
    // not take the ring's room (file_ring.h), so it is never refused.
    request.counted = false;
    slot.ring_requests[d] = &request;
    slot.lock.unlock();
    WEFT_CHECK(ring->TryStart(&request, deadline.TimePoint(), prepare));
    request.ring.store(ring, std::memory_order_seq_cst);
    // Pairs with the fence in CancelWaitersLocked.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!Current(slot)) ring->Cancel(&request);
    const int result = FileRing::Wait(&request, ring);
    slot.lock.lock();
    const bool current = Current(slot);
    slot.ring_requests[d] = nullptr;
    Waiter* next = current ? slot.waiters[d].PopFront() : nullptr;
    slot.lock.unlock();
    if (next != nullptr) detail::WaitQueue::Wake(next);
    if (result >= 0) return result;
    if (result == -ECANCELED) {
      if (!current) return -ECANCELED;  // Close()
      if (!deadline.IsNever() && deadline.HasPassed()) return -ETIMEDOUT;
      return kRetry;
    }
    // EAGAIN: the kernel gave up waiting (a request punted to its worker
    // threads sees the socket's O_NONBLOCK); EINTR: a signal.
    if (result == -EAGAIN || result == -EWOULDBLOCK || result == -EINTR) return kRetry;
    return result;
  }

  // A call woken by an edge has completed: the next waiter of the direction
  // gets its turn (the edge may have made room for more than one call).
  void PassOn(IoDirection direction) {
    const int d = DirectionIndex(direction);
    if (!woken_[d]) return;
    woken_[d] = false;
    DescriptorState& slot = *slot_;
    slot.lock.lock();
    Waiter* next = nullptr;
    if (DescriptorState::GenerationOf(slot.word.load(std::memory_order_relaxed)) ==
        generation_) {
      next = slot.waiters[d].PopFront();
    }
    slot.lock.unlock();
    if (next != nullptr) WaitQueue::Wake(next);
  }

 private:
  // Whether the slot still holds this call's descriptor, open.
  bool Current(const DescriptorState& slot) const { return HoldsOpen(slot, generation_); }

  int fd_;
  DescriptorState* slot_ = nullptr;
  std::uint32_t generation_ = 0;
  bool woken_[2] = {false, false};
  std::uint32_t seen_[2] = {0, 0};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_IO_DETAIL_DESCRIPTOR_USE_H_
