// A one-shot event: Set() once, and every Wait() (before or after) returns.
//
// Thread-safe; fibers and plain threads in any mix. Everything before Set()
// happens-before the return of a Wait() that it releases. The event may be
// destroyed as soon as a Wait() returns. Setting twice is harmless. Destroying
// an event that still has waiters aborts with a message.
#ifndef WEFT_RUNTIME_SYNC_FIBER_EVENT_H_
#define WEFT_RUNTIME_SYNC_FIBER_EVENT_H_

#include <chrono>

#include "runtime/sync/fiber_latch.h"

namespace weft {

class FiberEvent {
 public:
  void Set() { latch_.ReleaseAll(); }
  void Wait() { latch_.Wait(); }
  // Wait() that gives up after `timeout`; returns whether the event was set.
  template <class Rep, class Period>
  bool WaitFor(const std::chrono::duration<Rep, Period>& timeout) {
    return latch_.WaitFor(timeout);
  }

 private:
  FiberLatch latch_{1};
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_EVENT_H_
