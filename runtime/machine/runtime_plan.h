// What a runtime started with given options gets on this machine: every
// option checked, the CPUs, and the scheduling groups. StartRuntime() plans
// first, so that invalid options fail before any thread starts.
#ifndef WEFT_RUNTIME_MACHINE_RUNTIME_PLAN_H_
#define WEFT_RUNTIME_MACHINE_RUNTIME_PLAN_H_

#include <cstddef>
#include <string>
#include <vector>

#include "runtime/machine/topology.h"
#include "runtime/runtime_options.h"

namespace weft::detail {

struct RuntimePlan {
  CpuLayout layout;
  std::vector<GroupPlan> groups;
  // RuntimeOptions::chaos_migration, or WEFT_CHAOS_MIGRATION from the
  // environment.
  bool chaos_migration = false;
  // RuntimeOptions::scheduling_policy, or WEFT_SCHEDULING_POLICY from the
  // environment.
  std::string scheduling_policy;
  // RuntimeOptions::io_engine, or WEFT_IO_ENGINE from the environment.
  std::string io_engine;
  // RuntimeOptions::hibernate_parked_fibers_after_ms, or
  // WEFT_HIBERNATE_AFTER_MS from the environment.
  std::size_t hibernate_after_ms = 0;
  // Whether the io_uring socket engine may use multishot accepts and
  // receives: false when WEFT_IO_URING_MULTISHOT is "0" (to compare them
  // with one request per call).
  bool io_uring_multishot = true;
};

// The plan for `options` on this machine. Every option is checked first, so
// this throws std::invalid_argument for a value out of range, a bad topology or
// accessible_cpus, a bad WEFT_CHAOS_MIGRATION, WEFT_SCHEDULING_POLICY,
// WEFT_IO_ENGINE or WEFT_HIBERNATE_AFTER_MS, or a layout that cannot be made.
RuntimePlan PlanRuntime(const RuntimeOptions& options);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_MACHINE_RUNTIME_PLAN_H_
