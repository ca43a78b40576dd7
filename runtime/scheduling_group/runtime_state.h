// The running runtime as the scheduler core sees it: its scheduling groups, the
// launch tickets that keep them alive while a plain thread starts a fiber, the
// placement of new fibers, and fiber ids. runtime.cc starts and stops it.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_RUNTIME_STATE_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_RUNTIME_STATE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/detail/mutex.h"
#include "runtime/machine/numa_memory.h"
#include "runtime/machine/runtime_plan.h"
#include "runtime/machine/topology.h"
#include "runtime/runtime_options.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft::detail {

class FiberWorker;

// The groups on one NUMA node, for placing fibers started by plain threads.
struct NodeGroups {
  std::vector<SchedulingGroup*> groups;
  std::atomic<std::size_t> next{0};
};

// The runtime's global state. Never destroyed: plain threads may still probe it
// (and fail to get a launch ticket) during and after process exit.
struct RuntimeState {
  Mutex lifecycle_mutex;  // serializes StartRuntime / TerminateRuntime
  std::atomic<bool> running{false};
  std::atomic<bool> closing{false};
  std::atomic<std::int64_t> launch_tickets{0};
  // Threads outside the workers (plain threads, pollers, timers) in the middle
  // of readying a fiber: the fiber may run and finish before the call
  // returns, so TerminateRuntime waits for these before it destroys groups.
  std::atomic<std::int64_t> outside_wakes{0};
  // Guards `groups` against the readers below that may run on any thread, fibers
  // included, at any time. TerminateRuntime holds lifecycle_mutex while it waits
  // for fibers, so those readers must not take that one.
  Mutex groups_mutex;
  // Replaced only while running is false and no ticket is held, so fibers and
  // ticket holders read these without groups_mutex.
  std::vector<NumaNodePtr<SchedulingGroup>> groups;
  std::atomic<std::size_t> next_group{0};
  std::vector<int> node_of_cpu;                          // see CpuLayout
  std::vector<std::unique_ptr<NodeGroups>> node_groups;  // by NUMA node; may be null
  std::string layout WEFT_GUARDED_BY(groups_mutex);      // DescribeLayout()
  std::atomic<std::uint64_t> next_id_block{1};
  std::atomic<bool> chaos_migration{false};  // of the running runtime
  // RuntimeOptions::resolve_cache_ttl_ms of the runtime started last, for the
  // resolver (runtime/io/), which sits above the runtime and reads it here.
  std::atomic<std::uint64_t> resolve_cache_ttl_ms{RuntimeOptions().resolve_cache_ttl_ms};
};

// The one runtime of the process.
RuntimeState& State();

// Fibers created and not yet finished in all groups (read in the order that
// never undercounts; see SchedulingGroup::CreatedCount).
std::uint64_t AliveFibers(const RuntimeState& state);

// Creates the groups `plan` describes, each in memory of its NUMA node and
// running the plan's scheduling policy, and tells each which others it may
// steal from. Called with groups_mutex held, while the runtime is not running.
void CreateGroups(const RuntimeOptions& options, const RuntimePlan& plan,
                  RuntimeState* state) WEFT_REQUIRES(state->groups_mutex);

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

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_RUNTIME_STATE_H_
