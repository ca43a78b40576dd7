#include "runtime/scheduling_group/fiber_entity.h"

#include <atomic>
#include <cstdint>

#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/runtime_state.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft::detail {

void DropFiberReference(FiberEntity* fiber) {
  // A sole owner needs no read-modify-write: no one else can touch the count.
  if (fiber->references.load(std::memory_order_acquire) != 1 &&
      fiber->references.fetch_sub(1, std::memory_order_acq_rel) != 1) {
    return;
  }
  const Stack stack = fiber->stack;
  fiber->~FiberEntity();
  RecordOf(stack)->fiber.store(nullptr, std::memory_order_relaxed);
  FreeStack(stack);
}

void ReadyFiber(FiberEntity* fiber) {
  fiber->state.store(FiberState::kReady, std::memory_order_relaxed);
  FiberWorker* worker = CurrentWorker();
  if (InFiber(worker) && worker->group() == fiber->group && !worker->chaos()) {
    worker->ReadyLocal(fiber);
  } else if (worker != nullptr) {
    fiber->group->Push(fiber);  // a worker thread: TerminateRuntime joins it first
  } else {
    std::atomic<std::int64_t>& outside_wakes = State().outside_wakes;
    outside_wakes.fetch_add(1, std::memory_order_seq_cst);
    fiber->group->Push(fiber);
    outside_wakes.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace weft::detail
