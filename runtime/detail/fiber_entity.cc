#include "runtime/detail/fiber_entity.h"

#include <cstddef>
#include <cstdint>

#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/scheduling_group.h"

// Where a debugger finds what it needs in the runtime's structures, so that
// tools/gdb/weft.py works on builds without debug information. Bump `version`
// whenever a field's meaning changes.
extern "C" {
struct WeftDebugLayout {
  std::uint32_t version;
  std::uint32_t record_next;   // StackRecord::next
  std::uint32_t record_fiber;  // StackRecord::fiber
  std::uint32_t fiber_id;      // FiberEntity::id (uint64)
  std::uint32_t fiber_state;   // FiberEntity::state (uint8, FiberState)
  std::uint32_t fiber_group;   // FiberEntity::group (SchedulingGroup*)
  std::uint32_t fiber_fctx;    // the saved Boost.Context fcontext_t of a suspended fiber
  std::uint32_t fiber_stack_low;   // Stack::low (char*)
  std::uint32_t fiber_stack_size;  // Stack::size (size_t)
  std::uint32_t group_index;       // SchedulingGroup's index (size_t)
};
extern const WeftDebugLayout weft_debug_layout;
__attribute__((used)) const WeftDebugLayout weft_debug_layout = {
    1,
    offsetof(weft::detail::StackRecord, next),
    offsetof(weft::detail::StackRecord, fiber),
    offsetof(weft::detail::FiberEntity, id),
    offsetof(weft::detail::FiberEntity, state),
    offsetof(weft::detail::FiberEntity, group),
    offsetof(weft::detail::FiberEntity, context) +
        offsetof(weft::detail::MachineContext, fctx),
    offsetof(weft::detail::FiberEntity, stack) + offsetof(weft::detail::Stack, low),
    offsetof(weft::detail::FiberEntity, stack) + offsetof(weft::detail::Stack, size),
    static_cast<std::uint32_t>(weft::detail::SchedulingGroup::IndexOffset()),
};
}

namespace weft::detail {

void DropFiberReference(FiberEntity* fiber) {
  // A sole owner needs no read-modify-write: no one else can touch the count.
  if (fiber->references.load(std::memory_order_acquire) != 1 &&
      fiber->references.fetch_sub(1, std::memory_order_acq_rel) != 1) {
    return;
  }
  const Stack stack = fiber->stack;
  fiber->~FiberEntity();
  RecordOf(stack)->fiber = nullptr;
  FreeStack(stack);
}

void ReadyFiber(FiberEntity* fiber) {
  fiber->state = FiberState::kReady;
  FiberWorker* worker = CurrentWorker();
  if (InFiber(worker) && worker->group() == fiber->group && !worker->chaos()) {
    worker->ReadyLocal(fiber);
  } else {
    fiber->group->Push(fiber);
  }
}

}  // namespace weft::detail
