// The counters of GetRuntimeStats() (runtime/runtime.h), in a header of their
// own so that the workers and groups that fill them stay below runtime.h.
#ifndef WEFT_RUNTIME_RUNTIME_STATS_H_
#define WEFT_RUNTIME_RUNTIME_STATS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace weft {

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

// The blocking pool of runtime/blocking.h: the plain threads that run
// RunBlocking calls and name lookups. Read under the pool's lock, so one
// snapshot is consistent in itself. The counters start at zero with each
// StartRuntime.
struct BlockingPoolStats {
  std::size_t max_threads = 0;   // RuntimeOptions::blocking_pool_max_threads
  std::size_t threads = 0;       // pool threads alive now, busy or idle
  std::size_t idle_threads = 0;  // of those, waiting for work
  // Tasks accepted and waiting for a thread (all threads busy, max reached).
  std::size_t queue_depth = 0;
  std::size_t peak_threads = 0;  // most threads alive at once so far
  // Tasks whose thread is back from them (a moment after the fiber that
  // waited for one resumed).
  std::uint64_t tasks_run = 0;
  std::uint64_t threads_started = 0;  // threads the pool has created
  std::uint64_t threads_retired = 0;  // threads that exited after their idle time
};

// File calls of runtime/io/file.h. The counters start at zero with each
// StartRuntime.
struct FileIoStats {
  std::string engine;            // "io_uring" or "blocking pool"
  std::string reason;            // why that engine
  std::string socket_engine;     // weft::io sockets: "io_uring" or "epoll"
  std::size_t rings = 0;         // workers' rings created so far (on first use)
  std::uint64_t submitted = 0;   // requests submitted to the rings
  std::uint64_t completed = 0;   // of those, completions reaped
  std::uint64_t room_waits = 0;  // times a fiber found its worker's ring full
  // Connections the listeners' multishot accepts took (io_uring socket engine).
  std::uint64_t multishot_accepts = 0;
  // Receives the connections' multishot receives made (io_uring socket
  // engine), and the bytes they received.
  std::uint64_t multishot_receives = 0;
  std::uint64_t multishot_received_bytes = 0;
  // Fibers' calls that ran on the blocking pool instead (engine, or a ring the
  // kernel refused to create).
  std::uint64_t fallbacks = 0;
};

// Hibernated fibers (RuntimeOptions::hibernate_parked_fibers_after_ms).
struct HibernationStats {
  bool enabled = false;
  std::uint64_t hibernated_now = 0;   // fibers whose stack pages are given back now
  std::uint64_t saved_bytes_now = 0;  // stack bytes their copies hold
  std::uint64_t hibernations = 0;     // since StartRuntime
  std::uint64_t wakes = 0;            // hibernated fibers woken since StartRuntime
  // Fibers found woken while being hibernated, and left awake.
  std::uint64_t raced = 0;
};

struct RuntimeStats {
  // RuntimeOptions::scheduling_policy in effect (or WEFT_SCHEDULING_POLICY's);
  // empty when the runtime is not running.
  std::string scheduling_policy;
  std::vector<SchedulingGroupStats> scheduling_groups;
  BlockingPoolStats blocking_pool;
  FileIoStats file_io;
  HibernationStats hibernation;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_RUNTIME_STATS_H_
