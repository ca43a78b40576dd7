// weft's scheduling policy: one bounded lock-free run queue per group shared by
// its workers, a local run stack per worker, at most two spinners, and
// stealing from other groups' queues.
//
// Local run stacks. A fiber readied by a fiber running on a worker (a spawned
// child, a woken waiter) goes on top of that worker's local run stack
// (local_run_stack.h) and runs as soon as the current fiber blocks, newest
// first, on a warm cache and without a queue round trip. Idle workers of the
// group take the oldest: at once when there are two or more, otherwise when
// the one has sat there for a while (two scans apart), so a busy worker cannot
// hold it back. After kMaxLocalStreak consecutive local picks the oldest local
// fiber goes to the shared queue (one that never ran only after it has sat at
// the bottom for kLocalPatience) and the queue is served first, so fibers that
// hand work back and forth starve neither the queue nor the bottom of the
// stack, while a tree of fibers still unfolds depth first. A running worker
// also rescues fibers from the local stack of a worker that has not switched
// for a while (preempted by the system, or running a fiber that does not
// block).
//
// Wake policy. A worker that runs out of work may become one of at most two
// spinners, which poll the queue for a few microseconds; the others sleep and
// advertise it in a bitmask. A producer publishes its fiber and then, only if
// no worker spins, wakes one sleeper (claiming its bit first, so two producers
// never wake the same one). When a spinner finds work and it was the last
// spinner, it passes a wake-up on to a sleeper, which becomes the next
// spinner: the producer's path stays free of syscalls while the group is busy.
// Neither side can miss the other: a producer writes the queue before it reads
// the spinner count and the sleeper mask, and a worker writes its spinner or
// sleeper state before it re-reads the queue (sequentially consistent fences on
// both sides), so at least one of them sees the other (docs/design.md, "Why no
// wake-up is lost").
//
// Work stealing. Groups whose workers are busy while another group's sit idle
// balance through stealing: an idle worker (one about to spin, spinning, or
// about to sleep) pops from the shared queue of another group on every n-th
// look for work, n = work_stealing_ratio for groups on its NUMA node and
// cross_numa_work_stealing_ratio for the others, and always once before it
// sleeps. A stolen fiber belongs to the thief's group from then on. Sleeping
// workers cannot look, so a producer that finds every worker of its own group
// busy (no spinner, no sleeper) checks the peer groups: a spinning peer will
// look by itself, otherwise it wakes a sleeper of one peer, which spins,
// steals, and as the last spinner of its group hands a wake-up on. Fibers
// started with scheduling_group_local are never stolen: a thief that pops one
// pushes it back behind the others and tries the next.
//
// A full run queue loses nothing: the fiber goes to an overflow list (FIFO,
// under a mutex), counted in run_queue_overflows; any worker that pops moves
// overflow fibers back into the ring as room appears.
//
// The same class is tRPC's v1 policy (the design weft's descends from) when
// built with kSharedQueueOnly: no local run stacks, every readied fiber goes
// through the shared queue and its wake-up rule.
//
// Chaos mode (groups of two or more workers): the local run stack is not
// used, and a worker that pops a fiber it ran last passes it back (see
// FiberWorker::ChaosTake).
//
// Thread-safe.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_WEFT_WEFT_POLICY_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_WEFT_WEFT_POLICY_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/detail/mutex.h"
#include "runtime/machine/numa_memory.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/policy/group_queue.h"
#include "runtime/scheduling_group/policy/scheduling_policy.h"
#include "runtime/scheduling_group/policy/weft/local_run_stack.h"
#include "runtime/scheduling_group/run_queue.h"

namespace weft::detail {

class OwnerCounter;
class SchedulingGroup;

class WeftPolicy final : public SchedulingPolicy {
 public:
  // Consecutive local picks before the shared queue is served first.
  static constexpr std::uint32_t kMaxLocalStreak = 16;
  // How often (in picks) a running worker looks for stranded fibers.
  static constexpr std::uint32_t kRescueInterval = 64;

  enum Mode { kLocalRunStacks, kSharedQueueOnly };

  WeftPolicy(SchedulingGroup* group, std::size_t run_queue_size, int memory_node,
             Mode mode);
  ~WeftPolicy() override;

  const char* name() const override { return local_run_stacks_ ? "weft" : "v1"; }
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
  bool LooksEmpty() const override { return queue_.LooksEmpty(); }
  bool AllWorkersAsleep() const override { return idle_.AllAsleep(); }
  void CollectStats(SchedulingGroupStats* out) const override;
  // For WakeIdlePeers (group_queue.h) in peer groups.
  IdleWorkers& idle_workers() { return idle_; }

  // PickNext, Requeue and ReadyLocal, inlined into the worker's switch path:
  // FiberWorker calls these directly when its group runs this class (the
  // default policy), and the virtual ones otherwise.
  FiberEntity* PickNextFast(FiberWorker* worker);
  void RequeueFast(FiberEntity* fiber) {
    // The worker it yielded on is busy with a fiber it took from this queue
    // and comes back to the queue when that one blocks, so the yielder cannot
    // be stranded: the wake-up of an idle worker is a cheap best-effort check,
    // without the fence Push() needs.
    queue_.Push(fiber);
    WakeForQueuedWork();
  }
  void ReadyLocalFast(FiberWorker* worker, FiberEntity* fiber);

 private:
  // What this policy keeps for each worker of the group.
  struct WorkerState {
    explicit WorkerState(std::size_t workers)
        : seen_local(workers, ~std::uint64_t{0}), peer_progress(workers) {}
    // Pushed and popped by its worker, popped at the bottom by idle workers.
    LocalRunStack<FiberEntity> local;
    std::uint32_t local_streak = 0;
    // The bottom of the local run stack at the last fairness look that found
    // a fiber that never ran there, and since when (see kLocalPatience).
    FiberEntity* oldest_local = nullptr;
    std::chrono::steady_clock::time_point oldest_local_since{};
    // Its looks at other groups' queues.
    GroupThief thief;
    // Local stack generation of the last scan of each worker, for
    // StealLocal's patience.
    std::vector<std::uint64_t> seen_local;
    // RescueStranded's view of each worker: its switch count, and since when
    // it has had fibers on its local run stack without switching (the epoch:
    // not).
    struct PeerProgress {
      std::uint64_t switches = 0;
      std::chrono::steady_clock::time_point stalled_since{};
    };
    std::vector<PeerProgress> peer_progress;
    std::size_t rescue_cursor = 0;
    std::uint32_t picks_until_rescue = 1;
  };

  static WorkerState& state(const FiberWorker* worker) {
    return *static_cast<WorkerState*>(worker->policy_data());
  }
  // Pop(), in chaos mode passing back a fiber that ran on `worker` last.
  FiberEntity* PopQueue(FiberWorker* worker) {
    FiberEntity* fiber = queue_.Pop();
    if (WEFT_UNLIKELY(worker->chaos()) && fiber != nullptr) fiber = worker->ChaosTake(fiber);
    return fiber;
  }
  // PickNextFast's path once kMaxLocalStreak local picks ran in a row.
  FiberEntity* PickWithFairness(FiberWorker* worker, WorkerState& my);

  FiberEntity* Spin(FiberWorker* worker);
  FiberEntity* Sleep(FiberWorker* worker);
  // Takes the oldest fiber of worker `other`'s local run stack: at once if it
  // holds two or more (or with `patient` false), otherwise only if the one it
  // holds has been there since `worker`'s previous scan.
  FiberEntity* StealLocal(FiberWorker* worker, std::size_t other, bool patient);
  FiberEntity* StealAnyLocal(FiberWorker* worker, bool patient);
  // Looks at the next other worker of the group, in turn, and takes the
  // oldest fiber of its local run stack if that worker has not switched
  // fibers for kStrandedAfter while the stack held fibers. nullptr if nothing
  // is taken.
  FiberEntity* RescueStranded(FiberWorker* worker);
  // One look for work in other groups (GroupThief::TrySteal), when the
  // group may steal.
  FiberEntity* TrySteal(FiberWorker* worker, bool before_sleep = false) {
    return may_steal_ ? state(worker).thief.TrySteal(worker, before_sleep) : nullptr;
  }

  // After a fiber was queued: wakes a sleeper if no one spins; when every
  // worker is busy, lets idle workers of other groups know.
  void WakeForQueuedWork() {
    weft::detail::WakeForQueuedWork<WeftPolicy>(idle_, *group_, may_steal_);
  }
  // For a worker that leaves idleness with a fiber from the queue (woken,
  // stealing or about to sleep): if more fibers are queued and no one spins
  // to take them, wakes a sleeper or an idle peer group. Producers wake at
  // most one worker per fiber, and none while a spinner is counted, so a
  // worker that takes one of a burst passes the wake-up on (as a spinner does).
  void PassOnWakeUp();

  SchedulingGroup* const group_;
  const int memory_node_;
  const bool local_run_stacks_;
  SharedRunQueue queue_;
  IdleWorkers idle_;
  std::vector<NumaNodePtr<WorkerState>> workers_;
  bool may_steal_ = false;
};

inline FiberEntity* WeftPolicy::PickNextFast(FiberWorker* worker) {
  WorkerState& my = state(worker);
  if (WEFT_UNLIKELY(--my.picks_until_rescue == 0)) {
    my.picks_until_rescue = kRescueInterval;
    if (FiberEntity* fiber = RescueStranded(worker)) return fiber;
  }
  if (my.local.size() != 0) {
    if (WEFT_LIKELY(++my.local_streak <= kMaxLocalStreak)) {
      if (FiberEntity* fiber = my.local.PopNewest()) return fiber;
    } else {
      return PickWithFairness(worker, my);
    }
  }
  my.local_streak = 0;
  return PopQueue(worker);
}

inline void WeftPolicy::ReadyLocalFast(FiberWorker* worker, FiberEntity* fiber) {
  if (!local_run_stacks_ || WEFT_UNLIKELY(worker->chaos())) {
    Push(fiber);
    return;
  }
  state(worker).local.Push(fiber);
  // An idle worker may take a local fiber if the current one keeps running.
  // Best effort, like a requeue: this worker takes it itself as soon as the
  // current fiber blocks, so a missed wake-up delays it but cannot strand it.
  idle_.WakeIfIdleWorkerSleeps();
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_WEFT_WEFT_POLICY_H_
