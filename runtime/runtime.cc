#include "runtime/runtime.h"

#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "runtime/detail/check.h"
#include "runtime/detail/futex.h"
#include "runtime/detail/runtime_state.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/fiber.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/scheduling_group/topology.h"

namespace weft {
namespace detail {
namespace {

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
  // ticket holders read it without groups_mutex.
  std::vector<std::unique_ptr<SchedulingGroup>> groups;
  std::atomic<std::size_t> next_group{0};
  std::atomic<std::uint64_t> next_id_block{1};
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

SchedulingGroup* GroupForNewFiber(std::size_t requested, FiberWorker* worker) {
  if (requested == kNearestSchedulingGroup && worker != nullptr) return worker->group();
  RuntimeState& state = State();
  const std::size_t count = state.groups.size();
  if (requested == kNearestSchedulingGroup || requested == kUnspecifiedSchedulingGroup) {
    if (count == 1) return state.groups[0].get();
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

void StartRuntime(const RuntimeOptions& options) {
  detail::ValidateOptionRanges(options);
  // Throws for a bad topology, accessible_cpus or layout, before any thread starts.
  const std::vector<detail::GroupPlan> plans =
      detail::PlanGroups(options, detail::DiscoverCpus(options));
  detail::RuntimeState& state = detail::State();
  std::lock_guard<std::mutex> lock(state.lifecycle_mutex);
  WEFT_CHECK(!state.running.load())
      << "StartRuntime() called while the runtime is already running; call "
         "TerminateRuntime() first";
  detail::ConfigureStackPool(options.stack_size, options.stack_guard_page);
  {
    std::lock_guard<std::mutex> groups_lock(state.groups_mutex);
    for (const detail::GroupPlan& plan : plans) {
      state.groups.push_back(std::make_unique<detail::SchedulingGroup>(
          state.groups.size(), plan.numa_node, options.run_queue_size, plan.worker_cpus));
    }
  }
  for (auto& group : state.groups) group->Start();
  state.closing.store(false, std::memory_order_seq_cst);
  state.running.store(true, std::memory_order_seq_cst);
}

void TerminateRuntime() {
  detail::RuntimeState& state = detail::State();
  std::lock_guard<std::mutex> lock(state.lifecycle_mutex);
  if (!state.running.load()) return;
  WEFT_CHECK(detail::CurrentWorker() == nullptr)
      << "TerminateRuntime() called from a fiber or a FiberWorker; it waits for every "
         "fiber to finish, including the caller, and would never return";
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
  for (auto& group : state.groups) group->Stop();
  {
    std::lock_guard<std::mutex> groups_lock(state.groups_mutex);
    state.groups.clear();
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

bool IsRunningInFiberWorker() { return detail::CurrentWorker() != nullptr; }

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
