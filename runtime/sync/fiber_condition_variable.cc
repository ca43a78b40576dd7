#include "runtime/sync/fiber_condition_variable.h"

#include "runtime/detail/check.h"

namespace weft {

FiberConditionVariable::~FiberConditionVariable() {
  WEFT_CHECK(waiters_.EmptyUnder(wait_lock_))
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
