#include "runtime/this_fiber.h"

#include <thread>

#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft::detail {

void SleepUntilSteady(SteadyTime deadline) {
  if (deadline <= std::chrono::steady_clock::now()) return;
  FiberWorker* worker = CurrentWorker();
  if (!detail::InFiber(worker)) {
    std::this_thread::sleep_until(deadline);
    return;
  }
  // A wait that nothing but the deadline ends.
  Spinlock lock;
  WaitQueue queue;
  Waiter waiter;
  lock.lock();
  queue.ParkUntil(&waiter, lock, deadline);
}

}  // namespace weft::detail

namespace weft::this_fiber {

void Yield() {
  detail::FiberWorker* worker = detail::CurrentWorker();
  if (!detail::InFiber(worker)) {
    std::this_thread::yield();
    return;
  }
  worker->YieldCurrent();
}

std::uint64_t GetId() {
  detail::FiberWorker* worker = detail::CurrentWorker();
  if (!detail::InFiber(worker)) return 0;
  return worker->current_fiber()->id;
}

}  // namespace weft::this_fiber
