#include "runtime/fiber.h"

#include <errno.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <system_error>

#include "runtime/detail/check.h"
#include "runtime/detail/fiber_entity.h"
#include "runtime/detail/runtime_state.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft {
namespace detail {
namespace {

constexpr std::size_t kMinStackSize = 16 * 1024;
constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;
// Room the first frames need below the control block and the callable.
constexpr std::size_t kMinFrameSpace = 8 * 1024;

char* AlignDown(char* p, std::size_t alignment) {
  return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~(alignment - 1));
}

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
  Stack stack;
  if (!AllocateStack(stack_size, &stack, error)) {
    ReleaseTicketIfHeld(ticket);
    return nullptr;
  }
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
  fiber->scheduling_group_local = attrs.scheduling_group_local;
  fiber->holds_launch_ticket = ticket;
  RecordOf(stack)->fiber = fiber;
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

void JoinFiber(FiberEntity* fiber) {
  FiberWorker* worker = CurrentWorker();
  WEFT_CHECK(worker == nullptr || worker->current_fiber() != fiber)
      << "a fiber called Join() on its own Fiber object; it would wait forever";
  if (!fiber->exited.load(std::memory_order_acquire)) {
    fiber->exit_lock.lock();
    if (fiber->exited.load(std::memory_order_relaxed)) {
      fiber->exit_lock.unlock();
    } else {
      Waiter waiter;
      fiber->joiners.Park(&waiter, fiber->exit_lock);
    }
  }
  DropFiberReference(fiber);
}

void DetachFiber(FiberEntity* fiber) { DropFiberReference(fiber); }

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

}  // namespace detail

bool BatchStartFiberDetached(std::vector<std::function<void()>> fns,
                             const FiberAttributes& attrs) {
  std::vector<detail::FiberEntity*> fibers;
  fibers.reserve(fns.size());
  int error = 0;
  for (auto& fn : fns) {
    detail::FiberEntity* fiber = detail::PrepareFiber(attrs, std::move(fn), &error);
    if (fiber == nullptr) {
      for (detail::FiberEntity* prepared : fibers) detail::DiscardFiber(prepared);
      return false;
    }
    fibers.push_back(fiber);
  }
  if (fibers.empty()) return true;
  // One group for the whole batch: with several groups, each fiber was given its
  // own round-robin pick.
  detail::SchedulingGroup* group = fibers.front()->group;
  for (detail::FiberEntity* fiber : fibers) fiber->group = group;
  detail::FiberWorker* worker = detail::CurrentWorker();
  const bool counted_by_worker = detail::InFiber(worker) && worker->group() == group;
  for (std::size_t i = 0; i < fibers.size(); ++i) {
    if (counted_by_worker) {
      worker->CountCreated();
      if (worker->chaos()) fibers[i]->last_worker = worker;  // see LaunchFiber
    } else {
      group->CountExternalCreated();
    }
  }
  // Tickets are released after the push, but the fibers may be gone by then.
  std::size_t tickets = 0;
  for (detail::FiberEntity* fiber : fibers) tickets += fiber->holds_launch_ticket ? 1 : 0;
  group->PushBatch(fibers.data(), fibers.size());
  for (std::size_t i = 0; i < tickets; ++i) detail::ReleaseLaunchTicket();
  return true;
}

void Fiber::Join() {
  WEFT_CHECK(fiber_ != nullptr)
      << "Fiber::Join() on a Fiber that is not joinable (default-constructed, moved "
         "from, already joined or detached)";
  detail::JoinFiber(std::exchange(fiber_, nullptr));
}

void Fiber::Detach() {
  WEFT_CHECK(fiber_ != nullptr)
      << "Fiber::Detach() on a Fiber that is not joinable (default-constructed, moved "
         "from, already joined or detached)";
  detail::DetachFiber(std::exchange(fiber_, nullptr));
}

}  // namespace weft
