// A reusable barrier: `parties` fibers or threads meet, then all go on, phase
// after phase (like std::barrier without a completion function).
//
// Thread-safe; fibers and plain threads in any mix. Everything a party did
// before ArriveAndWait() happens-before every party's return from that phase's
// ArriveAndWait(). The last party to arrive starts the next phase at once, so
// parties may arrive for phase k + 1 while slower ones still return from k.
//
// Misuse aborts with a message: fewer than one party, destroying a barrier that
// still has waiters.
#ifndef WEFT_RUNTIME_SYNC_FIBER_BARRIER_H_
#define WEFT_RUNTIME_SYNC_FIBER_BARRIER_H_

#include <cstddef>

#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft {

class FiberBarrier {
 public:
  explicit FiberBarrier(std::ptrdiff_t parties);
  ~FiberBarrier();
  FiberBarrier(const FiberBarrier&) = delete;
  FiberBarrier& operator=(const FiberBarrier&) = delete;

  // Arrives and waits until all parties of this phase have arrived.
  void ArriveAndWait();

 private:
  const std::ptrdiff_t parties_;
  detail::Spinlock lock_;
  std::ptrdiff_t arrived_ WEFT_GUARDED_BY(lock_) = 0;
  detail::WaitQueue waiters_ WEFT_GUARDED_BY(lock_);
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_BARRIER_H_
