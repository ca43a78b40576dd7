// What happens when no fiber stack can be mapped: creation fails cleanly and
// the runtime keeps working. The address-space limit that forces the failure is
// set inside a child process (a death test that is expected to exit with 0), so
// the rest of the suite is unaffected.
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "runtime/detail/sanitizers.h"
#include "runtime/detail/stack_pool.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"

namespace weft {
namespace {

std::size_t VirtualMemoryBytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  }
  return 0;
}

// With no stack to be had, a Fiber's constructor must throw an error that says
// what to change. Returns what went wrong, or an empty string.
std::string CheckNextFiberFails() {
  try {
    Fiber fiber([] {});
    fiber.Join();
    return "Fiber's constructor did not throw with no stack to be had";
  } catch (const std::system_error& e) {
    if (std::strstr(e.what(), "vm.max_map_count") == nullptr ||
        std::strstr(e.what(), "weft_fiber_stack_enable_guard_page") == nullptr) {
      return std::string("the error does not say what to change: ") + e.what();
    }
  }
  return "";
}

// Runs `body` in a death-test child (so that its limits and exhausted
// resources do not reach the rest of the suite), which must exit with 0: an
// empty string from `body`. Otherwise the child prints what `body` returned.
void ExpectSucceedsInChild(const std::function<std::string()>& body) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        std::string failure = body();
        if (!failure.empty()) {
          std::fprintf(stderr, "%s\n", failure.c_str());
          std::_Exit(1);
        }
        std::_Exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

// Runs in the child: returns a description of the first broken expectation, or
// an empty string.
std::string ExhaustStacksAndRecover() {
  // Only fiber stacks may run out, not the heap that error messages and the test
  // itself use: one malloc arena (a new thread would otherwise map a 64 MiB arena
  // of its own at any time), grown now and kept (no trimming, no mmap'd chunks).
  mallopt(M_ARENA_MAX, 1);
  RuntimeOptions options;
  options.concurrency_hint = 2;
  StartRuntime(options);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  std::free(std::malloc(16 * 1024 * 1024));
  // Room for a few hundred 128 KiB stacks beyond what is mapped now.
  rlimit limit{VirtualMemoryBytes() + 64 * 1024 * 1024, RLIM_INFINITY};
  if (setrlimit(RLIMIT_AS, &limit) != 0) return "setrlimit failed";

  std::atomic<bool> release{false};
  std::atomic<int> started{0};
  std::size_t accepted = 0;
  while (StartFiberDetached([&] {
    started.fetch_add(1);
    while (!release.load()) this_fiber::Yield();
  })) {
    if (++accepted > 100000) return "fibers never ran out of stacks";
  }
  if (accepted == 0) return "not a single fiber could be started";

  if (std::string failure = CheckNextFiberFails(); !failure.empty()) return failure;

  // Everything accepted runs, and once stacks come back new fibers start again.
  release.store(true);
  limit.rlim_cur = RLIM_INFINITY;
  setrlimit(RLIMIT_AS, &limit);
  Fiber after([] {});
  after.Join();
  TerminateRuntime();
  if (static_cast<std::size_t>(started.load()) != accepted) {
    return "accepted " + std::to_string(accepted) + " fibers but " +
           std::to_string(started.load()) + " ran";
  }
  return "";
}

long MaxMapCount() {
  std::ifstream file("/proc/sys/vm/max_map_count");
  long count = 0;
  file >> count;
  return count;
}

// Runs in the child: with PROT_NONE guard pages (the fallback for kernels
// without MADV_GUARD_INSTALL) every stack costs two memory mappings, so
// vm.max_map_count caps the fibers alive at once. Returns a description of the
// first broken expectation, or an empty string.
std::string RunOutOfMappingsAndRecover(long max_map_count) {
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
  std::free(std::malloc(16 * 1024 * 1024));
  detail::UseProtNoneGuardPagesForTesting();
  RuntimeOptions options;
  options.concurrency_hint = 2;
  StartRuntime(options);
  if (detail::GetStackPoolStats().guard_without_mapping) {
    return "MADV_GUARD_INSTALL is still in use";
  }
  // Never destroyed: a failure returns with fibers still waiting on it (the
  // child process then exits with the message).
  auto& release = *new FiberLatch(1);
  static std::atomic<long> ran{0};
  long accepted = 0;
  while (StartFiberDetached([&release] {
    ran.fetch_add(1);
    release.Wait();
  })) {
    if (++accepted > max_map_count) return "fibers never ran out of memory mappings";
  }
  if (accepted < 1000) {
    return "only " + std::to_string(accepted) + " fibers started before mappings ran out";
  }
  if (std::string failure = CheckNextFiberFails(); !failure.empty()) return failure;
  // Every accepted fiber runs to its end; their stacks stay pooled, so new
  // fibers start again once they have ended (they may still be on their way:
  // until one ended, a new fiber still finds no stack).
  release.CountDown();
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  for (;;) {
    try {
      Fiber after([] {});
      after.Join();
      break;
    } catch (const std::system_error&) {
      if (std::chrono::steady_clock::now() > give_up) {
        return "no fiber could start after the others ended";
      }
      std::this_thread::yield();
    }
  }
  TerminateRuntime();
  if (ran.load() != accepted) {
    return "accepted " + std::to_string(accepted) + " fibers but " +
           std::to_string(ran.load()) + " ran";
  }
  return "";
}

TEST(StackExhaustion, ProtNoneGuardsRunOutOfMappingsCleanly) {
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
  GTEST_SKIP() << "sanitizer runtimes need memory mappings of their own to report";
#endif
  const long max_map_count = MaxMapCount();
  if (max_map_count <= 0 || max_map_count > 1'000'000) {
    GTEST_SKIP() << "vm.max_map_count is " << max_map_count
                 << "; the test needs a limit it can reach (the default is 65530)";
  }
  ExpectSucceedsInChild(
      [max_map_count] { return RunOutOfMappingsAndRecover(max_map_count); });
}

TEST(StackExhaustion, FailsCleanlyAndTheRuntimeKeepsWorking) {
#if defined(WEFT_ASAN) || defined(WEFT_TSAN)
  GTEST_SKIP() << "sanitizers reserve address space that an RLIMIT_AS cap breaks";
#endif
  ExpectSucceedsInChild(ExhaustStacksAndRecover);
}

}  // namespace
}  // namespace weft
