#include "runtime/sync/fiber_semaphore.h"

#include "runtime/detail/check.h"

namespace weft {
namespace {

using Clock = std::chrono::steady_clock;

// A waiter first in line this long is handed the next unit released.
constexpr std::chrono::milliseconds kStarvationThreshold{1};

struct SemaphoreWaiter : detail::Waiter {
  // When it became first in line; the epoch until then. Kept when a woken
  // waiter that lost the race parks again in front.
  Clock::time_point first_since{};
  bool handed_over = false;  // set by the releaser, under the lock
};

SemaphoreWaiter* AsSemaphoreWaiter(detail::Waiter* waiter) {
  return static_cast<SemaphoreWaiter*>(waiter);
}

}  // namespace

FiberSemaphore::FiberSemaphore(std::ptrdiff_t initial) : count_(initial) {
  WEFT_CHECK(initial >= 0) << "FiberSemaphore constructed with a negative count ("
                           << initial << ")";
}

FiberSemaphore::~FiberSemaphore() {
  WEFT_CHECK(waiters_.EmptyUnder(lock_))
      << "a FiberSemaphore was destroyed while fibers or threads wait on it";
}

void FiberSemaphore::TakeFrontLocked(detail::Waiter*** list_tail) {
  detail::Waiter* front = waiters_.PopFront();
  **list_tail = front;  // PopFront cleared its link
  *list_tail = &front->next;
  if (auto* next = AsSemaphoreWaiter(waiters_.front());
      next != nullptr && next->first_since == Clock::time_point{}) {
    next->first_since = Clock::now();
  }
}

bool FiberSemaphore::AcquireSlow(detail::SteadyTime deadline) {
  SemaphoreWaiter waiter;
  auto where = detail::WaitQueue::Where::kBack;
  for (;;) {
    lock_.lock();
    // Units appear only under lock_ once someone waits, so this check is final
    // for this round.
    if (TryAcquire()) {
      lock_.unlock();
      return true;
    }
    if (waiters_.empty() && waiter.first_since == Clock::time_point{}) {
      waiter.first_since = Clock::now();
    }
    if (!waiters_.ParkUntil(&waiter, lock_, deadline, where)) return false;
    if (waiter.handed_over) return true;
    // Woken for a free unit, which a running fiber may have taken first.
    if (TryAcquire()) return true;
    where = detail::WaitQueue::Where::kFront;
  }
}

void FiberSemaphore::Release(std::ptrdiff_t n) {
  WEFT_CHECK(n >= 0) << "FiberSemaphore::Release(" << n << "): n must not be negative";
  detail::Waiter* woken = nullptr;
  detail::Waiter** tail = &woken;
  std::ptrdiff_t freed = 0;
  lock_.lock();
  for (; n > 0; --n) {
    auto* front = AsSemaphoreWaiter(waiters_.front());
    if (front == nullptr) {
      freed += n;
      break;
    }
    if (front->first_since != Clock::time_point{} &&
        Clock::now() - front->first_since >= kStarvationThreshold) {
      front->handed_over = true;  // this unit is its own
    } else {
      ++freed;  // free for whoever comes first; the front waiter is woken for it
    }
    TakeFrontLocked(&tail);
  }
  if (freed > 0) count_.fetch_add(freed, std::memory_order_release);
  lock_.unlock();
  detail::WaitQueue::WakeAll(woken);
}

}  // namespace weft
