#include "runtime/sync/fiber_condition_variable.h"

#include "runtime/detail/check.h"

namespace weft {

FiberConditionVariable::~FiberConditionVariable() {
  // Under the lock: a notifier may still be unlocking it.
  wait_lock_.lock();
  const bool idle = waiters_.empty();
  wait_lock_.unlock();
  WEFT_CHECK(idle)
      << "a FiberConditionVariable was destroyed while fibers or threads wait on it";
}

void FiberConditionVariable::notify_one() {
  wait_lock_.lock();
  detail::Waiter* waiter = waiters_.PopFront();
  wait_lock_.unlock();
  if (waiter != nullptr) detail::WaitQueue::Wake(waiter);
}

void FiberConditionVariable::notify_all() {
  wait_lock_.lock();
  detail::Waiter* waiters = waiters_.PopAll();
  wait_lock_.unlock();
  detail::WaitQueue::WakeAll(waiters);
}

}  // namespace weft
