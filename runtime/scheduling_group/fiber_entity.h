// The control block of one fiber. It lives in the top page of the fiber's own
// stack, next to the stored callable and the first frames, so that a new fiber
// touches one page and needs no heap allocation. (The stack's StackRecord,
// stack_pool.h, lives off the stack.)
//
//   high addresses  +----------------------------+ stack.low + stack.size
//                   | FiberEntity                |
//                   | callable (any size)        |
//                   | first frames ...           |  <- initial stack pointer
//                   |        grows down          |
//                   +----------------------------+ stack.low
//                   | guard page (no access)     |
//   low addresses   +----------------------------+
//
// Life cycle: allocated (AllocateFiber) -> ready (in a run queue or a worker's
// local run stack) -> running -> parked (in a WaitQueue) -> ready -> ... -> exited.
// The control block is released when the last reference is dropped: one belongs
// to the running fiber and is dropped by the context that runs after its last
// switch, one to a joinable Fiber handle and is dropped by Join() or Detach().
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_ENTITY_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_ENTITY_H_

#include <atomic>
#include <chrono>
#include <cstdint>

#include "runtime/detail/context.h"
#include "runtime/detail/spinlock.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft::detail {

class SchedulingGroup;
class FiberWorker;
class LocalTable;

// What a fiber is doing, for debuggers (debug/weft.py) and the hibernator.
// Written by whoever owns the fiber at the moment: the fiber as it yields or
// exits, the context that runs after a parking fiber's switch (so kParked means
// its registers are saved), the worker that switches to it, the waker that
// readies it.
enum class FiberState : std::uint8_t {
  kReady = 1,    // new, yielded or woken: in a run queue or a local run stack
  kRunning = 2,  // on a worker
  kParked = 3,   // waiting in a wait queue (a primitive, a Join, a sleep)
  kExited = 4,   // its callable returned; its last switch is under way
};

// What every switch and wake-up touches comes first, within the first cache line
// (in builds without sanitizers).
struct FiberEntity {
  MachineContext context;
  SchedulingGroup* group = nullptr;
  // The worker that ran it last, set as it is switched to.
  FiberWorker* last_worker = nullptr;
  std::uint64_t id = 0;
  std::atomic<FiberState> state{FiberState::kReady};
  // Link in a scheduling group's overflow list while the run queue is full.
  FiberEntity* next = nullptr;
  // Chaos mode: since when last_worker has been passing the fiber back to the
  // queue for another worker to take; the clock's epoch when it is not.
  std::chrono::steady_clock::time_point chaos_passed_back_since{};
  Stack stack;
  void (*run)(void*) = nullptr;  // invokes and destroys the callable
  void* callable = nullptr;
  std::atomic<std::uint32_t> references{1};
  bool scheduling_group_local = false;
  // Started by a plain thread that holds a launch ticket until it is queued.
  bool holds_launch_ticket = false;
  // The fiber's FiberLocal values; created on first use.
  LocalTable* locals = nullptr;
  // How many times it has parked, counted with kParked by the same writer: the
  // hibernator tells one long park from two short ones by it.
  std::atomic<std::uint32_t> parks{0};

  // Set once the callable has returned; joiners park in `joiners` until then.
  std::atomic<bool> exited{false};
  Spinlock exit_lock;
  WaitQueue joiners WEFT_GUARDED_BY(exit_lock);
};

// Drops one reference; the last one returns the stack to the pool.
void DropFiberReference(FiberEntity* fiber);

// Makes a suspended or new fiber runnable: on the calling worker's local run stack
// when called from a fiber of the same group, otherwise in its group's run queue.
void ReadyFiber(FiberEntity* fiber);

// Entry point of every fiber context.
void FiberMain(SwitchArrival arrival);

// Destroys the FiberLocal values of `fiber`, the calling fiber, whose callable
// has returned.
void DestroyFiberLocals(FiberEntity* fiber);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_ENTITY_H_
