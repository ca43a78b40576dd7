// tRPC-Cpp's v2 scheduling policy, after Taskflow's executor: a global run
// queue per group, a work-stealing deque per worker, and an eventcount-style
// protocol for idle workers.
//
// Queues. Every fiber readied from outside the group's running fibers (Push,
// PushBatch: other threads, the TimerWorker, I/O polls and file-ring reaps,
// fibers of other groups) goes to the group's global queue, a bounded MPMC
// RunQueue with an overflow list (FIFO, under a mutex) so that a full queue
// loses nothing. A fiber readied by the fiber running on a worker (ReadyLocal:
// a spawned child, a woken waiter, a deadline fired between two fibers) goes
// to the bottom of that worker's WorkStealingDeque (Chase and Lev, SPAA 2005,
// with the memory orders of Lê et al., PPoPP 2013: work_stealing_deque.h). Its
// owner pops newest first; the group's other workers steal oldest first. A
// yielding fiber (Requeue) goes to the global queue, behind everything queued:
// on the deque's bottom it would be its own worker's next pick and could pin
// itself there.
//
// Picking and stealing order. PickNext: the own deque, then the global queue;
// every kFairnessInterval picks the global queue and then the oldest fiber of
// the own deque come first, so fibers that keep readying each other on one
// worker starve neither the global queue nor the bottom of their deque; with
// both empty, the oldest fiber of another worker's deque (so a yielding fiber
// rescues one stranded behind a fiber that never blocks). An idle
// worker looks at its deque, the global queue, the other workers' deques
// (round-robin victims) and, on every n-th look, the global queues of other
// groups (n = steal_peers() same_node_ratio / other_nodes_ratio; always once
// before it sleeps). Other groups steal only from the global queue
// (PopForThief), and never take a scheduling_group_local fiber; such fibers in
// the deques may be stolen by workers of their own group.
//
// Wake protocol (why no wake-up is lost). Taskflow's idea: a worker that is
// searching for work (a "thief", here a spinner, at most
// IdleWorkers::kMaxSpinners) takes anything pushed, so a push needs to notify
// only when no worker searches; the last searcher to find work passes a
// notification on. Sleeping follows the
// eventcount protocol of event_count.h (prepare: announce, re-check every queue,
// then cancel or commit), but the commit is FiberWorker::Block and the notify
// FiberWorker::Wake, because Block does more than sleep: it reaps the worker's
// file ring, may wait in the I/O poller, hands deadlines back to the timer
// thread when the last worker sleeps, and takes a second look. The eventcount's
// waiter list is a bitmask of announced sleepers, which also gives
// AllWorkersAsleep exactly (announced and not claimed since):
//   sleeper:  generation = wake_generation(); mask |= bit (seq_cst RMW + fence);
//             re-check own deque, global queue, other deques, peer groups;
//             found: withdraw the bit (cancel); else Block(generation) (commit).
//   producer: publish the fiber; seq_cst fence; if no spinner is counted,
//             claim one bit of the mask (CAS) and Wake() its worker.
// The two seq_cst fences are Dekker's pattern: either the producer sees the
// sleeper's bit, or the sleeper's re-check sees the fiber. A claimed worker is
// woken through its generation, read before the announcement, so a Wake() that
// lands before Block() makes Block() return at once. A spinner counted by the
// producer re-checks every queue after it stops spinning (the sleep path), and
// if it found work as the last spinner wakes a sleeper itself. A worker that
// leaves sleep with a fiber while more is queued passes a wake-up on.
// ReadyLocal and Requeue notify only when no worker searches and one sleeps,
// without a fence (Taskflow's local push needs no notification): the worker
// that made the fiber ready takes it itself when its current fiber blocks, and
// a sleeper that missed it finds it on Block's second look.
//
// Work from I/O and timers without a separate I/O queue. tRPC's v2 needed one
// because work from the poller could land on a local queue whose worker then
// slept. Here only a fiber running on a worker pushes to that worker's deque,
// and a worker sleeps only after its own deque is empty, so a sleeping worker's
// deque is empty. Everything readied outside a running fiber (the poller, ring
// reaps, the TimerWorker, deadlines fired in the scheduler loop) is a Push or
// PushBatch to the global queue, which wakes a sleeper unless a worker spins;
// deadlines fired between two fibers go to the running worker's deque, which
// that awake worker serves.
//
// Stealing across groups: sleeping workers cannot look, so a producer that
// finds no spinner and no sleeper in its group wakes a sleeper of a peer group
// that has no spinner (as WeftPolicy does), which steals on its way to sleep.
//
// Chaos mode (groups of two or more workers): ReadyLocal pushes to the global
// queue, so the deques stay empty, and every fiber popped from the global queue
// goes through FiberWorker::ChaosTake, which passes back one that ran here last.
//
// Thread-safe.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_V2_POLICY_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_V2_POLICY_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/detail/mutex.h"
#include "runtime/machine/numa_memory.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/policy/group_queue.h"
#include "runtime/scheduling_group/policy/scheduling_policy.h"
#include "runtime/scheduling_group/policy/v2/work_stealing_deque.h"
#include "runtime/scheduling_group/run_queue.h"

namespace weft::detail {

class OwnerCounter;

class V2Policy final : public SchedulingPolicy {
 public:
  V2Policy(SchedulingGroup* group, std::size_t run_queue_size, int memory_node);
  ~V2Policy() override;

  const char* name() const override { return "v2"; }
  void Start() override;
  void WakeAllToStop() override;
  void Push(FiberEntity* fiber) override;
  void PushBatch(FiberEntity* const* fibers, std::size_t count) override;
  void Requeue(FiberWorker* worker, FiberEntity* fiber) override;
  void ReadyLocal(FiberWorker* worker, FiberEntity* fiber) override;
  void PushAvoiding(FiberEntity* fiber, std::size_t avoid) override;
  FiberEntity* PickNext(FiberWorker* worker) override;
  FiberEntity* WaitForWork(FiberWorker* worker) override;
  FiberEntity* SecondLook(FiberWorker* worker) override;
  bool HasReadyWork(const FiberWorker* worker) const override;
  FiberEntity* PopForThief() override;
  // The global queue only: what other groups may steal from.
  bool LooksEmpty() const override { return queue_.LooksEmpty(); }
  bool AllWorkersAsleep() const override { return idle_.AllAsleep(); }
  void CollectStats(SchedulingGroupStats* out) const override;
  // For WakeIdlePeers (group_queue.h) in peer groups.
  IdleWorkers& idle_workers() { return idle_; }

 private:
  struct WorkerState {
    // Pushed and popped by its worker, stolen from by the group's others.
    WorkStealingDeque<FiberEntity*> deque;
    std::uint32_t picks = 0;
    // Its looks at other groups' queues.
    GroupThief thief;
    // The next victim among the group's other workers.
    std::size_t victim_cursor = 0;
  };

  static WorkerState& state(const FiberWorker* worker) {
    return *static_cast<WorkerState*>(worker->policy_data());
  }

  // Global queue (overflow included), in chaos mode through ChaosTake.
  FiberEntity* PopGlobal(FiberWorker* worker);
  FiberEntity* PopOwn(FiberWorker* worker);

  // One round of the group's queues: own deque, global queue, other deques.
  FiberEntity* LookInGroup(FiberWorker* worker);
  // The oldest fiber of another worker's deque, trying each in turn.
  FiberEntity* StealFromWorkers(FiberWorker* worker);
  // One look for work in other groups (GroupThief::TrySteal), when the
  // group may steal.
  FiberEntity* TrySteal(FiberWorker* worker, bool before_sleep = false) {
    return may_steal_ ? state(worker).thief.TrySteal(worker, before_sleep) : nullptr;
  }

  FiberEntity* Spin(FiberWorker* worker);
  FiberEntity* Sleep(FiberWorker* worker);

  // After a fiber was published and a seq_cst fence: wakes a sleeper if no
  // one spins; with every worker busy, an idle peer group.
  void WakeForQueuedWork() {
    weft::detail::WakeForQueuedWork<V2Policy>(idle_, *group_, may_steal_);
  }
  // A worker leaving idleness with a fiber: if more is queued, wakes another.
  void PassOnWakeUp();

  SchedulingGroup* const group_;
  const int memory_node_;
  SharedRunQueue queue_;
  IdleWorkers idle_;
  std::vector<NumaNodePtr<WorkerState>> workers_;
  bool may_steal_ = false;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_V2_POLICY_H_
