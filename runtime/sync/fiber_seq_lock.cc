#include "runtime/sync/fiber_seq_lock.h"

#include "runtime/detail/spinlock.h"
#include "runtime/this_fiber.h"

namespace weft {

void FiberSeqLock::WaitForWriter() {
  // A writer holds the sequence odd for a few stores. A fiber lets the writer
  // (possibly on this worker) finish; a thread spins a little, then yields.
  if (this_fiber::GetId() != 0) {
    this_fiber::Yield();
    return;
  }
  for (int i = 0; i < 64; ++i) detail::CpuRelax();
  this_fiber::Yield();  // std::this_thread::yield() on a plain thread
}

}  // namespace weft
