// weft_million_fibers: parks N fibers (1,000,000 by default) at once, each
// blocked on one FiberLatch, with the default options (128 KiB stacks, guard
// pages on), and reports the resident memory each costs, how long parking and
// waking them all took, and how the guard pages were made. With
// MADV_GUARD_INSTALL (Linux >= 6.13) a guard costs no memory mapping, so
// vm.max_map_count (65530 by default) does not cap the count; on older kernels
// each guard is a PROT_NONE mapping and starting fibers fails cleanly, with a
// message, once the mappings run out.
//
// With --hibernate the fibers hibernate (RuntimeOptions::
// hibernate_parked_fibers_after_ms; docs/design.md, "Hibernating parked
// fibers"): they are started in batches, and after each batch has parked the
// hibernator is asked to take every parked fiber before the next batch starts,
// as a server's connections would arrive over time. That is how ten million
// fit on a 24 GiB machine: each awake parked fiber holds a page or two.
//
//   weft_million_fibers [N] [--hibernate] [--weft_...]
#include <gflags/gflags.h>
#include <unistd.h>

#include <algorithm>
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
#include "runtime/scheduling_group/hibernator.h"
#include "runtime/sync/fiber_latch.h"

DEFINE_bool(hibernate, false,
            "hibernate the parked fibers, in batches of 100000 (see the file comment)");

namespace {

long StatusKiB(const char* field) {
  std::ifstream status("/proc/self/status");
  const std::string prefix = std::string(field) + ":";
  for (std::string line; std::getline(status, line);) {
    if (line.compare(0, prefix.size(), prefix) == 0) return std::atol(line.c_str() + prefix.size());
  }
  return 0;
}

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Waits until `counter` reaches `target`; reports, not tests, so polling is fine.
void WaitFor(const std::atomic<long>& counter, long target) {
  while (counter.load(std::memory_order_relaxed) < target) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Hibernates every parked fiber, with passes until `parked` of them are.
void HibernateAll(long parked) {
  while (static_cast<long>(weft::GetRuntimeStats().hibernation.hibernated_now) < parked) {
    weft::detail::HibernateParkedFibers(std::chrono::milliseconds(0));
  }
}

int Run(const weft::bench::Mode& mode) {
  long fibers = 1'000'000;
  if (!mode.arguments.empty()) {
    char* end = nullptr;
    fibers = std::strtol(mode.arguments[0].c_str(), &end, 10);
    if (*end != '\0' || fibers <= 0) {
      std::fprintf(stderr, "usage: weft_million_fibers [N > 0] [--hibernate] [--weft_...]\n");
      return 2;
    }
  }
  weft::RuntimeOptions options = weft::RuntimeOptions::FromFlags();
  const bool hibernate = FLAGS_hibernate;
  // Passes are asked for explicitly; an hour keeps the hibernator's own out of
  // the way unless --weft_fiber_hibernate_after_ms says otherwise.
  if (hibernate && options.hibernate_parked_fibers_after_ms == 0) {
    options.hibernate_parked_fibers_after_ms = 3'600'000;
  }
  weft::Runtime runtime(options);
  weft::FiberLatch release(1);
  std::atomic<long> parked{0};
  std::atomic<long> finished{0};
  const long rss_before = StatusKiB("VmRSS");
  const long pte_before = StatusKiB("VmPTE");
  const auto start = std::chrono::steady_clock::now();
  const long batch = hibernate ? 100'000 : fibers;
  long started = 0;
  bool failed = false;
  while (started < fibers && !failed) {
    const long batch_end = std::min(fibers, started + batch);
    for (; started < batch_end; ++started) {
      if (!weft::StartFiberDetached([&] {
            parked.fetch_add(1, std::memory_order_relaxed);
            release.Wait();
            finished.fetch_add(1, std::memory_order_relaxed);
          })) {
        failed = true;
        break;
      }
    }
    WaitFor(parked, started);
    if (hibernate) HibernateAll(started);
  }
  const double park_seconds = Since(start);
  const long rss = StatusKiB("VmRSS") - rss_before;
  const long pte = StatusKiB("VmPTE") - pte_before;
  const weft::detail::StackPoolStats stacks = weft::detail::GetStackPoolStats();
  const weft::HibernationStats asleep = weft::GetRuntimeStats().hibernation;
  const double n = static_cast<double>(started);
  std::printf("%ld of %ld fibers parked in %.1f s (%.2f us each)%s\n", started, fibers,
              park_seconds, park_seconds * 1e6 / n,
              hibernate ? ", hibernated in batches of 100000" : "");
  std::printf("resident memory: %.0f bytes per parked fiber (+ %.0f bytes of page tables)\n",
              static_cast<double>(rss) * 1024 / n, static_cast<double>(pte) * 1024 / n);
  if (hibernate) {
    std::printf("hibernated: %llu fibers, their stack copies %.0f bytes each on average\n",
                static_cast<unsigned long long>(asleep.hibernated_now),
                asleep.hibernated_now == 0
                    ? 0.0
                    : static_cast<double>(asleep.saved_bytes_now) /
                          static_cast<double>(asleep.hibernated_now));
  }
  std::printf("guard pages: %s\n", stacks.guard_without_mapping
                                       ? "MADV_GUARD_INSTALL (no memory mapping each)"
                                       : "PROT_NONE pages (one mapping each)");
  std::fflush(stdout);
  const auto wake_start = std::chrono::steady_clock::now();
  release.CountDown();
  WaitFor(finished, started);
  const double wake_seconds = Since(wake_start);
  std::printf("woke all %ld in %.1f s (%.2f us each)\n", started, wake_seconds,
              wake_seconds * 1e6 / n);
  if (failed) {
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
      "reports the resident memory per parked fiber, the time to park and to wake them\n"
      "all, and how the guard pages were made.\n";
  program.own_flags =
      "  [N]\n"
      "          how many fibers to park (1000000)\n"
      "  [--hibernate]\n"
      "          hibernate them, in batches of 100000, as they park\n";
  program.runtime_flags = "";
  program.google_benchmark = false;
  return weft::bench::Main(program, argc, argv, Run);
}
