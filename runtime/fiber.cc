#include "runtime/fiber.h"

#include <cstddef>
#include <utility>

#include "runtime/detail/check.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/runtime_state.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft {
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
  detail::FiberEntity* fiber = std::exchange(fiber_, nullptr);
  detail::FiberWorker* worker = detail::CurrentWorker();
  WEFT_CHECK(worker == nullptr || worker->current_fiber() != fiber)
      << "a fiber called Join() on its own Fiber object; it would wait forever";
  if (!fiber->exited.load(std::memory_order_acquire)) {
    fiber->exit_lock.lock();
    if (fiber->exited.load(std::memory_order_relaxed)) {
      fiber->exit_lock.unlock();
    } else {
      detail::Waiter waiter;
      fiber->joiners.Park(&waiter, fiber->exit_lock);
    }
  }
  detail::DropFiberReference(fiber);
}

void Fiber::Detach() {
  WEFT_CHECK(fiber_ != nullptr)
      << "Fiber::Detach() on a Fiber that is not joinable (default-constructed, moved "
         "from, already joined or detached)";
  detail::DropFiberReference(std::exchange(fiber_, nullptr));
}

}  // namespace weft
