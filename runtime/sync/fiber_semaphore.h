// A counting semaphore for fibers and plain threads.
//
// Thread-safe; fibers and plain threads in any mix. Acquire() takes a unit or
// waits for one; Release(n) gives units back and hands them to waiters in FIFO
// order directly, so a waiter cannot be overtaken by a newcomer once units are
// released to it. A Release() happens-before the Acquire() it satisfies.
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
#include "runtime/scheduling_group/wait_queue.h"

namespace weft {

class FiberSemaphore {
 public:
  explicit FiberSemaphore(std::ptrdiff_t initial);
  ~FiberSemaphore();
  FiberSemaphore(const FiberSemaphore&) = delete;
  FiberSemaphore& operator=(const FiberSemaphore&) = delete;

  void Acquire();
  // Takes a unit if one is free now.
  bool TryAcquire();
  // Acquire() that gives up after `timeout`; returns whether a unit was taken.
  template <class Rep, class Period>
  bool TryAcquireFor(const std::chrono::duration<Rep, Period>& timeout) {
    if (TryAcquire()) return true;
    if (timeout <= timeout.zero()) return false;
    return AcquireUntil(detail::DeadlineAfter(timeout));
  }
  void Release(std::ptrdiff_t n = 1);

 private:
  bool AcquireUntil(detail::SteadyTime deadline);

  // Free units; never positive while someone waits (Release hands units over).
  std::atomic<std::ptrdiff_t> count_;
  detail::Spinlock lock_;
  detail::WaitQueue waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_SEMAPHORE_H_
