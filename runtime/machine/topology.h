// The CPUs the runtime may place workers on.
#ifndef WEFT_RUNTIME_MACHINE_TOPOLOGY_H_
#define WEFT_RUNTIME_MACHINE_TOPOLOGY_H_

#include <cstddef>
#include <string>
#include <vector>

#include "runtime/runtime_options.h"

namespace weft::detail {

// Parses a CPU list such as "0-7,9" into ascending, distinct CPU numbers.
// Throws std::invalid_argument naming `option` on malformed input.
std::vector<int> ParseCpuList(const std::string& text, const char* option);

struct CpuLayout {
  std::vector<int> cpus;        // CPU numbers the workers may use, ascending
  std::vector<int> numa_nodes;  // numa_nodes[i] is the NUMA node of cpus[i]
  // node_of_cpu[c] is the NUMA node of CPU c, for every CPU of the topology
  // (accessible or not); -1 for numbers it does not have.
  std::vector<int> node_of_cpu;
  // True when the CPUs come from a synthetic topology and may not exist on this
  // machine: workers are then not pinned and memory is not placed.
  bool synthetic = false;
};

// The process's affinity mask (never /proc/cpuinfo, so taskset and containers
// are honoured), or the PUs of options.topology, restricted to
// options.accessible_cpus, each with its NUMA node (from hwloc). Throws
// std::invalid_argument naming the option when the topology does not parse or
// accessible_cpus leaves nothing usable.
CpuLayout DiscoverCpus(const RuntimeOptions& options);

struct GroupPlan {
  std::size_t numa_node = 0;
  // One entry per worker: the CPUs it may run on; empty = not pinned.
  std::vector<std::vector<int>> worker_cpus;
};

// Splits the workers into scheduling groups:
// - concurrency_hint workers (0 = one per CPU of `layout`);
// - with numa_aware and several NUMA nodes, workers are spread over the nodes
//   in proportion to their CPUs, and no group spans two nodes;
// - per node (or over all CPUs), groups of scheduling_group_size, or with 0 the
//   fewest groups of at most 15, sizes differing by at most one (so every worker
//   is used, and a machine of up to 15 CPUs gets a single group);
// - workers are bound to their node's CPUs (or, with disallow_cpu_migration, one
//   CPU each) unless the layout is synthetic.
// Throws std::invalid_argument for combinations that cannot be honoured.
std::vector<GroupPlan> PlanGroups(const RuntimeOptions& options, const CpuLayout& layout);

// A few lines for people: the workers, groups, NUMA nodes, CPUs and stealing
// ratios that `plans` give (see DescribeLayout() in runtime.h).
std::string DescribeGroups(const RuntimeOptions& options, const CpuLayout& layout,
                           const std::vector<GroupPlan>& plans);

// "0-3,8,10-11" for {0,1,2,3,8,10,11}; `cpus` ascending.
std::string FormatCpuList(const std::vector<int>& cpus);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_MACHINE_TOPOLOGY_H_
