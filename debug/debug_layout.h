// Where a debugger finds what it needs in the runtime's structures, so that
// debug/weft.py works on builds without debug information: the offsets of the
// fields it reads, exported as one plain C symbol, `weft_debug_layout`. Bump
// `version` whenever a field is added or its meaning changes (weft.py checks it).
//
// A leaf header of plain data, so that the stack pool (which keeps the list of
// stacks the table describes) can make sure every program that maps a fiber
// stack links the table too.
#ifndef WEFT_DEBUG_DEBUG_LAYOUT_H_
#define WEFT_DEBUG_DEBUG_LAYOUT_H_

#include <cstdint>

extern "C" {
struct WeftDebugLayout {
  std::uint32_t version;
  // The StackRecord (runtime/detail/stack_pool.h) of each mapped stack, off the
  // stack, linked from `weft_debug_stacks`.
  std::uint32_t record_next;        // StackRecord::next
  std::uint32_t record_fiber;       // StackRecord::fiber (FiberEntity*)
  std::uint32_t record_low;         // StackRecord::low (char*)
  std::uint32_t record_size;        // StackRecord::size (size_t)
  std::uint32_t record_sleep;       // StackRecord::sleep (uint32, StackSleep)
  std::uint32_t record_saved;       // StackRecord::saved (char*)
  std::uint32_t record_saved_from;  // StackRecord::saved_from (char*)
  // The FiberEntity at the top of each stack in use.
  std::uint32_t fiber_id;          // FiberEntity::id (uint64)
  std::uint32_t fiber_state;       // FiberEntity::state (uint8, FiberState)
  std::uint32_t fiber_group;       // FiberEntity::group (SchedulingGroup*)
  std::uint32_t fiber_fctx;        // the saved Boost.Context fcontext_t of a suspended fiber
  std::uint32_t fiber_stack_low;   // Stack::low (char*)
  std::uint32_t fiber_stack_size;  // Stack::size (size_t)
  std::uint32_t group_index;       // SchedulingGroup's index (size_t)
};
extern const WeftDebugLayout weft_debug_layout;
}

#endif  // WEFT_DEBUG_DEBUG_LAYOUT_H_
