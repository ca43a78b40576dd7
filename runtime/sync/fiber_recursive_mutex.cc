#include "runtime/sync/fiber_recursive_mutex.h"

#include "runtime/this_fiber.h"

namespace weft::detail {

std::uint64_t CurrentOwnerId() {
  if (const std::uint64_t fiber = this_fiber::GetId(); fiber != 0) return fiber;
  // Plain threads count down from the top of the id space; fiber ids count up
  // from 1 and would need centuries to meet them.
  static std::atomic<std::uint64_t> next_thread_id{~std::uint64_t{0}};
  thread_local const std::uint64_t thread_id =
      next_thread_id.fetch_sub(1, std::memory_order_relaxed);
  return thread_id;
}

}  // namespace weft::detail
