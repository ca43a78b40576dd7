#include "runtime/scheduling_group/scheduling_group.h"

#include <cstddef>

#include "runtime/detail/check.h"
#include "runtime/scheduling_group/fiber_entity.h"

namespace weft::detail {

SchedulingGroup::SchedulingGroup(std::size_t index, std::size_t numa_node,
                                 int memory_node, std::size_t run_queue_size,
                                 const std::vector<std::vector<int>>& worker_cpus,
                                 const std::string& policy)
    : index_(index),
      numa_node_(numa_node),
      policy_(MakeSchedulingPolicy(policy, this, run_queue_size, memory_node)),
      timer_worker_(index) {
  WEFT_CHECK(!worker_cpus.empty() && worker_cpus.size() <= kMaxWorkers)
      << "a scheduling group needs 1.." << kMaxWorkers << " workers, got "
      << worker_cpus.size();
  for (std::size_t i = 0; i < worker_cpus.size(); ++i) {
    workers_.push_back(MakeOnNumaNode<FiberWorker>(memory_node, this, i, worker_cpus[i]));
  }
}

SchedulingGroup::~SchedulingGroup() {
  // Plain threads may keep using descriptors registered here.
  if (poller_.HasRegistrations()) poller_.MoveRegistrationsTo(FallbackPoller());
}

std::size_t SchedulingGroup::IndexOffset() {
  // SchedulingGroup is not standard-layout (it has private members of several
  // kinds), for which offsetof is conditionally supported; GCC and Clang compute
  // it exactly for a class without virtual bases.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
  return offsetof(SchedulingGroup, index_);
#pragma GCC diagnostic pop
}

void SchedulingGroup::SetStealPeers(StealPeers peers) {
  if (peers.same_node_ratio == 0) peers.same_node.clear();
  if (peers.other_nodes_ratio == 0) peers.other_nodes.clear();
  peers_ = std::move(peers);
  may_steal_ = !peers_.same_node.empty() || !peers_.other_nodes.empty();
}

void SchedulingGroup::Start() {
  policy_->Start();
  for (auto& worker : workers_) worker->Start();
  timer_worker_.Start([this] { return !AllWorkersAsleep(); });
}

void SchedulingGroup::Stop() {
  stopping_.store(true, std::memory_order_seq_cst);
  policy_->WakeAllToStop();
  for (auto& worker : workers_) worker->Join();
}

std::uint64_t SchedulingGroup::CreatedCount() const {
  std::uint64_t n = external_created_.load(std::memory_order_seq_cst);
  for (const auto& worker : workers_) n += worker->CreatedCount();
  return n;
}

std::uint64_t SchedulingGroup::FinishedCount() const {
  std::uint64_t n = 0;
  for (const auto& worker : workers_) n += worker->FinishedCount();
  return n;
}

void SchedulingGroup::CollectStats(SchedulingGroupStats* out) const {
  out->numa_node = numa_node_;
  out->workers.resize(workers_.size());
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->CollectStats(&out->workers[i]);
  }
  out->fibers_created = external_created_.load(std::memory_order_relaxed);
  out->fibers_finished = 0;
  for (const WorkerStats& w : out->workers) {
    out->fibers_created += w.fibers_created;
    out->fibers_finished += w.fibers_finished;
    out->spins += w.spins;
    out->sleeps += w.sleeps;
    out->wakeups += w.wakeups;
    out->steals_within_numa_node += w.steals_within_numa_node;
    out->steals_across_numa_nodes += w.steals_across_numa_nodes;
    out->stranded_rescues += w.stranded_rescues;
  }
  policy_->CollectStats(out);
  // Counters read one by one while they change: clamp a transient negative.
  const std::uint64_t in =
      out->fibers_created + out->steals_within_numa_node + out->steals_across_numa_nodes;
  const std::uint64_t out_count = out->fibers_stolen_away + out->fibers_finished;
  out->fibers_alive = in > out_count ? in - out_count : 0;
  out->timers_fired = timer_worker_.fired();
  out->timers_pending = timer_worker_.held();
}

}  // namespace weft::detail
