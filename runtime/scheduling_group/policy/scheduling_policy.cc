#include "runtime/scheduling_group/policy/scheduling_policy.h"

#include "runtime/detail/check.h"
#include "runtime/scheduling_group/policy/v2/v2_policy.h"
#include "runtime/scheduling_group/policy/weft/weft_policy.h"

namespace weft::detail {

std::unique_ptr<SchedulingPolicy> MakeSchedulingPolicy(const std::string& name,
                                                       SchedulingGroup* group,
                                                       std::size_t run_queue_size,
                                                       int memory_node) {
  if (name == "weft") {
    return std::make_unique<WeftPolicy>(group, run_queue_size, memory_node,
                                        WeftPolicy::kLocalRunStacks);
  }
  if (name == "v1") {
    return std::make_unique<WeftPolicy>(group, run_queue_size, memory_node,
                                        WeftPolicy::kSharedQueueOnly);
  }
  if (name == "v2") return std::make_unique<V2Policy>(group, run_queue_size, memory_node);
  WEFT_CHECK(false) << "unknown scheduling policy \"" << name << "\" (known: "
                    << SchedulingPolicyList() << ")";
  return nullptr;
}

}  // namespace weft::detail
