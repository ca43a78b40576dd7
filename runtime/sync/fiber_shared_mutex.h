// A reader-writer lock for fibers and plain threads (SharedLockable, so
// std::shared_lock and std::unique_lock work).
//
// Thread-safe; lockers may be fibers or plain threads in any mix.
//
// Cost: an uncontended lock_shared() / unlock_shared() is one atomic operation
// each on a shared counter, and so is an uncontended lock() / unlock().
//
// Fairness (phase-fair): once a writer waits, new readers queue behind it, so a
// stream of readers cannot starve writers; when a writer unlocks, every reader
// that queued meanwhile is admitted before the next writer, so writers cannot
// starve readers either. Writers are served in FIFO order.
//
// Memory order: as std::shared_mutex (an unlock happens-before the lock that
// acquires next).
//
// Misuse aborts with a message: unlocking what is not locked, destroying a
// locked mutex.
#ifndef WEFT_RUNTIME_SYNC_FIBER_SHARED_MUTEX_H_
#define WEFT_RUNTIME_SYNC_FIBER_SHARED_MUTEX_H_

#include <atomic>
#include <cstdint>

#include "runtime/detail/check.h"
#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/wait_queue.h"
#include "runtime/thread_annotations.h"

namespace weft {

class WEFT_CAPABILITY("mutex") FiberSharedMutex {
 public:
  FiberSharedMutex() = default;
  ~FiberSharedMutex();
  FiberSharedMutex(const FiberSharedMutex&) = delete;
  FiberSharedMutex& operator=(const FiberSharedMutex&) = delete;

  void lock() WEFT_ACQUIRE() WEFT_NO_THREAD_SAFETY_ANALYSIS {
    if (!try_lock()) LockSlow();
  }
  bool try_lock() WEFT_TRY_ACQUIRE(true) {
    std::uint32_t expected = 0;
    return state_.compare_exchange_strong(expected, kWriter, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  void unlock() WEFT_RELEASE() {
    std::uint32_t expected = kWriter;
    if (WEFT_LIKELY(state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                                   std::memory_order_relaxed))) {
      return;
    }
    UnlockSlow(expected);
  }

  void lock_shared() WEFT_ACQUIRE_SHARED() WEFT_NO_THREAD_SAFETY_ANALYSIS {
    if (!try_lock_shared()) LockSharedSlow();
  }
  bool try_lock_shared() WEFT_TRY_ACQUIRE_SHARED(true) {
    std::uint32_t state = state_.load(std::memory_order_relaxed);
    while ((state & (kWriter | kWriterWaiting)) == 0) {
      if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }
  void unlock_shared() WEFT_RELEASE_SHARED() {
    const std::uint32_t before = state_.fetch_sub(1, std::memory_order_release);
    if (WEFT_UNLIKELY((before & kReaderMask) <= 1)) UnlockSharedSlow(before);
  }

 private:
  // Readers holding the lock in the low bits; writer state in the high ones.
  static constexpr std::uint32_t kWriter = 1u << 31;
  static constexpr std::uint32_t kWriterWaiting = 1u << 30;   // writers_ not empty
  static constexpr std::uint32_t kReadersWaiting = 1u << 29;  // readers_ not empty
  static constexpr std::uint32_t kReaderMask = kReadersWaiting - 1;

  void LockSlow();
  void UnlockSlow(std::uint32_t state);
  void LockSharedSlow();
  void UnlockSharedSlow(std::uint32_t before);
  // The state that admits `writer` (or nobody) with the queues as they are.
  std::uint32_t WaitingBits() const WEFT_REQUIRES(wait_lock_);

  std::atomic<std::uint32_t> state_{0};
  detail::Spinlock wait_lock_;
  detail::WaitQueue writers_ WEFT_GUARDED_BY(wait_lock_);
  detail::WaitQueue readers_ WEFT_GUARDED_BY(wait_lock_);
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_SHARED_MUTEX_H_
