// weft_sync_bench: FiberSemaphore's hand-off throughput next to the peers'
// equivalents, in one process. (The mutex and condition-variable workloads W4 and
// W5 are in the showcase: benchmark/pingpong_bench.cc.)
//
//   weft_sync_bench [--quick] [--benchmark_filter=...] [--weft_...]
//
// Sem: a producer and a consumer pass items through 64 slots kept by two
// semaphores (free, filled): per item one Acquire/Release pair on each; ns per
// pair. weft: FiberSemaphore with a worker per CPU. Boost.Fiber and C++17 have no
// semaphore: their version is a counter under their mutex and condition variable
// (Boost.Fiber on one thread, round_robin; two std::threads). The parties are
// parked at a start gate before the clock starts (benchmark/parties.h) and one
// untimed batch runs first.
#include <boost/fiber/fiber.hpp>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "benchmark/bench_main.h"
#include "benchmark/benchmark.h"
#include "benchmark/parties.h"
#include "runtime/runtime.h"

namespace weft {

namespace {

constexpr std::ptrdiff_t kSlots = 64;

std::map<std::string, double> ns_per_pair;  // by runtime

std::size_t CpuCount() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

void Measure(::benchmark::State& state, const std::string& runtime, std::int64_t items,
             const std::function<bench::Timing()>& batch) {
  bench::Timing timing = batch();  // untimed
  double seconds = 0;
  for (auto _ : state) {
    timing = batch();
    state.SetIterationTime(timing.seconds);
    seconds += timing.seconds;
  }
  const double ns =
      seconds * 1e9 / (2.0 * items * static_cast<double>(state.iterations()));
  ns_per_pair[runtime] = ns;
  state.counters["ns_per_pair"] = ns;
}

void Register(std::int64_t items, double min_time) {
  const auto add = [min_time](const char* runtime, auto fn) {
    ::benchmark::RegisterBenchmark((std::string("Sem/") + runtime).c_str(), fn)
        ->UseManualTime()
        ->MinTime(min_time);
  };
  add("weft", [items](::benchmark::State& state) {
    RuntimeOptions options = RuntimeOptions::FromFlags();
    options.concurrency_hint = CpuCount();
    Runtime runtime(options);
    Measure(state, "weft", items,
            [items] { return bench::BoundedBuffer<bench::WeftKit>(items, kSlots); });
  });
  add("boost.fiber", [items](::benchmark::State& state) {
    Measure(state, "boost.fiber", items, [items] {
      bench::Timing timing;
      boost::fibers::fiber driver(
          [&] { timing = bench::BoundedBuffer<bench::BoostFiberKit>(items, kSlots); });
      driver.join();
      return timing;
    });
  });
  add("std.thread", [items](::benchmark::State& state) {
    Measure(state, "std.thread", items,
            [items] { return bench::BoundedBuffer<bench::ThreadKit>(items, kSlots); });
  });
}

int Run(const bench::Mode& mode) {
  Register(mode.quick ? 50'000 : 200'000, mode.quick ? 0.1 : 0.5);
  ::benchmark::RunSpecifiedBenchmarks();
  std::printf("\n");
  for (const auto& [runtime, ns] : ns_per_pair)
    std::printf("Sem %s %.1f ns/pair\n", runtime.c_str(), ns);
  const auto weft = ns_per_pair.find("weft");
  for (const auto& [runtime, ns] : ns_per_pair) {
    if (weft == ns_per_pair.end() || runtime == "weft") continue;
    std::printf("Sem %s/weft %.2fx\n", runtime.c_str(), ns / weft->second);
  }
  return 0;
}

}  // namespace

}  // namespace weft

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_sync_bench: FiberSemaphore's hand-off throughput next to Boost.Fiber's and\n"
      "std::thread's equivalents.\n";
  program.quick = "smaller batches and a shorter minimum time per measurement";
  program.runtime_flags = "";
  return weft::bench::Main(program, argc, argv, weft::Run);
}
