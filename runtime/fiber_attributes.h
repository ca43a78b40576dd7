// FiberAttributes: where and how a new fiber starts. In a header of its own so
// that the scheduler core, which creates fibers, stays below runtime/fiber.h.
// Include runtime/fiber.h.
#ifndef WEFT_RUNTIME_FIBER_ATTRIBUTES_H_
#define WEFT_RUNTIME_FIBER_ATTRIBUTES_H_

#include <cstddef>
#include <limits>

namespace weft {

// The caller's scheduling group on a FiberWorker; from a plain thread, a group
// near the calling thread, chosen round-robin.
inline constexpr std::size_t kNearestSchedulingGroup =
    std::numeric_limits<std::size_t>::max();
// Any group; the runtime spreads such fibers round-robin.
inline constexpr std::size_t kUnspecifiedSchedulingGroup =
    std::numeric_limits<std::size_t>::max() - 1;

enum class Launch {
  // Queue the new fiber; the caller keeps running.
  kPost,
  // From a fiber: run the new fiber at once on the current worker and queue the
  // caller. From a plain thread this is the same as kPost.
  kDispatch,
};

struct FiberAttributes {
  // kNearestSchedulingGroup, kUnspecifiedSchedulingGroup, or a group index below
  // GetSchedulingGroupCount(); an index out of range makes the start functions
  // throw std::invalid_argument.
  std::size_t scheduling_group = kNearestSchedulingGroup;
  // Never let workers of another group steal this fiber.
  bool scheduling_group_local = false;
  // Stack size in bytes; 0 = RuntimeOptions::stack_size. Otherwise 16 KiB..1 GiB
  // (other values make the start functions throw std::invalid_argument); rounded
  // up to whole pages.
  std::size_t stack_size = 0;
  Launch launch_policy = Launch::kPost;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_FIBER_ATTRIBUTES_H_
