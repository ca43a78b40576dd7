#include "runtime/scheduling_group/topology.h"

#include <hwloc.h>
#include <sched.h>

#include <algorithm>
#include <cctype>
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

std::vector<int> SyntheticCpus(const std::string& description) {
  hwloc_topology_t topology;
  if (hwloc_topology_init(&topology) != 0) {
    throw std::runtime_error("weft: hwloc_topology_init failed");
  }
  if (hwloc_topology_set_synthetic(topology, description.c_str()) != 0 ||
      hwloc_topology_load(topology) != 0) {
    hwloc_topology_destroy(topology);
    Reject("topology", description,
           "is not a valid hwloc synthetic description (example: \"pack:2 numa:1 core:8 "
           "pu:1\")");
  }
  std::vector<int> cpus;
  int n = hwloc_get_nbobjs_by_type(topology, HWLOC_OBJ_PU);
  for (int i = 0; i < n; ++i) {
    cpus.push_back(
        static_cast<int>(hwloc_get_obj_by_type(topology, HWLOC_OBJ_PU, i)->os_index));
  }
  hwloc_topology_destroy(topology);
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
  layout.cpus = layout.synthetic ? SyntheticCpus(options.topology) : AffinityCpus();
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
  return layout;
}

}  // namespace weft::detail
