#include "runtime/flags.h"
#include "runtime/machine/runtime_plan.h"
#include "runtime/runtime.h"

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
  options.accessible_cpus = FLAGS_weft_fiber_worker_accessible_cpus;
  options.disallow_cpu_migration = FLAGS_weft_fiber_worker_disallow_cpu_migration;
  options.topology = FLAGS_weft_topology;
  options.stats_log_interval_ms = FLAGS_weft_stats_log_interval_ms;
  options.chaos_migration = FLAGS_weft_chaos_migration;
  return options;
}

void RuntimeOptions::Validate() const { detail::PlanRuntime(*this); }

}  // namespace weft
