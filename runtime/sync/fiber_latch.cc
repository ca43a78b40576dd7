#include "runtime/detail/mutex.h"
#include "runtime/sync/fiber_latch.h"

#include <mutex>

#include "runtime/detail/check.h"

namespace weft {

FiberLatch::FiberLatch(std::ptrdiff_t count) : count_(count) {
  WEFT_CHECK(count >= 0) << "FiberLatch constructed with a negative count (" << count
                         << ")";
}

FiberLatch::~FiberLatch() {
  WEFT_CHECK(waiters_.EmptyUnder(lock_))
      << "a FiberLatch was destroyed while fibers or threads wait on it";
}

void FiberLatch::CountDown(std::ptrdiff_t n) {
  WEFT_CHECK(n >= 0) << "FiberLatch::CountDown(" << n << "): n must not be negative";
  if (n == 0) return;
  detail::Waiter* released;
  {
    detail::LockGuard<detail::Spinlock> guard(lock_);
    const std::ptrdiff_t left = count_.load(std::memory_order_relaxed) - n;
    WEFT_CHECK(left >= 0) << "FiberLatch::CountDown(" << n
                          << ") below zero (the count was " << left + n << ")";
    count_.store(left, std::memory_order_release);
    if (left != 0) return;
    released = waiters_.PopAll();
  }
  // The latch may be gone from here on: only the waiters are touched.
  detail::WaitQueue::WakeAll(released);
}

void FiberLatch::ReleaseAll() {
  detail::Waiter* released;
  {
    detail::LockGuard<detail::Spinlock> guard(lock_);
    if (count_.load(std::memory_order_relaxed) == 0) return;
    count_.store(0, std::memory_order_release);
    released = waiters_.PopAll();
  }
  detail::WaitQueue::WakeAll(released);
}

bool FiberLatch::TryWait() const {
  if (count_.load(std::memory_order_acquire) != 0) return false;
  // The count-down that reached zero may still hold the lock; once we have had
  // it, that call no longer touches the latch, so a caller may destroy it.
  lock_.lock();
  lock_.unlock();
  return true;
}

void FiberLatch::Wait() {
  if (TryWait()) return;
  lock_.lock();
  if (count_.load(std::memory_order_relaxed) == 0) {
    lock_.unlock();
    return;
  }
  detail::Waiter waiter;
  waiters_.Park(&waiter, lock_);
}

bool FiberLatch::WaitUntilSteady(detail::SteadyTime deadline) {
  if (TryWait()) return true;
  lock_.lock();
  if (count_.load(std::memory_order_relaxed) == 0) {
    lock_.unlock();
    return true;
  }
  detail::Waiter waiter;
  return waiters_.ParkUntil(&waiter, lock_, deadline);
}

void FiberLatch::ArriveAndWait(std::ptrdiff_t n) {
  CountDown(n);
  Wait();
}

}  // namespace weft
