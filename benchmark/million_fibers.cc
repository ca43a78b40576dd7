// weft_million_fibers: parks N fibers (1,000,000 by default) at once, each
// blocked on one FiberLatch, with the default options (128 KiB stacks, guard
// pages on), and reports the resident memory each costs and how the guard pages
// were made. With MADV_GUARD_INSTALL (Linux >= 6.13) a guard costs no memory
// mapping, so vm.max_map_count (65530 by default) does not cap the count; on
// older kernels each guard is a PROT_NONE mapping and starting fibers fails
// cleanly, with a message, once the mappings run out.
//
//   weft_million_fibers [N] [--weft_...]
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/bench_main.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"

namespace {

long ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0;
  long resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

int Run(const weft::bench::Mode& mode) {
  long fibers = 1'000'000;
  if (!mode.arguments.empty()) {
    char* end = nullptr;
    fibers = std::strtol(mode.arguments[0].c_str(), &end, 10);
    if (*end != '\0' || fibers <= 0) {
      std::fprintf(stderr, "usage: weft_million_fibers [N > 0] [--weft_...]\n");
      return 2;
    }
  }
  weft::Runtime runtime(weft::RuntimeOptions::FromFlags());
  weft::FiberLatch release(1);
  std::atomic<long> parked{0};
  const long before = ResidentBytes();
  const auto start = std::chrono::steady_clock::now();
  long started = 0;
  for (; started < fibers; ++started) {
    const bool ok = weft::StartFiberDetached([&] {
      parked.fetch_add(1, std::memory_order_relaxed);
      release.Wait();
    });
    if (!ok) break;
  }
  while (parked.load(std::memory_order_relaxed) != started) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a report, not a test
  }
  const long after = ResidentBytes();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const weft::detail::StackPoolStats stacks = weft::detail::GetStackPoolStats();
  std::printf("%ld of %ld fibers parked in %.1f s\n", started, fibers, seconds);
  std::printf("resident memory: %.0f bytes per parked fiber\n",
              static_cast<double>(after - before) / static_cast<double>(started));
  std::printf("guard pages: %s\n", stacks.guard_without_mapping
                                       ? "MADV_GUARD_INSTALL (no memory mapping each)"
                                       : "PROT_NONE pages (one mapping each)");
  release.CountDown();
  if (started != fibers) {
    std::printf("stopped early: StartFiberDetached() could not create fiber %ld\n",
                started + 1);
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_million_fibers: parks N fibers at once, each blocked on one FiberLatch, and\n"
      "reports the resident memory per parked fiber and how the guard pages were made.\n";
  program.own_flags =
      "  [N]\n"
      "          how many fibers to park (1000000)\n";
  program.runtime_flags = "";
  program.google_benchmark = false;
  return weft::bench::Main(program, argc, argv, Run);
}
