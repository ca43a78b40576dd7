// Creating and launching fibers: the part of runtime/fiber.h that the
// scheduler core provides. A fiber's control block and callable live at the
// top of its stack (fiber_entity.h); these functions reserve the stack, place
// the callable, and make the fiber runnable in its scheduling group. Internal:
// use runtime/fiber.h.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_LAUNCH_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_LAUNCH_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>

#include "runtime/fiber_attributes.h"

namespace weft::detail {

struct FiberEntity;
class SchedulingGroup;

// Reserves a stack whose control block can hold a callable of `size` bytes
// aligned to `align`. Returns nullptr and sets *error (an errno value; EPERM when
// the runtime is not running) when no fiber can be created.
FiberEntity* AllocateFiber(const FiberAttributes& attrs, std::size_t size,
                           std::size_t align, int* error);
// The core of AllocateFiber, for a given group and without the runtime's launch
// tickets: a stack of `stack_size` bytes (0: the configured default; otherwise
// already rounded to pages) with a control block for `group` and room for the
// callable. Returns nullptr and sets *error when no stack can be mapped.
FiberEntity* CreateFiberEntity(SchedulingGroup* group, std::size_t stack_size,
                               std::size_t size, std::size_t align, int* error);
void* FiberCallableStorage(FiberEntity* fiber);
// `run` invokes the callable stored in FiberCallableStorage() and destroys it.
void SetFiberCallable(FiberEntity* fiber, void (*run)(void*));
// Returns an allocated fiber that was never launched.
void DiscardFiber(FiberEntity* fiber);
// Makes the fiber runnable. A joinable fiber keeps its control block until
// Fiber::Join() or Fiber::Detach() (runtime/fiber.cc) drops it.
void LaunchFiber(FiberEntity* fiber, const FiberAttributes& attrs, bool joinable);
std::uint64_t FiberIdOf(const FiberEntity* fiber);
[[noreturn]] void ThrowFiberCreationError(int error);
[[noreturn]] void AbortJoinableFiberDestroyed();

template <class Fn>
void RunAndDestroy(void* storage) {
  Fn* fn = static_cast<Fn*>(storage);
  struct Destroyer {
    Fn* fn;
    ~Destroyer() { fn->~Fn(); }
  } destroyer{fn};
  std::invoke(std::move(*fn));
}

// Constructs `f` in the storage of `fiber` (allocated for it, not launched);
// if that throws, discards the fiber and rethrows. Returns `fiber`.
template <class F>
FiberEntity* PlaceCallable(FiberEntity* fiber, F&& f) {
  using Fn = std::decay_t<F>;
  static_assert(std::is_invocable_v<Fn>,
                "a fiber's callable must be invocable with no arguments");
  try {
    ::new (FiberCallableStorage(fiber)) Fn(std::forward<F>(f));
  } catch (...) {
    DiscardFiber(fiber);
    throw;
  }
  SetFiberCallable(fiber, &RunAndDestroy<Fn>);
  return fiber;
}

// AllocateFiber and PlaceCallable: a fiber running `f`, ready to launch, or
// nullptr (with *error) when none can be created.
template <class F>
FiberEntity* PrepareFiber(const FiberAttributes& attrs, F&& f, int* error) {
  using Fn = std::decay_t<F>;
  FiberEntity* fiber = AllocateFiber(attrs, sizeof(Fn), alignof(Fn), error);
  if (fiber == nullptr) return nullptr;
  return PlaceCallable(fiber, std::forward<F>(f));
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_LAUNCH_H_
