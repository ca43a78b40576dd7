// A mutual-exclusion lock for fibers and plain threads.
//
//   weft::FiberMutex mutex;
//   {
//     std::lock_guard<weft::FiberMutex> lock(mutex);  // or unique_lock, scoped_lock
//     ...
//   }
//
// Thread-safe. Lockers may be fibers (a fiber that has to wait is suspended and
// its worker runs other fibers) or plain threads (blocked on a futex), in any
// mix. Not recursive.
//
// Cost: an uncontended lock and unlock are one atomic operation each. A
// contended lock spins briefly (the holder, being a fiber, usually keeps its CPU
// and releases soon) if its worker has nothing else ready, then parks. unlock()
// wakes at most one waiter, and none while a waiter woken earlier has not yet
// tried the lock again. Woken waiters compete with newcomers for throughput, but
// a waiter that has waited longer than 1 ms is handed the lock directly on the
// next unlock, so no waiter starves.
//
// Memory order: unlock() happens-before the lock() that acquires the mutex next
// (acquire/release semantics, as std::mutex).
//
// Misuse aborts with a message: unlocking a mutex that is not locked, destroying
// a mutex that is locked or has waiters. As with std::mutex, unlocking a mutex
// locked by someone else is undefined behaviour (not detected).
#ifndef WEFT_RUNTIME_SYNC_FIBER_MUTEX_H_
#define WEFT_RUNTIME_SYNC_FIBER_MUTEX_H_

#include <atomic>
#include <chrono>
#include <cstdint>

#include "runtime/detail/check.h"
#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/wait_queue.h"
#include "runtime/thread_annotations.h"

namespace weft {

class WEFT_CAPABILITY("mutex") FiberMutex {
 public:
  FiberMutex() = default;
  ~FiberMutex();
  FiberMutex(const FiberMutex&) = delete;
  FiberMutex& operator=(const FiberMutex&) = delete;

  void lock() WEFT_ACQUIRE() {
    std::uint32_t expected = kUnlocked;
    if (WEFT_LIKELY(state_.compare_exchange_strong(
            expected, kLocked, std::memory_order_acquire, std::memory_order_relaxed))) {
      return;
    }
    LockSlow(nullptr);
  }

  bool try_lock() WEFT_TRY_ACQUIRE(true) {
    std::uint32_t expected = kUnlocked;
    return state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }

  void unlock() WEFT_RELEASE() {
    std::uint32_t expected = kLocked;
    if (WEFT_LIKELY(state_.compare_exchange_strong(
            expected, kUnlocked, std::memory_order_release, std::memory_order_relaxed))) {
      return;
    }
    UnlockSlow(expected);
  }

 private:
  friend class FiberTimedMutex;

  // kContended: locked, and waiters may be parked (unlock must look).
  enum : std::uint32_t { kUnlocked = 0, kLocked = 1, kContended = 2 };

  // Locks, parking if needed; with a deadline, gives up at it (returns false).
  bool LockSlow(const std::chrono::steady_clock::time_point* deadline);
  void UnlockSlow(std::uint32_t state);

  std::atomic<std::uint32_t> state_{kUnlocked};
  // A waiter woken by an unlock has not yet tried the mutex again: later unlocks
  // wake no one else meanwhile. Set under wait_lock_, cleared by that waiter.
  std::atomic<bool> woken_{false};
  detail::Spinlock wait_lock_;
  detail::WaitQueue waiters_ WEFT_GUARDED_BY(wait_lock_);
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_MUTEX_H_
