// A machine context: the saved registers of a suspended execution (a fiber, or
// a worker thread's own stack) plus the bookkeeping the sanitizers need to follow
// stack switches. Built on Boost.Context's make_fcontext/jump_fcontext.
//
// Not thread-safe: a context is switched to by exactly one thread at a time,
// which the scheduler guarantees.
#ifndef WEFT_RUNTIME_DETAIL_CONTEXT_H_
#define WEFT_RUNTIME_DETAIL_CONTEXT_H_

#include <cstddef>

namespace weft::detail {

struct SwitchArrival;
using ContextEntry = void (*)(SwitchArrival);

struct MachineContext {
  // Boost.Context fcontext_t: valid only while the context is suspended.
  void* fctx = nullptr;
  // Where a context made by MakeContext starts.
  ContextEntry entry = nullptr;
  // Usable stack: [stack_low, stack_low + stack_size). For ASan.
  const void* stack_low = nullptr;
  std::size_t stack_size = 0;
  // ASan's fake stack of this context while it is suspended.
  void* asan_fake_stack = nullptr;
  // TSan's fiber handle for this context.
  void* tsan_fiber = nullptr;
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

// Suspends `from` (the running context) and resumes `to`, passing `data`.
// Returns when some context switches back to `from`; the caller must then store
// arrival.from->fctx (SwitchContext does that itself) and act on arrival.data.
// With `from_exits`, `from` will never be resumed (sanitizers drop its state).
SwitchArrival SwitchContext(MachineContext* from, MachineContext* to, void* data,
                            bool from_exits = false);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_CONTEXT_H_
