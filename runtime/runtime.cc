#include "runtime/runtime.h"

#include <sched.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "runtime/detail/check.h"
#include "runtime/detail/futex.h"
#include "runtime/detail/runtime_state.h"
#include "runtime/detail/stack_overflow.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/fiber.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/numa_memory.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/scheduling_group/topology.h"
#include "runtime/timer/timer.h"

namespace weft {
namespace detail {
namespace {

// The groups on one NUMA node, for placing fibers started by plain threads.
struct NodeGroups {
  std::vector<SchedulingGroup*> groups;
  std::atomic<std::size_t> next{0};
};

// The runtime's global state. Never destroyed: plain threads may still probe it
// (and fail to get a launch ticket) during and after process exit.
struct RuntimeState {
  std::mutex lifecycle_mutex;  // serializes StartRuntime / TerminateRuntime
  std::atomic<bool> running{false};
  std::atomic<bool> closing{false};
  std::atomic<std::int64_t> launch_tickets{0};
  // Guards `groups` against the readers below that may run on any thread, fibers
  // included, at any time. TerminateRuntime holds lifecycle_mutex while it waits
  // for fibers, so those readers must not take that one.
  std::mutex groups_mutex;
  // Replaced only while running is false and no ticket is held, so fibers and
  // ticket holders read these without groups_mutex.
  std::vector<NumaNodePtr<SchedulingGroup>> groups;
  std::atomic<std::size_t> next_group{0};
  std::vector<int> node_of_cpu;                          // see CpuLayout
  std::vector<std::unique_ptr<NodeGroups>> node_groups;  // by NUMA node; may be null
  std::string layout;  // DescribeLayout(); guarded by groups_mutex
  std::atomic<std::uint64_t> next_id_block{1};
  TimerId stats_timer = 0;                   // the periodic DumpRuntimeStats, if any
  std::atomic<bool> chaos_migration{false};  // of the running runtime
};

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

}  // namespace

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

}  // namespace detail

namespace detail {
namespace {

// Creates the groups of `plans`, each in memory of its NUMA node, and tells each
// which others it may steal from.
void CreateGroups(const RuntimeOptions& options, const CpuLayout& layout,
                  const std::vector<GroupPlan>& plans, bool chaos_migration,
                  RuntimeState* state) {
  bool several_nodes = false;
  for (const GroupPlan& plan : plans) {
    several_nodes |= plan.numa_node != plans.front().numa_node;
  }
  // Placing memory means nothing on one node, or on nodes that may not exist.
  const bool place_memory = several_nodes && options.numa_aware && !layout.synthetic;
  for (const GroupPlan& plan : plans) {
    const int memory_node = place_memory ? static_cast<int>(plan.numa_node) : -1;
    state->groups.push_back(MakeOnNumaNode<SchedulingGroup>(
        memory_node, state->groups.size(), plan.numa_node, memory_node,
        options.run_queue_size, plan.worker_cpus));
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
    group->set_chaos_migration(chaos_migration);
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

}  // namespace
}  // namespace detail

void StartRuntime(const RuntimeOptions& options) {
  // Throws for any invalid option, before any thread starts.
  const detail::RuntimePlan plan = detail::PlanRuntime(options);
  detail::RuntimeState& state = detail::State();
  std::lock_guard<std::mutex> lock(state.lifecycle_mutex);
  WEFT_CHECK(!state.running.load())
      << "StartRuntime() called while the runtime is already running; call "
         "TerminateRuntime() first";
  detail::ConfigureStackPool(options.stack_size, options.stack_guard_page);
  if (options.stack_guard_page) detail::InstallStackOverflowHandler();
  {
    std::lock_guard<std::mutex> groups_lock(state.groups_mutex);
    detail::CreateGroups(options, plan.layout, plan.groups, plan.chaos_migration, &state);
  }
  for (auto& group : state.groups) group->Start();
  state.chaos_migration.store(plan.chaos_migration, std::memory_order_relaxed);
  state.closing.store(false, std::memory_order_seq_cst);
  state.running.store(true, std::memory_order_seq_cst);
  if (options.stats_log_interval_ms != 0) {
    const std::chrono::milliseconds interval(options.stats_log_interval_ms);
    state.stats_timer = SetTimer(std::chrono::steady_clock::now() + interval, interval,
                                 [] { DumpRuntimeStats(std::cerr); });
  }
}

void TerminateRuntime() {
  detail::RuntimeState& state = detail::State();
  std::lock_guard<std::mutex> lock(state.lifecycle_mutex);
  if (!state.running.load()) return;
  WEFT_CHECK(detail::CurrentWorker() == nullptr)
      << "TerminateRuntime() called from a fiber or a FiberWorker; it waits for every "
         "fiber to finish, including the caller, and would never return";
  if (state.stats_timer != 0) KillTimer(std::exchange(state.stats_timer, 0));
  // No new fibers from plain threads; fibers may still start fibers.
  state.closing.store(true, std::memory_order_seq_cst);
  while (state.launch_tickets.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
  // Wait for quiescence. Exiting fibers do not signal us (that would cost every
  // exit a fence); a short timed wait re-checks the counters instead.
  std::atomic<std::uint32_t> never_signalled{0};
  constexpr long kRecheckNs = 200'000;
  for (long backoff = 1'000; detail::AliveFibers(state) != 0;
       backoff = std::min(backoff * 2, kRecheckNs)) {
    detail::FutexWaitFor(&never_signalled, 0, backoff);
  }
  // No fiber is left to sleep or wait with a timeout: pending user timers are
  // dropped without running (their launches fail while closing).
  for (auto& group : state.groups) group->StopTimers();
  for (auto& group : state.groups) group->Stop();
  {
    std::lock_guard<std::mutex> groups_lock(state.groups_mutex);
    state.groups.clear();
    state.node_groups.clear();
    state.node_of_cpu.clear();
    state.layout.clear();
  }
  detail::ReleasePooledStacks();
  state.running.store(false, std::memory_order_seq_cst);
  state.closing.store(false, std::memory_order_seq_cst);
}

std::size_t GetSchedulingGroupCount() {
  detail::RuntimeState& state = detail::State();
  std::lock_guard<std::mutex> lock(state.groups_mutex);
  return state.running.load() ? state.groups.size() : 0;
}

std::string DescribeLayout() {
  detail::RuntimeState& state = detail::State();
  std::lock_guard<std::mutex> lock(state.groups_mutex);
  return state.layout;
}

std::string DescribeLayout(const RuntimeOptions& options) {
  const detail::RuntimePlan plan = detail::PlanRuntime(options);
  return detail::DescribeGroups(options, plan.layout, plan.groups);
}

bool IsRunningInFiberWorker() { return detail::CurrentWorker() != nullptr; }

void DumpRuntimeStats(std::ostream& out) {
  const RuntimeStats stats = GetRuntimeStats();
  if (stats.scheduling_groups.empty()) {
    out << "weft stats: not running\n";
    return;
  }
  std::size_t workers = 0;
  std::uint64_t alive = 0;
  for (const SchedulingGroupStats& group : stats.scheduling_groups) {
    workers += group.workers.size();
    alive += group.fibers_alive;
  }
  std::ostringstream text;  // one write, so that concurrent output does not interleave
  text << "weft stats: " << stats.scheduling_groups.size() << " scheduling groups, "
       << workers << " workers, " << alive << " fibers alive";
  if (detail::State().chaos_migration.load(std::memory_order_relaxed)) {
    text << ", chaos migration on (" << detail::ChaosFallbacks()
         << " fallbacks to the previous worker)";
  }
  text << "\n";
  for (std::size_t g = 0; g < stats.scheduling_groups.size(); ++g) {
    const SchedulingGroupStats& group = stats.scheduling_groups[g];
    text << "group " << g << " (NUMA node " << group.numa_node << "): alive "
         << group.fibers_alive << " created " << group.fibers_created << " finished "
         << group.fibers_finished << " stolen-away " << group.fibers_stolen_away
         << " queued " << group.run_queue_depth << " overflows "
         << group.run_queue_overflows << " timers-fired " << group.timers_fired
         << " timers-pending " << group.timers_pending << " spins " << group.spins
         << " sleeps " << group.sleeps << " wakeups " << group.wakeups
         << " steals-in-node " << group.steals_within_numa_node << " steals-cross-node "
         << group.steals_across_numa_nodes << " stranded-rescues "
         << group.stranded_rescues << "\n";
    for (std::size_t w = 0; w < group.workers.size(); ++w) {
      const WorkerStats& worker = group.workers[w];
      text << "  worker " << w << ": created " << worker.fibers_created << " finished "
           << worker.fibers_finished << " switches " << worker.switches << " spins "
           << worker.spins << " sleeps " << worker.sleeps << " wakeups " << worker.wakeups
           << " steals-in-node " << worker.steals_within_numa_node
           << " steals-cross-node " << worker.steals_across_numa_nodes
           << " stranded-rescues " << worker.stranded_rescues << "\n";
    }
  }
  out << text.str() << std::flush;
}

RuntimeStats GetRuntimeStats() {
  detail::RuntimeState& state = detail::State();
  std::lock_guard<std::mutex> lock(state.groups_mutex);
  RuntimeStats stats;
  for (const auto& group : state.groups) {
    stats.scheduling_groups.emplace_back();
    group->CollectStats(&stats.scheduling_groups.back());
  }
  return stats;
}

}  // namespace weft
