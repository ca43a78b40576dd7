#include "runtime/detail/mutex.h"
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
#include <system_error>
#include <thread>
#include <utility>

#include "runtime/detail/blocking_pool.h"
#include "runtime/detail/check.h"
#include "runtime/detail/futex.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/fiber.h"
#include "runtime/machine/numa_memory.h"
#include "runtime/machine/runtime_plan.h"
#include "runtime/machine/topology.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/file_ring.h"
#include "runtime/scheduling_group/hibernator.h"
#include "runtime/scheduling_group/runtime_state.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/scheduling_group/stack_overflow.h"
#include "runtime/scheduling_group/timer_worker.h"
#include "runtime/io/detail/hooked_calls.h"
#include "runtime/io/detail/standing_stream.h"

namespace weft {
namespace {

// The periodic DumpRuntimeStats of RuntimeOptions::stats_log_interval_ms: an
// entry of the first group's TimerWorker that writes the stats (on the timer
// thread) and arms itself again; the TimerWorker drops it when it stops.
struct StatsLog {
  detail::TimerEntry entry;  // first member: the TimerEntry* is the StatsLog*
  std::chrono::nanoseconds interval{0};
  detail::TimerWorker* worker = nullptr;

  static void OnDue(detail::TimerEntry* due) {
    auto* self = reinterpret_cast<StatsLog*>(due);
    DumpRuntimeStats(std::cerr);
    self->entry.deadline = std::chrono::steady_clock::now() + self->interval;
    self->worker->Submit(&self->entry);
  }
  static void OnDrop(detail::TimerEntry*) {}
};

// One runtime runs at a time; StartRuntime arms it, the TimerWorker's Stop
// drops it.
StatsLog stats_log;

}  // namespace

void RuntimeOptions::Validate() const { detail::PlanRuntime(*this); }

void StartRuntime(const RuntimeOptions& options) {
  // Throws for any invalid option, before any thread starts.
  const detail::RuntimePlan plan = detail::PlanRuntime(options);
  detail::RuntimeState& state = detail::State();
  detail::LockGuard<detail::Mutex> lock(state.lifecycle_mutex);
  WEFT_CHECK(!state.running.load())
      << "StartRuntime() called while the runtime is already running; call "
         "TerminateRuntime() first";
  detail::ConfigureStackPool(options.stack_size, options.stack_guard_page);
  {
    RuntimeOptions engine_options = options;
    engine_options.io_engine = plan.io_engine;
    detail::ChooseFileEngine(engine_options);
    detail::AllowMultishot(plan.io_uring_multishot);
  }
  if (options.stack_guard_page) detail::InstallStackOverflowHandler();
  detail::StopHibernation();  // left running by a StartRuntime that threw
  if (plan.hibernate_after_ms != 0) {
    std::string why;
    if (!detail::StartHibernation(std::chrono::milliseconds(plan.hibernate_after_ms),
                                  &why)) {
      throw std::system_error(
          std::make_error_code(std::errc::operation_not_supported),
          "weft: RuntimeOptions::hibernate_parked_fibers_after_ms "
          "(--weft_fiber_hibernate_after_ms) is set but fibers cannot hibernate here: " +
              why + "; or set it to 0");
    }
  }
  {
    detail::LockGuard<detail::Mutex> groups_lock(state.groups_mutex);
    detail::CreateGroups(options, plan, &state);
  }
  // A hook library in the process (hook/) sends fibers' blocking calls here
  // from now on.
  detail::AttachHooks();
  for (auto& group : state.groups) group->Start();
  detail::BlockingPool::Global().Open(
      options.blocking_pool_max_threads,
      std::chrono::milliseconds(options.blocking_pool_idle_timeout_ms));
  state.resolve_cache_ttl_ms.store(options.resolve_cache_ttl_ms,
                                   std::memory_order_relaxed);
  state.chaos_migration.store(plan.chaos_migration, std::memory_order_relaxed);
  state.closing.store(false, std::memory_order_seq_cst);
  state.running.store(true, std::memory_order_seq_cst);
  if (options.stats_log_interval_ms != 0) {
    stats_log.interval = std::chrono::milliseconds(options.stats_log_interval_ms);
    stats_log.worker = &state.groups.front()->timer_worker();
    stats_log.entry.deadline = std::chrono::steady_clock::now() + stats_log.interval;
    stats_log.entry.on_due = &StatsLog::OnDue;
    stats_log.entry.on_drop = &StatsLog::OnDrop;
    stats_log.entry.dead.store(false, std::memory_order_relaxed);
    stats_log.worker->Submit(&stats_log.entry);
  }
}

void TerminateRuntime() {
  detail::RuntimeState& state = detail::State();
  detail::LockGuard<detail::Mutex> lock(state.lifecycle_mutex);
  if (!state.running.load()) return;
  WEFT_CHECK(detail::CurrentWorker() == nullptr)
      << "TerminateRuntime() called from a fiber or a FiberWorker; it waits for every "
         "fiber to finish, including the caller, and would never return";
  WEFT_CHECK(!detail::BlockingPool::OnPoolThread())
      << "TerminateRuntime() called from a blocking pool thread (inside RunBlocking); it "
         "waits for the fiber that called RunBlocking, which waits for this call";
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
  // A thread outside the workers that readied one of the last fibers may still
  // be inside the group's Push.
  while (state.outside_wakes.load(std::memory_order_acquire) != 0) {
    std::this_thread::yield();
  }
  // No fiber is left to call RunBlocking; tasks still queued or running (name
  // lookups whose callers gave up waiting) run to their end.
  detail::BlockingPool::Global().Close();
  // No fiber is left to sleep or wait with a timeout: pending user timers are
  // dropped without running (their launches fail while closing).
  for (auto& group : state.groups) group->StopTimers();
  for (auto& group : state.groups) group->Stop();
  {
    detail::LockGuard<detail::Mutex> groups_lock(state.groups_mutex);
    state.groups.clear();
    state.node_groups.clear();
    state.node_of_cpu.clear();
    state.layout.clear();
  }
  // Every fiber has finished, so none is hibernated; the stacks stop being
  // registered before they are unmapped.
  detail::StopHibernation();
  detail::ReleasePooledStacks();
  state.running.store(false, std::memory_order_seq_cst);
  state.closing.store(false, std::memory_order_seq_cst);
}

std::size_t GetSchedulingGroupCount() {
  detail::RuntimeState& state = detail::State();
  detail::LockGuard<detail::Mutex> lock(state.groups_mutex);
  return state.running.load() ? state.groups.size() : 0;
}

std::string DescribeLayout() {
  detail::RuntimeState& state = detail::State();
  detail::LockGuard<detail::Mutex> lock(state.groups_mutex);
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
  text << "weft stats: " << stats.scheduling_groups.size() << " scheduling groups ("
       << stats.scheduling_policy << " policy), " << workers << " workers, " << alive
       << " fibers alive";
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
  const BlockingPoolStats& pool = stats.blocking_pool;
  text << "blocking pool: threads " << pool.threads << " (max " << pool.max_threads
       << ", peak " << pool.peak_threads << ") idle " << pool.idle_threads << " queued "
       << pool.queue_depth << " tasks-run " << pool.tasks_run << " started "
       << pool.threads_started << " retired " << pool.threads_retired << "\n";
  const FileIoStats& files = stats.file_io;
  text << "file I/O: engine " << files.engine << " (" << files.reason << ") rings "
       << files.rings << " submitted " << files.submitted << " completed "
       << files.completed << " ring-full-waits " << files.room_waits
       << " blocking-pool-calls " << files.fallbacks << "\n";
  text << "sockets: engine " << files.socket_engine << " multishot-accepts "
       << files.multishot_accepts << " multishot-receives " << files.multishot_receives
       << " received-bytes " << files.multishot_received_bytes << "\n";
  const HibernationStats& hibernation = stats.hibernation;
  if (hibernation.enabled) {
    text << "hibernation: fibers " << hibernation.hibernated_now << " holding "
         << hibernation.saved_bytes_now << " bytes, hibernations "
         << hibernation.hibernations << " wakes " << hibernation.wakes << " raced "
         << hibernation.raced << "\n";
  }
  out << text.str() << std::flush;
}

RuntimeStats GetRuntimeStats() {
  detail::RuntimeState& state = detail::State();
  detail::LockGuard<detail::Mutex> lock(state.groups_mutex);
  RuntimeStats stats;
  for (const auto& group : state.groups) {
    stats.scheduling_groups.emplace_back();
    group->CollectStats(&stats.scheduling_groups.back());
  }
  if (!stats.scheduling_groups.empty()) {
    stats.scheduling_policy = state.groups.front()->policy().name();
    stats.blocking_pool = detail::BlockingPool::Global().Stats();
    detail::FillFileEngineStats(&stats.file_io);
    detail::FillHibernationStats(&stats.hibernation);
    for (const auto& group : state.groups) {
      for (std::size_t i = 0; i < group->worker_count(); ++i) {
        if (const detail::FileRing* ring = group->worker(i)->file_ring()) {
          ring->AddStats(&stats.file_io);
        }
      }
    }
  }
  return stats;
}

}  // namespace weft
