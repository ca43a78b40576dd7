#include "runtime/sync/fiber_semaphore.h"

#include "runtime/detail/check.h"

namespace weft {

FiberSemaphore::FiberSemaphore(std::ptrdiff_t initial) : count_(initial) {
  WEFT_CHECK(initial >= 0) << "FiberSemaphore constructed with a negative count ("
                           << initial << ")";
}

FiberSemaphore::~FiberSemaphore() {
  WEFT_CHECK(waiters_.EmptyUnder(lock_))
      << "a FiberSemaphore was destroyed while fibers or threads wait on it";
}

bool FiberSemaphore::TryAcquire() {
  std::ptrdiff_t count = count_.load(std::memory_order_relaxed);
  while (count > 0) {
    if (count_.compare_exchange_weak(count, count - 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void FiberSemaphore::Acquire() {
  if (TryAcquire()) return;
  lock_.lock();
  // Units only appear under lock_ once someone waits, so this check is final.
  if (TryAcquire()) {
    lock_.unlock();
    return;
  }
  detail::Waiter waiter;
  waiters_.Park(&waiter, lock_);  // woken with a unit handed over
}

bool FiberSemaphore::AcquireUntil(detail::SteadyTime deadline) {
  lock_.lock();
  if (TryAcquire()) {
    lock_.unlock();
    return true;
  }
  detail::Waiter waiter;
  return waiters_.ParkUntil(&waiter, lock_, deadline);
}

void FiberSemaphore::Release(std::ptrdiff_t n) {
  WEFT_CHECK(n >= 0) << "FiberSemaphore::Release(" << n << "): n must not be negative";
  detail::Waiter* woken = nullptr;
  detail::Waiter** tail = &woken;
  lock_.lock();
  for (; n > 0; --n) {
    detail::Waiter* waiter = waiters_.PopFront();
    if (waiter == nullptr) break;
    *tail = waiter;  // PopFront cleared its link
    tail = &waiter->next;
  }
  if (n > 0) count_.fetch_add(n, std::memory_order_release);
  lock_.unlock();
  detail::WaitQueue::WakeAll(woken);
}

}  // namespace weft
