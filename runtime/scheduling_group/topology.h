// The CPUs the runtime may place workers on.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_TOPOLOGY_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_TOPOLOGY_H_

#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace weft::detail {

// Parses a CPU list such as "0-7,9" into ascending, distinct CPU numbers.
// Throws std::invalid_argument naming `option` on malformed input.
std::vector<int> ParseCpuList(const std::string& text, const char* option);

struct CpuLayout {
  std::vector<int> cpus;  // CPU numbers the workers may use, ascending
  // True when the CPUs come from a synthetic topology and may not exist on this
  // machine: workers are then not pinned.
  bool synthetic = false;
};

// The process's affinity mask (never /proc/cpuinfo, so taskset and containers
// are honoured), or the PUs of options.topology, restricted to
// options.accessible_cpus. Throws std::invalid_argument naming the option when
// the topology does not parse or accessible_cpus leaves nothing usable.
CpuLayout DiscoverCpus(const RuntimeOptions& options);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_TOPOLOGY_H_
