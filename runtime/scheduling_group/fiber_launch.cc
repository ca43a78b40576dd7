#include "runtime/scheduling_group/fiber_launch.h"

#include <errno.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

#include "runtime/detail/check.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/runtime_state.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft::detail {
namespace {

constexpr std::size_t kMinStackSize = 16 * 1024;
constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;
// Room the first frames need below the control block and the callable.
constexpr std::size_t kMinFrameSpace = 8 * 1024;

// Fibers started by plain threads hold a launch ticket between AllocateFiber and
// LaunchFiber / DiscardFiber (see runtime_state.h).
void ReleaseTicketIfHeld(bool held) {
  if (held) ReleaseLaunchTicket();
}

}  // namespace

FiberEntity* AllocateFiber(const FiberAttributes& attrs, std::size_t size,
                           std::size_t align, int* error) {
  std::size_t stack_size = 0;
  if (attrs.stack_size != 0) {
    if (attrs.stack_size < kMinStackSize || attrs.stack_size > kMaxStackSize) {
      throw std::invalid_argument(
          "weft: FiberAttributes::stack_size is " + std::to_string(attrs.stack_size) +
          " bytes; it must be 0 (the runtime's default) or 16384..1073741824");
    }
    stack_size = RoundUpToPages(attrs.stack_size);
  }
  FiberWorker* worker = CurrentWorker();
  const bool ticket = !InFiber(worker);
  if (ticket && !AcquireLaunchTicket()) {
    *error = EPERM;
    return nullptr;
  }
  SchedulingGroup* group;
  try {
    group = GroupForNewFiber(attrs.scheduling_group, InFiber(worker) ? worker : nullptr);
  } catch (...) {
    ReleaseTicketIfHeld(ticket);
    throw;
  }
  FiberEntity* fiber = CreateFiberEntity(group, stack_size, size, align, error);
  if (fiber == nullptr) {
    ReleaseTicketIfHeld(ticket);
    return nullptr;
  }
  fiber->scheduling_group_local = attrs.scheduling_group_local;
  fiber->holds_launch_ticket = ticket;
  return fiber;
}

FiberEntity* CreateFiberEntity(SchedulingGroup* group, std::size_t stack_size,
                               std::size_t size, std::size_t align, int* error) {
  Stack stack;
  if (!AllocateStack(stack_size, &stack, error)) return nullptr;
  char* top = StackTop(stack);
  char* block = AlignDown(top - sizeof(FiberEntity), 64);
  char* callable = AlignDown(block - size, std::max(align, alignof(std::max_align_t)));
  WEFT_CHECK(callable - stack.low >= static_cast<std::ptrdiff_t>(kMinFrameSpace))
      << "a fiber's callable of " << size << " bytes does not fit its " << stack.size
      << "-byte stack; capture less by value or raise FiberAttributes::stack_size";
  auto* fiber = new (block) FiberEntity;
  fiber->stack = stack;
  fiber->group = group;
  fiber->id = NextFiberId();
  fiber->callable = callable;
  RecordOf(stack)->fiber.store(fiber, std::memory_order_release);
  MakeContext(&fiber->context, stack.low, AlignDown(callable, 64), &FiberMain);
  return fiber;
}

void* FiberCallableStorage(FiberEntity* fiber) { return fiber->callable; }

void SetFiberCallable(FiberEntity* fiber, void (*run)(void*)) { fiber->run = run; }

void DiscardFiber(FiberEntity* fiber) {
  const bool ticket = fiber->holds_launch_ticket;
  DestroyContext(&fiber->context);
  DropFiberReference(fiber);
  ReleaseTicketIfHeld(ticket);
}

void LaunchFiber(FiberEntity* fiber, const FiberAttributes& attrs, bool joinable) {
  const bool ticket = fiber->holds_launch_ticket;
  fiber->references.store(joinable ? 2 : 1, std::memory_order_relaxed);
  FiberWorker* worker = CurrentWorker();
  if (InFiber(worker) && worker->group() == fiber->group) {
    worker->CountCreated();
    if (attrs.launch_policy == Launch::kDispatch) {
      worker->DispatchTo(fiber);
    } else if (WEFT_UNLIKELY(worker->chaos())) {
      // Chaos mode: the child starts on a worker other than its parent's.
      fiber->last_worker = worker;
      fiber->group->Push(fiber);
    } else {
      worker->ReadyLocal(fiber);
    }
  } else {
    fiber->group->CountExternalCreated();
    fiber->group->Push(fiber);
  }
  // Not `fiber`: it may have run and gone by now.
  ReleaseTicketIfHeld(ticket);
}

std::uint64_t FiberIdOf(const FiberEntity* fiber) { return fiber->id; }

void ThrowFiberCreationError(int error) {
  if (error == EPERM) {
    throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                            "weft::Fiber: the runtime is not running; call "
                            "weft::StartRuntime() or create a weft::Runtime first");
  }
  throw std::system_error(
      error, std::generic_category(),
      "weft::Fiber: cannot map a fiber stack. Each stack with a PROT_NONE guard page "
      "costs two memory mappings: raise vm.max_map_count (sysctl -w "
      "vm.max_map_count=...), keep fewer fibers alive, or disable guard pages with "
      "--weft_fiber_stack_enable_guard_page=false (RuntimeOptions::stack_guard_page)");
}

void AbortJoinableFiberDestroyed() {
  FatalError(
      "a weft::Fiber was destroyed or assigned to while still joinable; call Join() or "
      "Detach() first (as with std::thread)");
}

}  // namespace weft::detail
