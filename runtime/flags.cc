// The weft_* gflags. They only fill RuntimeOptions (RuntimeOptions::FromFlags);
// the library never parses the command line.
#include "runtime/flags.h"

#include "runtime/runtime_options.h"

DEFINE_uint64(weft_concurrency_hint, 0,
              "Total FiberWorker threads; 0 = one per CPU the process may run on.");
DEFINE_uint64(weft_scheduling_group_size, 0,
              "Workers per scheduling group (1..64); 0 = automatic.");
DEFINE_bool(weft_numa_aware, true, "Keep each scheduling group within one NUMA node.");
DEFINE_uint64(
    weft_work_stealing_ratio, 16,
    "An idle worker steals from groups on its NUMA node on every n-th look for work "
    "(and always before it sleeps); 0 = never.");
DEFINE_uint64(
    weft_cross_numa_work_stealing_ratio, 0,
    "Same as weft_work_stealing_ratio, for groups on other NUMA nodes; 0 = never.");
DEFINE_uint64(weft_fiber_run_queue_size, 65536,
              "Capacity of each scheduling group's run queue (a power of two).");
DEFINE_uint64(weft_fiber_stack_size, 131072,
              "Default fiber stack size in bytes (>= 16384).");
DEFINE_bool(weft_fiber_stack_enable_guard_page, true,
            "Put an inaccessible guard page below every fiber stack.");
DEFINE_uint64(weft_fiber_hibernate_after_ms, 0,
              "Give the stack pages of fibers parked this many ms back to the kernel, "
              "keeping the bytes in use in a buffer; 0 = never (0..86400000).");
DEFINE_string(weft_fiber_worker_accessible_cpus, "",
              "CPUs the workers may run on, e.g. \"0-7,9\"; empty = the process's mask.");
DEFINE_bool(weft_fiber_worker_disallow_cpu_migration, false,
            "Pin each worker to a single CPU.");
DEFINE_uint64(weft_stats_log_interval_ms, 0,
              "Write the runtime's statistics to stderr every this many ms; 0 = never.");
DEFINE_bool(weft_chaos_migration, false,
            "Testing aid: send every fiber made ready to a worker other than the one it "
            "last ran on, to expose code that relies on staying on one thread.");
DEFINE_string(weft_scheduling_policy, "weft",
              "How scheduling groups queue, pick and steal fibers and wake workers: "
              "weft (shared queue + local run stacks), v1 (tRPC's v1, shared queue) or v2 "
              "(tRPC's v2: global queue + work-stealing deque per worker).");
DEFINE_uint64(weft_blocking_pool_max_threads, 64,
              "Most threads the blocking pool (weft::RunBlocking, name lookups) runs at "
              "once, 1..4096; further calls wait in a queue.");
DEFINE_uint64(weft_blocking_pool_idle_timeout_ms, 10000,
              "A blocking pool thread idle this many ms exits (1..86400000).");
DEFINE_uint64(weft_resolve_cache_ttl_ms, 5000,
              "How long weft::io::Resolve caches an answer, in ms; 0 = no cache.");
DEFINE_string(weft_io_engine, "auto",
              "I/O engine: \"auto\" (io_uring for files where the kernel allows it), "
              "\"epoll\" (files on the blocking pool) or \"io_uring\" (files and "
              "sockets in the workers' rings).");
DEFINE_uint64(weft_io_uring_entries, 256,
              "Submission queue entries of each worker's io_uring (a power of two, "
              "2..32768).");
DEFINE_string(weft_topology, "",
              "hwloc synthetic topology to use instead of the machine's, e.g. "
              "\"pack:2 numa:1 core:8 pu:1\".");

namespace weft {

RuntimeOptions RuntimeOptions::FromFlags() {
  RuntimeOptions options;
  options.concurrency_hint = FLAGS_weft_concurrency_hint;
  options.scheduling_group_size = FLAGS_weft_scheduling_group_size;
  options.numa_aware = FLAGS_weft_numa_aware;
  options.work_stealing_ratio = FLAGS_weft_work_stealing_ratio;
  options.cross_numa_work_stealing_ratio = FLAGS_weft_cross_numa_work_stealing_ratio;
  options.run_queue_size = FLAGS_weft_fiber_run_queue_size;
  options.stack_size = FLAGS_weft_fiber_stack_size;
  options.stack_guard_page = FLAGS_weft_fiber_stack_enable_guard_page;
  options.hibernate_parked_fibers_after_ms = FLAGS_weft_fiber_hibernate_after_ms;
  options.accessible_cpus = FLAGS_weft_fiber_worker_accessible_cpus;
  options.disallow_cpu_migration = FLAGS_weft_fiber_worker_disallow_cpu_migration;
  options.topology = FLAGS_weft_topology;
  options.stats_log_interval_ms = FLAGS_weft_stats_log_interval_ms;
  options.chaos_migration = FLAGS_weft_chaos_migration;
  options.scheduling_policy = FLAGS_weft_scheduling_policy;
  options.blocking_pool_max_threads = FLAGS_weft_blocking_pool_max_threads;
  options.blocking_pool_idle_timeout_ms = FLAGS_weft_blocking_pool_idle_timeout_ms;
  options.resolve_cache_ttl_ms = FLAGS_weft_resolve_cache_ttl_ms;
  options.io_engine = FLAGS_weft_io_engine;
  options.io_uring_entries = FLAGS_weft_io_uring_entries;
  return options;
}

}  // namespace weft
