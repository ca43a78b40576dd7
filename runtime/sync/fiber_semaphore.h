// A counting semaphore for fibers and plain threads.
//
//   weft::FiberSemaphore connections(16);      // a pool of 16
//   connections.Acquire();
//   UseOneConnection();                         // at most 16 at once
//   connections.Release();
//
// Thread-safe; fibers and plain threads in any mix. Acquire() takes a unit or
// waits for one; Release(n) gives units back. A Release() happens-before the
// Acquire() it satisfies.
//
// Units are used, not held in transit: Release() makes a unit free at once and
// wakes a waiter for it, and whoever gets there first takes it (a fiber that
// releases and acquires again keeps running with its unit, instead of handing
// it to a waiter that is not running yet and parking). So under contention all
// units stay in use. A woken waiter that lost the race waits again in its place
// at the head of the queue, and a waiter that has been first in line for 1 ms
// is handed the next unit released, so none starves: waiters are served in
// FIFO order, each at most about 1 ms after the one before it.
//
// Lifetime: the semaphore may be destroyed as soon as an Acquire() returns,
// even while the Release() that satisfied it is still returning.
//
// Misuse aborts with a message: a negative initial count or release, destroying
// a semaphore that still has waiters.
#ifndef WEFT_RUNTIME_SYNC_FIBER_SEMAPHORE_H_
#define WEFT_RUNTIME_SYNC_FIBER_SEMAPHORE_H_

#include <atomic>
#include <chrono>
#include <cstddef>

#include "runtime/detail/deadline.h"
#include "runtime/detail/spinlock.h"
#include "runtime/sync/detail/wait_queue.h"

namespace weft {

class FiberSemaphore {
 public:
  explicit FiberSemaphore(std::ptrdiff_t initial);
  ~FiberSemaphore();
  FiberSemaphore(const FiberSemaphore&) = delete;
  FiberSemaphore& operator=(const FiberSemaphore&) = delete;

  void Acquire() {
    if (!TryAcquire()) AcquireSlow(detail::kNoDeadline);
  }
  // Takes a unit if one is free now.
  bool TryAcquire() {
    std::ptrdiff_t count = count_.load(std::memory_order_relaxed);
    while (count > 0) {
      if (count_.compare_exchange_weak(count, count - 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  // Acquire() that gives up after `timeout` (zero, negative and NaN only try,
  // max() waits as long as it takes); returns whether a unit was taken.
  template <class Rep, class Period>
  bool TryAcquireFor(const std::chrono::duration<Rep, Period>& timeout) {
    return TryAcquire() || AcquireSlow(detail::DeadlineAfter(timeout));
  }
  void Release(std::ptrdiff_t n = 1);

 private:
  bool AcquireSlow(detail::SteadyTime deadline);
  // Under lock_: unlinks the first waiter into `*list`, and starts the clock
  // of the one behind it.
  void TakeFrontLocked(detail::Waiter*** list_tail) WEFT_REQUIRES(lock_);

  std::atomic<std::ptrdiff_t> count_;  // free units
  detail::Spinlock lock_;
  detail::WaitQueue waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_SEMAPHORE_H_
