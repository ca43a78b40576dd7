#include "runtime/sync/fiber_seq_lock.h"

#include <thread>

#include "runtime/detail/spinlock.h"
#include "runtime/this_fiber.h"

namespace weft {

void FiberSeqLock::WaitForWriter(unsigned waits) {
  // A writer holds the sequence odd for a few stores. A fiber lets the writer
  // (possibly on this worker) finish; a thread spins a little first. A writer
  // that takes long was probably preempted, perhaps by us on its CPU: then
  // the worker or thread gives its CPU away too (a fiber's Yield() returns at
  // once when no other fiber is ready).
  const bool in_fiber = this_fiber::GetId() != 0;
  if (in_fiber) {
    this_fiber::Yield();
  } else {
    for (int i = 0; i < 64; ++i) detail::CpuRelax();
  }
  if (!in_fiber || waits >= 16) std::this_thread::yield();
}

}  // namespace weft
