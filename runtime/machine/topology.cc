#include "runtime/machine/topology.h"

#include <hwloc.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
#include <sstream>
#include <stdexcept>

namespace weft::detail {
namespace {

constexpr long kMaxCpu = 1 << 16;

[[noreturn]] void Reject(const char* option, const std::string& text,
                         const std::string& why) {
  throw std::invalid_argument(std::string("weft: ") + option + " \"" + text + "\" " +
                              why);
}

long ParseNumber(const std::string& text, std::size_t* pos, const char* option) {
  if (*pos >= text.size() || !std::isdigit(static_cast<unsigned char>(text[*pos]))) {
    Reject(option, text,
           "is malformed: expected a CPU number at offset " + std::to_string(*pos) +
               " (format: \"0-7,9\")");
  }
  long value = 0;
  while (*pos < text.size() && std::isdigit(static_cast<unsigned char>(text[*pos]))) {
    value = value * 10 + (text[*pos] - '0');
    if (value > kMaxCpu) Reject(option, text, "names a CPU number above 65536");
    ++*pos;
  }
  return value;
}

// Loads the machine's topology, or a synthetic one. Throws for a bad description.
hwloc_topology_t LoadTopology(const std::string& synthetic) {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) {
    throw std::runtime_error("weft: hwloc_topology_init failed");
  }
  if (!synthetic.empty() &&
      hwloc_topology_set_synthetic(topology, synthetic.c_str()) != 0) {
    hwloc_topology_destroy(topology);
    Reject("topology", synthetic,
           "is not a valid hwloc synthetic description (example: \"pack:2 numa:1 core:8 "
           "pu:1\")");
  }
  if (hwloc_topology_load(topology) != 0) {
    hwloc_topology_destroy(topology);
    throw std::runtime_error("weft: hwloc_topology_load failed");
  }
  return topology;
}

int NumaNodeOf(hwloc_topology_t topology, int cpu) {
  hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topology, static_cast<unsigned>(cpu));
  if (pu == nullptr || pu->nodeset == nullptr) return 0;
  int node = hwloc_bitmap_first(pu->nodeset);
  return node < 0 ? 0 : node;
}

std::vector<int> SyntheticCpus(hwloc_topology_t topology) {
  std::vector<int> cpus;
  int n = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
  for (int i = 0; i < n; ++i) {
    cpus.push_back(
        static_cast<int>(hwloc_get_obj_by_type(topology, HWLOC_OBJ_PU, i)->os_index));
  }
  std::sort(cpus.begin(), cpus.end());
  return cpus;
}

std::vector<int> AffinityCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) {
    throw std::runtime_error("weft: sched_getaffinity failed");
  }
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

// Splits `workers` into `groups` sizes differing by at most one.
std::vector<std::size_t> EvenSplit(std::size_t workers, std::size_t groups) {
  std::vector<std::size_t> sizes(groups, workers / groups);
  for (std::size_t i = 0; i < workers % groups; ++i) ++sizes[i];
  return sizes;
}

std::vector<std::size_t> GroupSizes(std::size_t workers, std::size_t group_size) {
  constexpr std::size_t kMaxAutoGroupSize = 15;
  const std::size_t size = group_size != 0 ? group_size : kMaxAutoGroupSize;
  return EvenSplit(workers, (workers + size - 1) / size);
}

// Shares `total` out in proportion to `weights` (largest remainder first).
std::vector<std::size_t> Proportional(std::size_t total,
                                      const std::vector<std::size_t>& weights) {
  std::size_t sum = 0;
  for (std::size_t w : weights) sum += w;
  std::vector<std::size_t> shares(weights.size());
  std::vector<std::pair<std::size_t, std::size_t>> remainders;  // (remainder, index)
  std::size_t given = 0;
  for (std::size_t i = 0; i < weights.size(); ++i) {
    shares[i] = total * weights[i] / sum;
    given += shares[i];
    remainders.emplace_back(total * weights[i] % sum, i);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (std::size_t k = 0; given < total; ++k, ++given) ++shares[remainders[k].second];
  return shares;
}

}  // namespace

std::vector<int> ParseCpuList(const std::string& text, const char* option) {
  std::vector<int> cpus;
  std::size_t pos = 0;
  while (pos < text.size()) {
    long first = ParseNumber(text, &pos, option);
    long last = first;
    if (pos < text.size() && text[pos] == '-') {
      ++pos;
      last = ParseNumber(text, &pos, option);
      if (last < first) {
        Reject(option, text,
               "has a descending range " + std::to_string(first) + "-" +
                   std::to_string(last) + "; write it low-high");
      }
    }
    for (long cpu = first; cpu <= last; ++cpu) cpus.push_back(static_cast<int>(cpu));
    if (pos < text.size()) {
      if (text[pos] != ',' || pos + 1 == text.size()) {
        Reject(option, text,
               "is malformed at offset " + std::to_string(pos) +
                   " (format: comma-separated CPUs and ranges, \"0-7,9\")");
      }
      ++pos;
    }
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

CpuLayout DiscoverCpus(const RuntimeOptions& options) {
  CpuLayout layout;
  layout.synthetic = !options.topology.empty();
  hwloc_topology_t topology = LoadTopology(options.topology);
  struct Destroyer {
    hwloc_topology_t topology;
    ~Destroyer() { hwloc_topology_destroy(topology); }
  } destroyer{topology};
  layout.cpus = layout.synthetic ? SyntheticCpus(topology) : AffinityCpus();
  if (!options.accessible_cpus.empty()) {
    std::vector<int> wanted = ParseCpuList(options.accessible_cpus, "accessible_cpus");
    for (int cpu : wanted) {
      if (!std::binary_search(layout.cpus.begin(), layout.cpus.end(), cpu)) {
        Reject("accessible_cpus", options.accessible_cpus,
               "names CPU " + std::to_string(cpu) +
                   ", which this process may not run on (" +
                   (layout.synthetic ? "not in the synthetic topology"
                                     : "outside its affinity mask; see taskset -p") +
                   ")");
      }
    }
    layout.cpus = wanted;
  }
  if (layout.cpus.empty()) {
    Reject("accessible_cpus", options.accessible_cpus, "leaves no CPU for the workers");
  }
  for (int cpu : layout.cpus) layout.numa_nodes.push_back(NumaNodeOf(topology, cpu));
  const int pus = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
  for (int i = 0; i < pus; ++i) {
    const int cpu =
        static_cast<int>(hwloc_get_obj_by_type(topology, HWLOC_OBJ_PU, i)->os_index);
    if (cpu >= kMaxCpu) continue;
    if (static_cast<std::size_t>(cpu) >= layout.node_of_cpu.size()) {
      layout.node_of_cpu.resize(cpu + 1, -1);
    }
    layout.node_of_cpu[cpu] = NumaNodeOf(topology, cpu);
  }
  return layout;
}

std::vector<GroupPlan> PlanGroups(const RuntimeOptions& options,
                                  const CpuLayout& layout) {
  const std::size_t workers =
      options.concurrency_hint != 0 ? options.concurrency_hint : layout.cpus.size();
  if (options.disallow_cpu_migration && workers > layout.cpus.size()) {
    throw std::invalid_argument(
        "weft: RuntimeOptions::disallow_cpu_migration pins each worker to its own CPU, "
        "but concurrency_hint asks for " +
        std::to_string(workers) + " workers on " + std::to_string(layout.cpus.size()) +
        " accessible CPUs; lower concurrency_hint or allow migration");
  }
  // CPUs by NUMA node, nodes in ascending order; a single bucket without NUMA
  // awareness.
  std::vector<int> nodes(layout.numa_nodes);
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  if (!options.numa_aware) nodes.assign(1, nodes.front());
  std::vector<std::vector<int>> node_cpus(nodes.size());
  for (std::size_t i = 0; i < layout.cpus.size(); ++i) {
    std::size_t bucket = 0;
    if (options.numa_aware) {
      bucket = std::lower_bound(nodes.begin(), nodes.end(), layout.numa_nodes[i]) -
               nodes.begin();
    }
    node_cpus[bucket].push_back(layout.cpus[i]);
  }
  std::vector<std::size_t> weights;
  for (const auto& cpus : node_cpus) weights.push_back(cpus.size());
  const std::vector<std::size_t> per_node = Proportional(workers, weights);
  // Binding to "every accessible CPU" changes nothing unless accessible_cpus or
  // several nodes narrowed the set.
  const bool bind =
      !layout.synthetic && (nodes.size() > 1 || !options.accessible_cpus.empty());

  std::vector<GroupPlan> plans;
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    if (per_node[n] == 0) continue;
    std::size_t next_cpu = 0;
    for (std::size_t size : GroupSizes(per_node[n], options.scheduling_group_size)) {
      GroupPlan plan;
      plan.numa_node = static_cast<std::size_t>(nodes[n]);
      plan.worker_cpus.resize(size);
      for (auto& cpus : plan.worker_cpus) {
        if (options.disallow_cpu_migration && !layout.synthetic) {
          cpus.push_back(node_cpus[n][next_cpu++ % node_cpus[n].size()]);
        } else if (bind) {
          cpus = node_cpus[n];
        }
      }
      plans.push_back(std::move(plan));
    }
  }
  return plans;
}

std::string FormatCpuList(const std::vector<int>& cpus) {
  std::string text;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!text.empty()) text += ',';
    text += std::to_string(cpus[i]);
    if (j > i) text += '-' + std::to_string(cpus[j]);
    i = j + 1;
  }
  return text;
}

namespace {

std::string DescribeRatio(std::size_t ratio) {
  if (ratio == 0) return "never";
  if (ratio == 1) return "on every look for work";
  return "on every " + std::to_string(ratio) + "th look for work";
}

}  // namespace

std::string DescribeGroups(const RuntimeOptions& options, const CpuLayout& layout,
                           const std::vector<GroupPlan>& plans) {
  std::size_t workers = 0;
  std::vector<std::size_t> nodes;
  for (const GroupPlan& plan : plans) {
    workers += plan.worker_cpus.size();
    nodes.push_back(plan.numa_node);
  }
  std::sort(nodes.begin(), nodes.end());
  nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
  std::ostringstream out;
  out << workers << " worker" << (workers == 1 ? "" : "s") << " in " << plans.size()
      << " scheduling group" << (plans.size() == 1 ? "" : "s") << " on " << nodes.size()
      << " NUMA node" << (nodes.size() == 1 ? "" : "s") << " ("
      << (layout.synthetic ? "synthetic topology \"" + options.topology + "\""
                           : std::string("this machine"))
      << ", CPUs " << FormatCpuList(layout.cpus) << ")\n";
  for (std::size_t g = 0; g < plans.size(); ++g) {
    const GroupPlan& plan = plans[g];
    out << "  group " << g << ": NUMA node " << plan.numa_node << ", "
        << plan.worker_cpus.size() << " worker"
        << (plan.worker_cpus.size() == 1 ? "" : "s") << ", ";
    const auto& first = plan.worker_cpus.front();
    if (first.empty()) {
      out << "not pinned";
    } else if (options.disallow_cpu_migration) {
      out << "one CPU each:";
      for (const auto& cpus : plan.worker_cpus) out << ' ' << cpus.front();
    } else {
      out << "on CPUs " << FormatCpuList(first);
    }
    out << "\n";
  }
  out << "work stealing: ";
  if (plans.size() == 1) {
    out << "none needed (a single group)";
  } else {
    out << "within a NUMA node " << DescribeRatio(options.work_stealing_ratio)
        << "; across NUMA nodes "
        << DescribeRatio(options.cross_numa_work_stealing_ratio);
  }
  out << "\n";
  out << "run queue: " << options.run_queue_size
      << " fibers per group; stacks: " << options.stack_size << " bytes, guard page "
      << (options.stack_guard_page ? "on" : "off") << "\n";
  return out.str();
}

}  // namespace weft::detail
