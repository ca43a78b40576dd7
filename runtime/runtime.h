// Lifecycle and configuration of the weft fiber runtime.
//
//   weft::Runtime runtime;            // StartRuntime(RuntimeOptions::FromFlags())
//   weft::StartFiberDetached([] { ... });
//   // ~Runtime(): TerminateRuntime() waits for every fiber, then stops.
//
// Start/terminate may be repeated in one process, but not overlapped: calling
// StartRuntime() while a runtime is running aborts with a message. All functions
// here are thread-safe unless noted.
#ifndef WEFT_RUNTIME_RUNTIME_H_
#define WEFT_RUNTIME_RUNTIME_H_

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace weft {

// Every tuning knob of the runtime. Defaults equal the gflags' defaults.
// Validate() (called by StartRuntime) throws std::invalid_argument naming the
// offending option and its accepted range.
struct RuntimeOptions {
  // Total FiberWorker threads. 0: one per CPU the process may run on
  // (its affinity mask, restricted by accessible_cpus). Accepted: 0..1024.
  std::size_t concurrency_hint = 0;
  // Workers per scheduling group. 0: automatic (all workers in one group up to
  // 15, otherwise even groups of 8..15). Accepted: 0 or 1..64.
  std::size_t scheduling_group_size = 0;
  // Keep each scheduling group within one NUMA node.
  bool numa_aware = true;
  // An idle worker (its group's queue empty) takes a fiber from another group
  // on its NUMA node on every n-th look for work, and once more before it goes
  // to sleep; a group whose workers are all busy wakes a sleeping worker of a
  // peer group when it queues a fiber. Stolen fibers move to the thief's group; fibers
  // started with scheduling_group_local are never stolen. 0 = never.
  std::size_t work_stealing_ratio = 16;
  // Same, for groups on other NUMA nodes. 0 = never (the default: a stolen
  // fiber's memory stays on the node it came from).
  std::size_t cross_numa_work_stealing_ratio = 0;
  // Capacity of each group's lock-free run queue; a power of two in
  // 2..16777216. A full queue loses nothing: extra fibers wait in an overflow
  // list that workers drain, counted in SchedulingGroupStats::run_queue_overflows.
  std::size_t run_queue_size = 65536;
  // Default fiber stack size in bytes, 16 KiB..1 GiB, rounded up to whole pages.
  std::size_t stack_size = 131072;
  // Put an inaccessible guard page below every fiber stack so that an overflow
  // faults instead of corrupting memory.
  bool stack_guard_page = true;
  // CPUs the workers may use, e.g. "0-7,9"; empty = every CPU in the process's
  // affinity mask. Must be a subset of that mask.
  std::string accessible_cpus;
  // Pin each worker to one CPU instead of letting it float over its group's CPUs.
  bool disallow_cpu_migration = false;
  // Optional hwloc synthetic topology, e.g. "pack:2 numa:1 core:8 pu:1", used
  // instead of the machine's so that layouts can be tested anywhere.
  std::string topology;
  // Every this many milliseconds, write DumpRuntimeStats() to standard error;
  // 0 = never. For watching a running service; 0..86400000.
  std::size_t stats_log_interval_ms = 0;
  // Chaos mode, for tests: every time a fiber is made ready (started, woken,
  // yielding) it is sent to a worker other than the one it last ran on, so that
  // code which wrongly relies on staying on one thread (caching a thread_local's
  // address, a thread id, errno, a pthread lock held across a wait) fails fast.
  // Fibers run slower. It has no effect in a scheduling group of one worker.
  // The environment variable WEFT_CHAOS_MIGRATION=1 turns it on for every
  // runtime the process starts, whatever the options say.
  bool chaos_migration = false;

  // Options filled from the weft_* gflags. Never parses the command line.
  static RuntimeOptions FromFlags();
  // Throws std::invalid_argument if any option is out of range.
  void Validate() const;
};

// Counters of one FiberWorker. Each is written by its worker only and read
// without stopping it, so a snapshot is approximate while the runtime runs.
struct WorkerStats {
  std::uint64_t fibers_created = 0;   // started by fibers running on this worker
  std::uint64_t fibers_finished = 0;  // fibers that ended on this worker
  std::uint64_t switches = 0;         // fibers resumed on this worker
  std::uint64_t spins = 0;            // times it became one of the two spinners
  std::uint64_t sleeps = 0;           // times it slept on its futex
  std::uint64_t wakeups = 0;          // times it was woken from sleep
  // Fibers it took from the queues of other groups on its NUMA node / on others.
  std::uint64_t steals_within_numa_node = 0;
  std::uint64_t steals_across_numa_nodes = 0;
  // Fibers it took from the local run stack of another worker of its group
  // that had not switched fibers for a while (preempted by the system, or
  // running a fiber that does not block) while it was running fibers itself.
  std::uint64_t stranded_rescues = 0;
};

struct SchedulingGroupStats {
  std::size_t numa_node = 0;
  std::uint64_t fibers_created = 0;  // placed in this group, by fibers or threads
  std::uint64_t fibers_finished = 0;
  // Fibers stolen from this group by workers of other groups.
  std::uint64_t fibers_stolen_away = 0;
  // created + stolen in (the steals counts) - stolen away - finished: ready,
  // running or blocked fibers that belong to this group now.
  std::uint64_t fibers_alive = 0;
  std::size_t run_queue_depth = 0;        // ready fibers waiting, overflow included
  std::uint64_t run_queue_overflows = 0;  // pushes that found the queue full
  // Deadlines the group's TimerWorker served: user timers, sleeps and the
  // timeouts of timed waits that came due.
  std::uint64_t timers_fired = 0;
  // Deadlines the TimerWorker holds now, cancelled ones not yet dropped
  // included (it drops those in batches).
  std::uint64_t timers_pending = 0;
  std::uint64_t spins = 0;  // sums over the workers
  std::uint64_t sleeps = 0;
  std::uint64_t wakeups = 0;
  std::uint64_t steals_within_numa_node = 0;
  std::uint64_t steals_across_numa_nodes = 0;
  std::uint64_t stranded_rescues = 0;
  std::vector<WorkerStats> workers;
};

struct RuntimeStats {
  std::vector<SchedulingGroupStats> scheduling_groups;
};

// GetRuntimeStats() as text, one line per scheduling group and one per worker:
//   weft stats: 2 scheduling groups, 4 workers, 12 fibers alive
//   group 0 (NUMA node 0): alive 7 created 1200 finished 1193 ...
//     worker 0: created 600 finished 598 switches 5201 spins 40 ...
// Safe from fibers and plain threads; prints "weft stats: not running" when the
// runtime is not running.
void DumpRuntimeStats(std::ostream& out);

// Starts FiberWorker threads as `options` describe. Throws std::invalid_argument
// for invalid options before any thread starts. Aborts if already running.
void StartRuntime(const RuntimeOptions& options = RuntimeOptions::FromFlags());

// Waits for every fiber that is running, ready or blocked to finish, then stops
// all workers. Fibers blocked forever make it wait forever (like joining a thread
// that never ends). Must not be called from a fiber. No-op if not running.
void TerminateRuntime();

// RAII: the constructor starts the runtime, the destructor terminates it.
class Runtime {
 public:
  explicit Runtime(const RuntimeOptions& options = RuntimeOptions::FromFlags()) {
    StartRuntime(options);
  }
  ~Runtime() { TerminateRuntime(); }
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
};

// Number of scheduling groups of the running runtime; 0 when it is not running.
std::size_t GetSchedulingGroupCount();

// How the running runtime laid out its workers: one line for the totals, one
// per scheduling group (NUMA node, workers, CPUs they may run on), and the
// stealing ratios and queue/stack sizes, e.g.
//   16 workers in 2 scheduling groups on 2 NUMA nodes (this machine, CPUs 0-15)
//     group 0: NUMA node 0, 8 workers, on CPUs 0-7
//     group 1: NUMA node 1, 8 workers, on CPUs 8-15
//   work stealing: within a NUMA node on every 16th look for work; across ...
// Empty when the runtime is not running.
std::string DescribeLayout();
// The layout StartRuntime(options) would choose on this machine, without
// starting anything. Throws std::invalid_argument as StartRuntime would.
std::string DescribeLayout(const RuntimeOptions& options);

// True on a FiberWorker thread (inside a fiber or the worker's scheduler loop).
bool IsRunningInFiberWorker();

// A snapshot of the counters; empty when the runtime is not running.
RuntimeStats GetRuntimeStats();

}  // namespace weft

#endif  // WEFT_RUNTIME_RUNTIME_H_
