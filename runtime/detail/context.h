// A machine context: the saved registers of a suspended execution (a fiber, or
// a worker thread's own stack) plus the bookkeeping the sanitizers need to follow
// stack switches. Built on Boost.Context's make_fcontext/jump_fcontext.
//
// Not thread-safe: a context is switched to by exactly one thread at a time,
// which the scheduler guarantees.
#ifndef WEFT_RUNTIME_DETAIL_CONTEXT_H_
#define WEFT_RUNTIME_DETAIL_CONTEXT_H_

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>

#include "runtime/detail/check.h"
#include "runtime/detail/sanitizers.h"

#ifdef WEFT_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace weft::detail {

struct SwitchArrival;
using ContextEntry = void (*)(SwitchArrival);

struct MachineContext {
  // Boost.Context fcontext_t: valid only while the context is suspended.
  void* fctx = nullptr;
  // Where a context made by MakeContext starts.
  ContextEntry entry = nullptr;
  // The sanitizers' state exists only in their builds, so that a fiber's
  // control block keeps what every switch touches in one cache line.
#ifdef WEFT_ASAN
  // Usable stack: [stack_low, stack_low + stack_size).
  const void* stack_low = nullptr;
  std::size_t stack_size = 0;
  // ASan's fake stack of this context while it is suspended.
  void* asan_fake_stack = nullptr;
#endif
#ifdef WEFT_TSAN
  // TSan's fiber handle for this context.
  void* tsan_fiber = nullptr;
#endif
};

// What arrives in a context when someone jumps to it: the switcher's context
// (whose fctx the receiver must store) and the switcher's payload.
struct SwitchArrival {
  MachineContext* from;
  void* data;
};

// Prepares `ctx` to start running `entry` on the stack [stack_low, stack_top).
// The first switch to it calls entry() with the arrival; entry must never return.
void MakeContext(MachineContext* ctx, void* stack_low, void* stack_top,
                 ContextEntry entry);

// Describes the calling thread's own stack in `ctx` so that fibers can switch
// back to it.
void AdoptThreadContext(MachineContext* ctx);

// Releases sanitizer state of a context that will never run again. Must not be
// called on the running context.
void DestroyContext(MachineContext* ctx);

namespace context_internal {

// Lives on the switcher's stack, which stays intact until the receiver has read it.
struct SwitchPacket {
  MachineContext* from;
  MachineContext* to;
  void* data;
};

// Sanitizer bookkeeping around a switch. Inline on purpose: ThreadSanitizer
// records function entries and exits on the current fiber, and a function that
// called __tsan_switch_to_fiber would record its exit on the fiber switched to.
inline void BeforeSwitch([[maybe_unused]] MachineContext* from,
                         [[maybe_unused]] MachineContext* to,
                         [[maybe_unused]] bool from_exits) {
#ifdef WEFT_ASAN
  __sanitizer_start_switch_fiber(from_exits ? nullptr : &from->asan_fake_stack,
                                 to->stack_low, to->stack_size);
#endif
#ifdef WEFT_TSAN
  __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
}

inline void AfterSwitch([[maybe_unused]] MachineContext* self) {
#ifdef WEFT_ASAN
  __sanitizer_finish_switch_fiber(self->asan_fake_stack, nullptr, nullptr);
#endif
}

}  // namespace context_internal

// Suspends `from` (the running context) and resumes `to`, passing `data`.
// Returns when some context switches back to `from`, with the switcher's context
// (whose fctx has been stored) and payload; the caller acts on arrival.data.
// With `from_exits`, `from` will never be resumed (sanitizers drop its state).
//
// Always inlined, so that jump_fcontext is called from the scheduler function
// itself: jump_fcontext is entered by `call` but leaves by `jmp`, which leaves
// the CPU's return-address predictor one entry off, and every `ret` through a
// frame that was live across the switch is then mispredicted. One frame fewer
// is one mispredict fewer per switch.
__attribute__((always_inline)) inline SwitchArrival SwitchContext(
    MachineContext* from, MachineContext* to, void* data, bool from_exits = false) {
  namespace bctx = boost::context::detail;
  context_internal::SwitchPacket packet{from, to, data};
  context_internal::BeforeSwitch(from, to, from_exits);
  void* target = to->fctx;
  WEFT_DCHECK(target != nullptr) << "switching to a context that is not suspended";
  to->fctx = nullptr;
  bctx::transfer_t t = bctx::jump_fcontext(target, &packet);
  context_internal::AfterSwitch(from);
  auto* arrived = static_cast<context_internal::SwitchPacket*>(t.data);
  arrived->from->fctx = t.fctx;
  return SwitchArrival{arrived->from, arrived->data};
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_CONTEXT_H_
