// Prints the layout of workers into scheduling groups that the weft_* flags give
// on this machine, without starting the runtime:
//
//   weft_layout --weft_concurrency_hint=32 --weft_scheduling_group_size=8
//   weft_layout --weft_topology="pack:2 numa:1 core:16 pu:1"
//
// Exits with status 2 and the reason when the options are invalid.
#include <gflags/gflags.h>

#include <cstdio>
#include <stdexcept>

#include "runtime/runtime.h"

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "prints the scheduling-group layout the weft_* flags give on this machine");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  try {
    std::fputs(weft::DescribeLayout(weft::RuntimeOptions::FromFlags()).c_str(), stdout);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return 0;
}
