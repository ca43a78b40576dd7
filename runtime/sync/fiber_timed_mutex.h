// FiberMutex with timed locking: try_lock_for / try_lock_until.
//
// Thread-safe; fibers and plain threads alike (see FiberMutex for costs,
// fairness and misuse). A lock attempt that times out leaves no trace: the
// mutex is not acquired and the attempt takes no place in the queue.
#ifndef WEFT_RUNTIME_SYNC_FIBER_TIMED_MUTEX_H_
#define WEFT_RUNTIME_SYNC_FIBER_TIMED_MUTEX_H_

#include <chrono>

#include "runtime/detail/deadline.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/thread_annotations.h"

namespace weft {

class WEFT_CAPABILITY("mutex") FiberTimedMutex {
 public:
  // The bodies hand over to the FiberMutex inside, which the analysis would
  // otherwise count as a second lock held.
  void lock() WEFT_ACQUIRE() WEFT_NO_THREAD_SAFETY_ANALYSIS { mutex_.lock(); }
  bool try_lock() WEFT_TRY_ACQUIRE(true) WEFT_NO_THREAD_SAFETY_ANALYSIS {
    return mutex_.try_lock();
  }
  void unlock() WEFT_RELEASE() WEFT_NO_THREAD_SAFETY_ANALYSIS { mutex_.unlock(); }

  // Locks if the mutex can be had within `timeout`. A zero or negative timeout
  // tries once, like try_lock(); `duration::max()` waits as long as it takes.
  // Returns whether the mutex was acquired.
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout)
      WEFT_TRY_ACQUIRE(true) WEFT_NO_THREAD_SAFETY_ANALYSIS {
    return TryLockUntilSteady(detail::DeadlineAfter(timeout));
  }

  // Locks if the mutex can be had before `deadline` (any clock). A deadline in
  // the past tries once; `time_point::max()` waits as long as it takes.
  // Returns whether the mutex was acquired.
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline)
      WEFT_TRY_ACQUIRE(true) WEFT_NO_THREAD_SAFETY_ANALYSIS {
    return TryLockUntilSteady(detail::ToSteadyDeadline(deadline));
  }

 private:
  bool TryLockUntilSteady(detail::SteadyTime deadline) WEFT_NO_THREAD_SAFETY_ANALYSIS {
    if (mutex_.try_lock()) return true;
    if (deadline <= std::chrono::steady_clock::now()) return false;
    return mutex_.LockSlow(&deadline);
  }

  FiberMutex mutex_;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_TIMED_MUTEX_H_
