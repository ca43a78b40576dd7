// A scheduling group: FiberWorker threads that run one set of fibers, with a
// TimerWorker serving their deadlines and an I/O poller for their descriptors.
// How the ready fibers are queued, picked, and stolen, and how idle workers
// sleep and are woken, is the group's scheduling policy
// (policy/scheduling_policy.h; weft's own is policy/weft/weft_policy.h).
//
// Groups balance through stealing when their policy does: an idle worker
// takes fibers from other groups' queues on every n-th look for work,
// n = work_stealing_ratio for groups on its NUMA node and
// cross_numa_work_stealing_ratio for the others (StealPeers). A stolen fiber
// belongs to the thief's group from then on; fibers started with
// scheduling_group_local are never stolen.
//
// Thread-safe.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_SCHEDULING_GROUP_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_SCHEDULING_GROUP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/machine/numa_memory.h"
#include "runtime/runtime_stats.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/io_poller.h"
#include "runtime/scheduling_group/policy/scheduling_policy.h"
#include "runtime/scheduling_group/timer_worker.h"

namespace weft::detail {

struct FiberEntity;

// The groups a group's workers may steal from, and how often. Lists are empty
// when their ratio is 0.
struct StealPeers {
  std::vector<SchedulingGroup*> same_node;
  std::vector<SchedulingGroup*> other_nodes;
  std::size_t same_node_ratio = 0;
  std::size_t other_nodes_ratio = 0;
};

class SchedulingGroup {
 public:
  static constexpr std::size_t kMaxWorkers = 64;

  // `worker_cpus[i]` lists the CPUs worker i may run on (empty: no pinning).
  // The run queue and the workers' state prefer NUMA node `memory_node` (< 0: no
  // preference, e.g. for a synthetic topology). `policy` names the scheduling
  // policy (one of kSchedulingPolicies).
  SchedulingGroup(std::size_t index, std::size_t numa_node, int memory_node,
                  std::size_t run_queue_size,
                  const std::vector<std::vector<int>>& worker_cpus,
                  const std::string& policy = "weft");
  ~SchedulingGroup();
  SchedulingGroup(const SchedulingGroup&) = delete;
  SchedulingGroup& operator=(const SchedulingGroup&) = delete;

  // Called once, before Start().
  void SetStealPeers(StealPeers peers);
  const StealPeers& steal_peers() const { return peers_; }
  bool may_steal() const { return may_steal_; }
  // RuntimeOptions::chaos_migration; set once, before Start().
  void set_chaos_migration(bool on) { chaos_migration_ = on; }
  bool chaos_migration() const { return chaos_migration_; }

  // Starts the workers and the group's TimerWorker.
  void Start();
  // Stops the TimerWorker, dropping the deadlines it still holds. Call only when
  // no fiber is left, before Stop().
  void StopTimers() { timer_worker_.Stop(); }
  // Makes workers exit once they find no work, and joins them. Call only when no
  // fiber is left.
  void Stop();

  // Serves every deadline of this group's fibers and timers.
  TimerWorker& timer_worker() { return timer_worker_; }
  // Readiness of the descriptors weft::io registered with this group.
  IoPoller& poller() { return poller_; }

  std::size_t index() const { return index_; }
  // Where index() lives in the object, for debuggers.
  static std::size_t IndexOffset();
  std::size_t numa_node() const { return numa_node_; }
  std::size_t worker_count() const { return workers_.size(); }
  FiberWorker* worker(std::size_t i) const { return workers_[i].get(); }

  // The group's scheduling policy.
  SchedulingPolicy& policy() const { return *policy_; }

  // Makes `fiber` (of this group) runnable and wakes a worker if needed. Any
  // thread.
  void Push(FiberEntity* fiber) { policy_->Push(fiber); }
  // Pushes many fibers, then wakes as many workers as needed.
  void PushBatch(FiberEntity* const* fibers, std::size_t count) {
    policy_->PushBatch(fibers, count);
  }
  // Whether every worker sleeps.
  bool AllWorkersAsleep() const { return policy_->AllWorkersAsleep(); }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // A fiber was placed in this group by someone other than one of its workers.
  void CountExternalCreated() {
    external_created_.fetch_add(1, std::memory_order_seq_cst);
  }
  // Fibers placed in / finished in this group so far. To tell whether any fiber
  // is alive, read every group's FinishedCount() before any CreatedCount(): a
  // fiber is created before it can finish, so that order never undercounts.
  std::uint64_t CreatedCount() const;
  std::uint64_t FinishedCount() const;
  void CollectStats(SchedulingGroupStats* out) const;

 private:
  const std::size_t index_;
  const std::size_t numa_node_;
  std::unique_ptr<SchedulingPolicy> policy_;
  std::vector<NumaNodePtr<FiberWorker>> workers_;
  TimerWorker timer_worker_;
  IoPoller poller_;
  StealPeers peers_;
  bool may_steal_ = false;
  bool chaos_migration_ = false;

  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> external_created_{0};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_SCHEDULING_GROUP_H_
