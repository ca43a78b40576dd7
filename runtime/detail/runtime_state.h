// What the rest of the runtime needs to know about the running runtime.
#ifndef WEFT_RUNTIME_DETAIL_RUNTIME_STATE_H_
#define WEFT_RUNTIME_DETAIL_RUNTIME_STATE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/runtime.h"
#include "runtime/scheduling_group/topology.h"

namespace weft::detail {

class SchedulingGroup;
class FiberWorker;

// The CPUs and the groups a runtime started with `options` gets on this
// machine. Every option is checked first, so this throws
// std::invalid_argument for a value out of range, a bad topology or
// accessible_cpus, or a layout that cannot be made.
struct RuntimePlan {
  CpuLayout layout;
  std::vector<GroupPlan> groups;
  // RuntimeOptions::chaos_migration, or WEFT_CHAOS_MIGRATION from the
  // environment.
  bool chaos_migration = false;
};
RuntimePlan PlanRuntime(const RuntimeOptions& options);

// A plain thread holds a launch ticket from AllocateFiber until its fiber is
// queued, so TerminateRuntime cannot stop the workers in between. Returns false
// when the runtime is not running or is terminating.
bool AcquireLaunchTicket();
void ReleaseLaunchTicket();

// The group a new fiber goes to. `requested` is a FiberAttributes group index
// or kNearestSchedulingGroup / kUnspecifiedSchedulingGroup; `worker` the
// calling worker or nullptr. Aborts with a message on an index out of range.
SchedulingGroup* GroupForNewFiber(std::size_t requested, FiberWorker* worker);

// A process-wide unique, non-zero fiber id.
std::uint64_t NextFiberId();

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_RUNTIME_STATE_H_
