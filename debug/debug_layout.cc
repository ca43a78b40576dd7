// The table of debug_layout.h, compiled into the runtime library.
#include "debug/debug_layout.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "runtime/detail/context.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/scheduling_group.h"

// weft.py reads these fields as plain integers of these sizes.
static_assert(sizeof(std::atomic<weft::detail::StackSleep>) == sizeof(std::uint32_t));
static_assert(sizeof(std::atomic<weft::detail::FiberEntity*>) == sizeof(void*));
static_assert(sizeof(std::atomic<weft::detail::FiberState>) == sizeof(std::uint8_t));
static_assert(std::is_standard_layout_v<weft::detail::StackRecord>);

extern "C" {
__attribute__((used)) const WeftDebugLayout weft_debug_layout = {
    2,
    offsetof(weft::detail::StackRecord, next),
    offsetof(weft::detail::StackRecord, fiber),
    offsetof(weft::detail::StackRecord, low),
    offsetof(weft::detail::StackRecord, size),
    offsetof(weft::detail::StackRecord, sleep),
    offsetof(weft::detail::StackRecord, saved),
    offsetof(weft::detail::StackRecord, saved_from),
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
