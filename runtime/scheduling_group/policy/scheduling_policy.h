// A scheduling policy: how a scheduling group keeps its ready fibers, which
// one a worker runs next, how idle workers wait and are woken, and in what
// order they steal. The rest of the group belongs to no policy: the worker
// loop and its switches (fiber_worker.h), stacks, the TimerWorker, the I/O
// poller and the stats counters. A policy reaches them through the worker
// (FiberWorker::PollWithoutWaiting, FireDueTimers, Block, Wake, counters).
//
// One policy object per group, made by MakeSchedulingPolicy when the group is
// built; every group of a runtime runs the same policy, so a policy may treat
// its peer groups' policies as its own type when it steals.
//
// Who calls what:
// - producers, from any thread: Push, PushBatch (fibers of this group);
// - the worker `worker` itself, from its running fiber: ReadyLocal, PickNext,
//   HasReadyWork; from the context that resumes after a yield: Requeue;
// - the worker in its scheduler context: WaitForWork, SecondLook;
// - workers of other groups: PopForThief, WakeForThieves;
// - the TimerWorker: AllWorkersAsleep.
// Every method is thread-safe in that sense. A policy never loses a fiber it
// accepted (a full queue overflows, it does not drop), never lets a
// scheduling_group_local fiber leave its group, and lets workers sleep (no
// CPU) when nothing is ready.
//
// Adding a policy: a folder beside weft/ with a SchedulingPolicy subclass, its
// name in kSchedulingPolicies (runtime/detail/scheduling_policies.h, where
// option checking finds it) and in MakeSchedulingPolicy (scheduling_policy.cc).
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_SCHEDULING_POLICY_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_SCHEDULING_POLICY_H_

#include <cstddef>
#include <memory>
#include <string>

#include "runtime/detail/scheduling_policies.h"
#include "runtime/runtime_stats.h"

namespace weft::detail {

struct FiberEntity;
class FiberWorker;
class SchedulingGroup;

class SchedulingPolicy {
 public:
  virtual ~SchedulingPolicy() = default;

  // The name it is chosen by (one of kSchedulingPolicies).
  virtual const char* name() const = 0;

  // Once, after the group's workers and steal peers are set up, before any
  // worker runs.
  virtual void Start() = 0;
  // The group is stopping (SchedulingGroup::stopping() is true): wake every
  // worker so that it sees it.
  virtual void WakeAllToStop() = 0;

  // `fiber` (of this group) is ready. Any thread; wakes a worker if needed.
  virtual void Push(FiberEntity* fiber) = 0;
  virtual void PushBatch(FiberEntity* const* fibers, std::size_t count) = 0;
  // `fiber` yielded on `worker`, which now runs something else.
  virtual void Requeue(FiberWorker* worker, FiberEntity* fiber) = 0;
  // The running fiber of `worker` readied `fiber` (of this group).
  virtual void ReadyLocal(FiberWorker* worker, FiberEntity* fiber) = 0;
  // Chaos mode: queues `fiber` for any worker but `avoid` and wakes one.
  virtual void PushAvoiding(FiberEntity* fiber, std::size_t avoid) = 0;

  // The fiber `worker` runs next, without waiting; nullptr if none.
  virtual FiberEntity* PickNext(FiberWorker* worker) = 0;
  // `worker` has nothing to run: spin, steal, sleep (FiberWorker::Block) as
  // the policy wants until there is a fiber to run. nullptr once the group
  // stops and nothing is left for this worker.
  virtual FiberEntity* WaitForWork(FiberWorker* worker) = 0;
  // Called by FiberWorker::Block when `worker` has slept for a while without
  // being woken: a last look for a fiber that a wake-up without a fence may
  // have missed. nullptr: sleep until woken.
  virtual FiberEntity* SecondLook(FiberWorker* worker) = 0;
  // Whether fibers other than the running one are ready for `worker`. A hint.
  virtual bool HasReadyWork(const FiberWorker* worker) const = 0;

  // A worker of another group steals: a fiber that may leave this group, or
  // nullptr.
  virtual FiberEntity* PopForThief() = 0;
  // Whether nothing is queued in this group. A hint.
  virtual bool LooksEmpty() const = 0;
  // Whether every worker sleeps (announced, not claimed since).
  virtual bool AllWorkersAsleep() const = 0;

  // run_queue_depth, run_queue_overflows, fibers_stolen_away.
  virtual void CollectStats(SchedulingGroupStats* out) const = 0;
};

// The policy named `name` (one of kSchedulingPolicies; anything else aborts) for `group`, whose run
// queue holds `run_queue_size` fibers before it overflows and prefers NUMA
// node `memory_node` (< 0: none).
std::unique_ptr<SchedulingPolicy> MakeSchedulingPolicy(const std::string& name,
                                                       SchedulingGroup* group,
                                                       std::size_t run_queue_size,
                                                       int memory_node);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_SCHEDULING_POLICY_H_
