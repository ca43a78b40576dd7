#include "runtime/sync/fiber_barrier.h"

#include "runtime/detail/check.h"

namespace weft {

FiberBarrier::FiberBarrier(std::ptrdiff_t parties) : parties_(parties) {
  WEFT_CHECK(parties >= 1) << "FiberBarrier needs at least one party, got " << parties;
}

FiberBarrier::~FiberBarrier() {
  WEFT_CHECK(waiters_.EmptyUnder(lock_))
      << "a FiberBarrier was destroyed while fibers or threads wait on it";
}

void FiberBarrier::ArriveAndWait() {
  lock_.lock();
  if (++arrived_ < parties_) {
    detail::Waiter waiter;
    waiters_.Park(&waiter, lock_);
    return;
  }
  arrived_ = 0;  // the next phase starts now
  detail::Waiter* released = waiters_.PopAll();
  lock_.unlock();
  detail::WaitQueue::WakeAll(released);
}

}  // namespace weft
