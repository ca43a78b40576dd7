// A single-use countdown latch (like std::latch) for fibers and plain threads.
//
//   weft::FiberLatch done(workers);
//   for (...) weft::StartFiberDetached([&] { Work(); done.CountDown(); });
//   done.Wait();
//
// Thread-safe. Counting down and waiting may happen on fibers and plain threads
// in any mix; a waiting fiber is suspended and its worker runs other fibers.
// Everything that happens before a CountDown() happens-before the return of any
// Wait() it releases. The latch may be destroyed as soon as Wait() returns, even
// while the fiber that counted down last is still returning from CountDown().
//
// Misuse aborts with a message: counting down below zero, a negative initial
// count, destroying a latch that still has waiters.
#ifndef WEFT_RUNTIME_SYNC_FIBER_LATCH_H_
#define WEFT_RUNTIME_SYNC_FIBER_LATCH_H_

#include <atomic>
#include <chrono>
#include <cstddef>

#include "runtime/detail/deadline.h"
#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft {

class FiberLatch {
 public:
  explicit FiberLatch(std::ptrdiff_t count);
  ~FiberLatch();
  FiberLatch(const FiberLatch&) = delete;
  FiberLatch& operator=(const FiberLatch&) = delete;

  // Decrements the count by `n` (>= 0); at zero, releases every waiter.
  void CountDown(std::ptrdiff_t n = 1);
  // True once the count is zero. Never blocks.
  bool TryWait() const;
  // Blocks until the count is zero.
  void Wait();
  // CountDown(n), then Wait().
  void ArriveAndWait(std::ptrdiff_t n = 1);

  // Wait() that gives up after `timeout`; returns whether the count reached zero.
  template <class Rep, class Period>
  bool WaitFor(const std::chrono::duration<Rep, Period>& timeout) {
    return WaitUntilSteady(detail::DeadlineAfter(timeout));
  }
  // Wait() that gives up at `deadline` (any clock).
  template <class Clock, class Duration>
  bool WaitUntil(const std::chrono::time_point<Clock, Duration>& deadline) {
    return WaitUntilSteady(detail::ToSteadyDeadline(deadline));
  }

 private:
  friend class FiberEvent;

  bool WaitUntilSteady(detail::SteadyTime deadline);
  // Brings the count to zero (if it is not already) and releases the waiters.
  void ReleaseAll();

  std::atomic<std::ptrdiff_t> count_;
  mutable detail::Spinlock lock_;
  detail::WaitQueue waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_LATCH_H_
