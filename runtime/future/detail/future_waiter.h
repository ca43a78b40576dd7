// The one-shot waiter behind BlockingGet and BlockingTryGet
// (runtime/future/blocking_get.h). Internal.
#ifndef WEFT_RUNTIME_FUTURE_DETAIL_FUTURE_WAITER_H_
#define WEFT_RUNTIME_FUTURE_DETAIL_FUTURE_WAITER_H_

#include "runtime/detail/deadline.h"
#include "runtime/detail/spinlock.h"
#include "runtime/future/detail/shared_state.h"
#include "runtime/scheduling_group/wait_queue.h"
#include "runtime/thread_annotations.h"

namespace weft::detail {

// A continuation that wakes the one fiber or thread waiting for a state: a
// one-shot event on the wait-queue core, one lock round trip on each side. Not a
// FiberLatch: its count and its destructor's waiter check cost about 8 ns per
// Async + BlockingGet round trip (118 vs 127 ns on one worker, medians of 5).
class FutureWaiter final : public Continuation {
 public:
  Continuation* Fire() noexcept override {
    lock_.lock();
    fired_ = true;
    Waiter* waiter = queue_.PopFront();
    lock_.unlock();
    // From here on only the parked waiter is touched, and this object may be
    // gone (its owner returns as soon as it sees fired_ or is woken).
    if (waiter != nullptr) WaitQueue::Wake(waiter);
    return nullptr;
  }

  // Waits until `state` is ready.
  void Wait(SharedStateBase& state) {
    if (state.Install(this) == nullptr) WaitFired();
  }

  // Waits until `state` is ready or `deadline` passes; returns whether it is
  // ready. On false, this waiter is no longer installed.
  bool WaitUntil(SharedStateBase& state, SteadyTime deadline) {
    if (state.IsReady() || state.Install(this) != nullptr) return true;
    lock_.lock();
    if (fired_) {
      lock_.unlock();
      return true;
    }
    Waiter waiter;
    if (queue_.ParkUntil(&waiter, lock_, deadline)) return true;
    if (state.Uninstall()) return false;
    // The producer published as we gave up: it fires us imminently, and we must
    // not leave before it has.
    WaitFired();
    return true;
  }

 private:
  void WaitFired() {
    lock_.lock();
    if (fired_) {
      lock_.unlock();
      return;
    }
    Waiter waiter;
    queue_.Park(&waiter, lock_);
  }

  Spinlock lock_;
  bool fired_ WEFT_GUARDED_BY(lock_) = false;
  WaitQueue queue_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_FUTURE_DETAIL_FUTURE_WAITER_H_
