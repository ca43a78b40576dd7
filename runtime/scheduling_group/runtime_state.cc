#include "runtime/scheduling_group/runtime_state.h"

#include <sched.h>

#include <stdexcept>
#include <string>
#include <utility>

#include "runtime/fiber_attributes.h"
#include "runtime/scheduling_group/fiber_worker.h"

namespace weft::detail {

RuntimeState& State() {
  static RuntimeState* state = new RuntimeState;
  return *state;
}

std::uint64_t AliveFibers(const RuntimeState& state) {
  std::uint64_t finished = 0;
  for (const auto& group : state.groups) finished += group->FinishedCount();
  std::uint64_t created = 0;
  for (const auto& group : state.groups) created += group->CreatedCount();
  return created - finished;
}

bool AcquireLaunchTicket() {
  RuntimeState& state = State();
  state.launch_tickets.fetch_add(1, std::memory_order_seq_cst);
  if (state.running.load(std::memory_order_seq_cst) &&
      !state.closing.load(std::memory_order_seq_cst)) {
    return true;
  }
  state.launch_tickets.fetch_sub(1, std::memory_order_seq_cst);
  return false;
}

void ReleaseLaunchTicket() {
  State().launch_tickets.fetch_sub(1, std::memory_order_seq_cst);
}

namespace {

// A group of the calling thread's NUMA node, round-robin; nullptr when the
// thread runs on a CPU of a node without groups (or of unknown node).
SchedulingGroup* GroupNearCallingThread(RuntimeState& state) {
  const int cpu = sched_getcpu();
  if (cpu < 0 || static_cast<std::size_t>(cpu) >= state.node_of_cpu.size()) {
    return nullptr;
  }
  const int node = state.node_of_cpu[cpu];
  if (node < 0 || static_cast<std::size_t>(node) >= state.node_groups.size()) {
    return nullptr;
  }
  NodeGroups* near = state.node_groups[node].get();
  if (near == nullptr) return nullptr;
  return near
      ->groups[near->next.fetch_add(1, std::memory_order_relaxed) % near->groups.size()];
}

}  // namespace

SchedulingGroup* GroupForNewFiber(std::size_t requested, FiberWorker* worker) {
  if (requested == kNearestSchedulingGroup && worker != nullptr) return worker->group();
  RuntimeState& state = State();
  const std::size_t count = state.groups.size();
  if (requested == kNearestSchedulingGroup || requested == kUnspecifiedSchedulingGroup) {
    if (count == 1) return state.groups[0].get();
    if (requested == kNearestSchedulingGroup) {
      if (SchedulingGroup* group = GroupNearCallingThread(state)) return group;
    }
    return state.groups[state.next_group.fetch_add(1, std::memory_order_relaxed) % count]
        .get();
  }
  if (requested >= count) {
    throw std::invalid_argument(
        "weft: FiberAttributes::scheduling_group is " + std::to_string(requested) +
        " but the runtime has " + std::to_string(count) +
        " scheduling group(s); use 0.." + std::to_string(count - 1) +
        ", kNearestSchedulingGroup or kUnspecifiedSchedulingGroup");
  }
  return state.groups[requested].get();
}

std::uint64_t NextFiberId() {
  // Ids come in blocks so that spawning fibers on many threads shares no counter.
  constexpr std::uint64_t kBlock = 1024;
  thread_local std::uint64_t next = 0;
  thread_local std::uint64_t end = 0;
  if (next == end) {
    next = State().next_id_block.fetch_add(kBlock, std::memory_order_relaxed);
    end = next + kBlock;
  }
  return next++;
}

void CreateGroups(const RuntimeOptions& options, const RuntimePlan& plan,
                  RuntimeState* state) {
  const std::vector<GroupPlan>& plans = plan.groups;
  const CpuLayout& layout = plan.layout;
  bool several_nodes = false;
  for (const GroupPlan& group : plans) {
    several_nodes |= group.numa_node != plans.front().numa_node;
  }
  // Placing memory means nothing on one node, or on nodes that may not exist.
  const bool place_memory = several_nodes && options.numa_aware && !layout.synthetic;
  for (const GroupPlan& group : plans) {
    const int memory_node = place_memory ? static_cast<int>(group.numa_node) : -1;
    state->groups.push_back(MakeOnNumaNode<SchedulingGroup>(
        memory_node, state->groups.size(), group.numa_node, memory_node,
        options.run_queue_size, group.worker_cpus, plan.scheduling_policy));
  }
  const std::size_t count = state->groups.size();
  for (std::size_t i = 0; i < count; ++i) {
    SchedulingGroup* group = state->groups[i].get();
    StealPeers peers;
    peers.same_node_ratio = options.work_stealing_ratio;
    peers.other_nodes_ratio = options.cross_numa_work_stealing_ratio;
    // Starting after itself, so that groups do not all pick the same first victim.
    for (std::size_t k = 1; k < count; ++k) {
      SchedulingGroup* peer = state->groups[(i + k) % count].get();
      (peer->numa_node() == group->numa_node() ? peers.same_node : peers.other_nodes)
          .push_back(peer);
    }
    group->SetStealPeers(std::move(peers));
    group->set_chaos_migration(plan.chaos_migration);
    const std::size_t node = group->numa_node();
    if (node >= state->node_groups.size()) state->node_groups.resize(node + 1);
    if (state->node_groups[node] == nullptr) {
      state->node_groups[node] = std::make_unique<NodeGroups>();
    }
    state->node_groups[node]->groups.push_back(group);
  }
  state->node_of_cpu = layout.node_of_cpu;
  state->layout = DescribeGroups(options, layout, plans);
}

}  // namespace weft::detail
