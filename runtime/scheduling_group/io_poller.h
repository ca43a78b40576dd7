// A scheduling group's readiness source: one epoll instance in which every
// descriptor of weft::io is registered once, edge-triggered for both
// directions, and which the group's own workers poll. There is no poller
// thread: a worker that is about to sleep while descriptors are registered
// sleeps in epoll_wait instead of on its futex (and is woken through an
// eventfd instead), spinning workers look at it without blocking, and running
// workers look at it now and then between fibers (fiber_worker.cc). One
// worker at a time may wait in epoll_wait (it holds the sleeper token); the
// looks without waiting are skipped while one does, since the kernel wakes it
// for every event anyway.
//
// Each event carries the descriptor number and the generation it was
// registered with (descriptor_table.h); an event for an older generation is
// dropped. For each ready direction the first waiter is woken, or the
// direction is flagged ready when none waits.
//
// Completion sources (file_ring.h: a worker's io_uring) join the same
// instance through an eventfd the kernel signals on each completion: a worker
// sleeping in epoll_wait is woken by it and reaps the source, so completions
// reach parked fibers whichever worker sleeps. A source counts as a
// registration.
//
// While no runtime runs, descriptors are registered with the fallback poller,
// which has a thread of its own that blocks in epoll_wait (there are no workers
// then to compete with); it keeps serving them after a runtime starts.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_IO_POLLER_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_IO_POLLER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft::detail {

struct FiberEntity;
class SchedulingGroup;

// Something whose completions an eventfd announces (see the file comment).
class CompletionSource {
 public:
  // Called when the eventfd is readable: drains it and readies the fibers
  // whose requests completed, as IoPoller::Poll does. Any worker of the group.
  virtual std::size_t OnSignal(SchedulingGroup* group, FiberEntity** ready,
                               std::size_t capacity) = 0;

 protected:
  ~CompletionSource() = default;
};

class IoPoller {
 public:
  // At most this many completion sources (one per worker of a group).
  static constexpr std::size_t kMaxCompletionSources = 64;

  // Aborts with a message when the system refuses an epoll instance or an
  // eventfd (out of descriptors).
  IoPoller();
  // Call MoveRegistrationsTo() first if descriptors may still be registered.
  ~IoPoller();
  IoPoller(const IoPoller&) = delete;
  IoPoller& operator=(const IoPoller&) = delete;

  // Registers `fd` for `generation`, edge-triggered, both directions. Returns 0
  // or the errno of epoll_ctl (EPERM: a descriptor that cannot be polled, such
  // as a regular file).
  int Register(int fd, std::uint32_t generation);
  // Adds `source`, announced by `event_fd` (non-blocking), level-triggered.
  // It stays until the poller is destroyed; it must outlive the poller's
  // last Poll(). Returns 0 or an errno.
  int AddCompletionSource(int event_fd, CompletionSource* source);
  // Removes `fd` (still open) from the instance.
  void Unregister(int fd);
  // Registers every open descriptor registered here with `other` instead
  // (a stopping group hands its descriptors to the fallback poller). Call
  // when no fiber can use them concurrently.
  void MoveRegistrationsTo(IoPoller& other);
  // Whether any descriptor was registered and not yet unregistered: until
  // then the group's workers sleep on their futexes and never poll.
  bool HasRegistrations() const {
    return registrations_.load(std::memory_order_relaxed) != 0;
  }

  // The sleeper token: held by the one thread that may wait in Poll().
  bool TryTakeSleeperToken() {
    return !sleeper_.load(std::memory_order_relaxed) &&
           !sleeper_.exchange(true, std::memory_order_acquire);
  }
  void ReturnSleeperToken() { sleeper_.store(false, std::memory_order_release); }
  bool HasSleeper() const { return sleeper_.load(std::memory_order_relaxed); }

  // Waits up to `timeout_ms` (0: only looks, any thread; otherwise only with
  // the sleeper token; -1: until an event or Interrupt()) and wakes the
  // waiters of every descriptor that became ready. Fibers of `group` (may be null) are not readied but stored in
  // `ready` (up to `capacity`; the rest are readied); returns how many were
  // stored, and the caller runs or queues them. Other fibers are readied in
  // their groups, plain threads unblocked.
  std::size_t Poll(int timeout_ms, SchedulingGroup* group, FiberEntity** ready,
                   std::size_t capacity);

  // Makes a Poll(-1) under way return soon. Any thread.
  void Interrupt();

 private:
  static constexpr std::uint64_t kInterruptToken = ~std::uint64_t{0};
  // A source's event: this in the low 32 bits (never a descriptor, which is
  // below 2^31), its index in sources_ in the high ones.
  static constexpr std::uint32_t kSourceMark = 0xfffffffeu;

  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::atomic<bool> sleeper_{false};
  std::atomic<std::int64_t> registrations_{0};
  std::atomic<CompletionSource*> sources_[kMaxCompletionSources] = {};
  std::atomic<std::size_t> source_count_{0};
};

// Polls the instance while no runtime runs (see the file comment). Created on
// first use; never destroyed.
IoPoller& FallbackPoller();

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_IO_POLLER_H_
