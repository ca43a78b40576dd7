// A condition variable for fibers and plain threads.
//
//   std::unique_lock<weft::FiberMutex> lock(mutex);
//   cv.wait(lock, [&] { return ready; });
//
// Thread-safe. Waiters and notifiers may be fibers or plain threads in any mix;
// a waiting fiber is suspended and its worker runs other fibers. Works with
// std::unique_lock<FiberMutex> and with any other lock whose mutex is Lockable
// (like std::condition_variable_any).
//
// Waiters are woken in FIFO order. A notification wakes only waiters that are
// waiting when it is made. A timed wait and a notification race safely: a
// waiter that timed out is no longer waiting, so notify_one() wakes someone else
// and no notification is lost. As with std::condition_variable, wait() may
// return spuriously; use the predicate overloads.
//
// Destroying a condition variable that still has waiters aborts with a message.
#ifndef WEFT_RUNTIME_SYNC_FIBER_CONDITION_VARIABLE_H_
#define WEFT_RUNTIME_SYNC_FIBER_CONDITION_VARIABLE_H_

#include <chrono>
#include <condition_variable>
#include <utility>

#include "runtime/detail/deadline.h"
#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft {

class FiberConditionVariable {
 public:
  FiberConditionVariable() = default;
  ~FiberConditionVariable();
  FiberConditionVariable(const FiberConditionVariable&) = delete;
  FiberConditionVariable& operator=(const FiberConditionVariable&) = delete;

  // Releases `lock`, waits for a notification, re-acquires `lock`.
  template <class Lock>
  void wait(Lock& lock) {
    detail::Waiter waiter;
    wait_lock_.lock();
    // Notifiers take wait_lock_, so none can slip between this unlock and the
    // park below.
    lock.unlock();
    waiters_.Park(&waiter, wait_lock_);
    lock.lock();
  }

  template <class Lock, class Predicate>
  void wait(Lock& lock, Predicate pred) {
    while (!pred()) wait(lock);
  }

  // Waits until notified or `deadline` (any clock) has passed. Returns
  // std::cv_status::timeout if it returned because of the deadline.
  template <class Lock, class Clock, class Duration>
  std::cv_status wait_until(Lock& lock,
                            const std::chrono::time_point<Clock, Duration>& deadline) {
    const detail::SteadyTime steady = detail::ToSteadyDeadline(deadline);
    detail::Waiter waiter;
    wait_lock_.lock();
    lock.unlock();
    const bool woken = waiters_.ParkUntil(&waiter, wait_lock_, steady);
    lock.lock();
    return woken ? std::cv_status::no_timeout : std::cv_status::timeout;
  }

  // Waits until `pred` holds or the deadline passes; returns pred() then.
  template <class Lock, class Clock, class Duration, class Predicate>
  bool wait_until(Lock& lock, const std::chrono::time_point<Clock, Duration>& deadline,
                  Predicate pred) {
    while (!pred()) {
      if (wait_until(lock, deadline) == std::cv_status::timeout) return pred();
    }
    return true;
  }

  template <class Lock, class Rep, class Period>
  std::cv_status wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& timeout) {
    return wait_until(lock, detail::DeadlineAfter(timeout));
  }

  template <class Lock, class Rep, class Period, class Predicate>
  bool wait_for(Lock& lock, const std::chrono::duration<Rep, Period>& timeout,
                Predicate pred) {
    return wait_until(lock, detail::DeadlineAfter(timeout), std::move(pred));
  }

  // Wakes the longest-waiting waiter, if any.
  void notify_one();
  // Wakes every waiter.
  void notify_all();

 private:
  detail::Spinlock wait_lock_;
  detail::WaitQueue waiters_ WEFT_GUARDED_BY(wait_lock_);
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_CONDITION_VARIABLE_H_
