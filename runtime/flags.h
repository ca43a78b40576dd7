// Declarations of the weft_* gflags (defined in runtime/flags.cc), for code that
// reads or sets them directly. The flags only fill RuntimeOptions through
// RuntimeOptions::FromFlags(); an embedding framework can ignore them and fill
// RuntimeOptions itself. weft never parses the command line.
#ifndef WEFT_RUNTIME_FLAGS_H_
#define WEFT_RUNTIME_FLAGS_H_

#include <gflags/gflags.h>

DECLARE_uint64(weft_concurrency_hint);
DECLARE_uint64(weft_scheduling_group_size);
DECLARE_bool(weft_numa_aware);
DECLARE_uint64(weft_work_stealing_ratio);
DECLARE_uint64(weft_cross_numa_work_stealing_ratio);
DECLARE_uint64(weft_fiber_run_queue_size);
DECLARE_uint64(weft_fiber_stack_size);
DECLARE_bool(weft_fiber_stack_enable_guard_page);
DECLARE_string(weft_fiber_worker_accessible_cpus);
DECLARE_bool(weft_fiber_worker_disallow_cpu_migration);
DECLARE_string(weft_topology);
DECLARE_uint64(weft_stats_log_interval_ms);
DECLARE_bool(weft_chaos_migration);
DECLARE_uint64(weft_blocking_pool_max_threads);
DECLARE_uint64(weft_blocking_pool_idle_timeout_ms);
DECLARE_uint64(weft_resolve_cache_ttl_ms);
DECLARE_string(weft_io_engine);
DECLARE_uint64(weft_io_uring_entries);

#endif  // WEFT_RUNTIME_FLAGS_H_
