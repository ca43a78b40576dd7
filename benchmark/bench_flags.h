// Command-line handling shared by the standalone benchmark programs.
#ifndef WEFT_BENCHMARK_BENCH_FLAGS_H_
#define WEFT_BENCHMARK_BENCH_FLAGS_H_

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "benchmark/benchmark.h"

namespace weft::bench {

// Takes --quick out of argv, before Google Benchmark and gflags see it; returns
// whether it was there.
inline bool TakeQuickFlag(int* argc, char** argv) {
  char** const end = argv + *argc;
  char** const kept_end = std::remove_if(
      argv + 1, end, [](const char* arg) { return std::strcmp(arg, "--quick") == 0; });
  *argc = static_cast<int>(kept_end - argv);
  argv[*argc] = nullptr;
  return kept_end != end;
}

// Google Benchmark's help, then what --quick does in this program and how it
// uses weft's runtime flags. For ::benchmark::Initialize's help callback.
inline void PrintHelpWith(const char* quick, const char* runtime_flags) {
  ::benchmark::PrintDefaultHelp();
  std::printf("  [--quick]\n          %s\n  [--weft_...=...]\n          %s\n", quick,
              runtime_flags);
}

}  // namespace weft::bench

#endif  // WEFT_BENCHMARK_BENCH_FLAGS_H_
