// The table of debug_layout.h, compiled into the runtime library.
#include "debug/debug_layout.h"

#include <cstddef>

#include "runtime/detail/context.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/scheduling_group.h"

extern "C" {
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
