#include "runtime/this_fiber.h"

#include <thread>

#include "runtime/detail/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"

namespace weft::this_fiber {

void Yield() {
  detail::FiberWorker* worker = detail::CurrentWorker();
  if (worker == nullptr || worker->current_fiber() == nullptr) {
    std::this_thread::yield();
    return;
  }
  worker->YieldCurrent();
}

std::uint64_t GetId() {
  detail::FiberWorker* worker = detail::CurrentWorker();
  if (worker == nullptr || worker->current_fiber() == nullptr) return 0;
  return worker->current_fiber()->id;
}

}  // namespace weft::this_fiber
