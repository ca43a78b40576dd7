// Helpers shared by weft's tests: a fixture over worker counts, iteration scaling
// for sanitizer builds, and bounded waits that fail instead of hanging.
#ifndef WEFT_TEST_TEST_UTIL_H_
#define WEFT_TEST_TEST_UTIL_H_

#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"

namespace weft::testing {

// Long enough that only a hang (a lost wake-up, a starved fiber) exceeds it, even
// on a loaded 2-core machine under ThreadSanitizer.
inline constexpr std::chrono::seconds kGenerousTimeout{60};

// Whether this is a sanitizer build, whose stress loops run fewer iterations.
#ifdef WEFT_TEST_SCALE_DOWN
inline constexpr bool kScaledDown = true;
#else
inline constexpr bool kScaledDown = false;
#endif

// Iterations of a stress loop: `n` in a normal build, n / 10 in sanitizer builds
// (which run about ten times slower), and never fewer than `at_least`. The TSan
// build uses clang, whose TSan creates a fiber context in microseconds (GCC 12's
// takes milliseconds, which no fiber-heavy loop survives).
constexpr std::size_t Scaled(std::size_t n, std::size_t at_least = 1) {
#if defined(WEFT_TEST_SCALE_DOWN)
  n /= 10;
#endif
  return std::max<std::size_t>(std::max<std::size_t>(n, at_least), 1);
}

// The calling OS thread's id, read afresh on every call. A fiber may resume on
// another thread after Yield(), but glibc declares pthread_self() (behind
// std::this_thread::get_id()) __attribute__((const)), so the compiler may reuse a
// value read before the switch; a system call cannot be folded that way.
inline long OsThreadId() { return syscall(SYS_gettid); }

// The scheduling policy of the running runtime (WEFT_SCHEDULING_POLICY may
// choose it for the whole suite): tests of one policy's own properties skip
// under the others.
inline std::string RunningSchedulingPolicy() {
  return GetRuntimeStats().scheduling_policy;
}

// The I/O engine WEFT_IO_ENGINE forces on every runtime of the suite, or ""
// when it is unset: tests made for one engine skip under another.
inline std::string IoEngineOverride() {
  const char* value = std::getenv("WEFT_IO_ENGINE");
  return value != nullptr ? value : "";
}

// Why a test of `engine` must skip (WEFT_IO_ENGINE forces another), or "":
//   if (const std::string why = testing::IoEngineSkipReason("epoll"); !why.empty())
//     GTEST_SKIP() << why;
inline std::string IoEngineSkipReason(const std::string& engine) {
  const std::string forced = IoEngineOverride();
  if (forced.empty() || forced == engine) return "";
  return "WEFT_IO_ENGINE=" + forced + " overrides the engine under test";
}

// Threads of this process, from /proc/self/status (-1 and a test failure if
// the line is missing).
inline int CountThreads() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  ADD_FAILURE() << "no Threads: line in /proc/self/status";
  return -1;
}

// Options with every default except the number of workers.
inline RuntimeOptions OptionsWithWorkers(std::size_t workers) {
  RuntimeOptions options;
  options.concurrency_hint = workers;
  return options;
}

// The sum of one SchedulingGroupStats counter over every group, e.g.
//   SumOverGroups(&SchedulingGroupStats::sleeps).
inline std::uint64_t SumOverGroups(std::uint64_t SchedulingGroupStats::*counter) {
  std::uint64_t sum = 0;
  for (const SchedulingGroupStats& group : GetRuntimeStats().scheduling_groups) {
    sum += group.*counter;
  }
  return sum;
}

// Never cleared: a condition the compiler cannot see through, so that the
// recursion below is not turned into a loop or proven endless.
inline volatile bool keep_recursing = true;

// Recurses until the stack runs out, for tests of stack overflow. The 512-byte
// frame cannot be elided or merged.
__attribute__((noinline)) inline std::uint64_t RecurseUntilOverflow(std::uint64_t depth) {
  if (!keep_recursing) return depth;
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  return RecurseUntilOverflow(depth + 1) + static_cast<std::uint64_t>(frame[0]);
}

// Polls `pred` until it returns true, giving the CPU away between polls (to other
// fibers inside a fiber, to other threads on a plain thread). The polling only
// observes a condition; it never stands in for the synchronization under test.
// Fails, naming `what`, if `pred` is still false after `timeout`:
//   ASSERT_TRUE(PollUntil([&] { return done.load(); }, "the fiber to finish"));
template <class Pred>
::testing::AssertionResult PollUntil(
    Pred&& pred, const std::string& what,
    std::chrono::nanoseconds timeout = kGenerousTimeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const bool in_fiber = this_fiber::GetId() != 0;
  for (std::size_t polls = 0; !pred(); ++polls) {
    if (std::chrono::steady_clock::now() > deadline) {
      return ::testing::AssertionFailure()
             << "gave up waiting for " << what << " after "
             << std::chrono::duration_cast<std::chrono::seconds>(timeout).count() << " s";
    }
    if (in_fiber || polls < 1000) {
      in_fiber ? this_fiber::Yield() : std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  return ::testing::AssertionSuccess();
}

// For a wait whose failure leaves a fiber stranded, after which TerminateRuntime()
// (in TearDown or ~Runtime) would wait forever: reports the failure and ends the
// process at once instead of hanging until the CTest timeout.
//   WaitOrAbort(PollUntil([&] { return seen == i; }, "fiber " + std::to_string(i)));
inline void WaitOrAbort(const ::testing::AssertionResult& result) {
  if (result) return;
  ADD_FAILURE() << result.message()
                << " (aborting: a stranded fiber would hang teardown)";
  std::fflush(stdout);
  std::abort();
}

// Aborts the process with `what` if it is still alive after `timeout`; for waits
// that cannot themselves time out (Fiber::Join, TerminateRuntime). A hang then
// ends with a message saying what hung instead of a CTest timeout.
class Watchdog {
 public:
  // `status`, if given, is called on timeout and its result printed, e.g. to show
  // how far each thread got.
  explicit Watchdog(std::string what, std::chrono::seconds timeout = 2 * kGenerousTimeout,
                    std::function<std::string()> status = nullptr)
      : what_(std::move(what)), status_(std::move(status)), thread_([this, timeout] {
          std::unique_lock<std::mutex> lock(mutex_);
          if (!cv_.wait_for(lock, timeout, [this] { return disarmed_; })) {
            std::fprintf(stderr, "Watchdog: gave up waiting for %s after %lld s%s%s\n",
                         what_.c_str(), static_cast<long long>(timeout.count()),
                         status_ ? "; " : "", status_ ? status_().c_str() : "");
            std::abort();
          }
        }) {}

  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      disarmed_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  const std::string what_;
  const std::function<std::string()> status_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool disarmed_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

// Runs each test with a runtime of GetParam() workers in one or more scheduling
// groups (16 workers make two groups), started in SetUp and terminated in
// TearDown. A test may call TerminateRuntime() itself to wait for its detached
// fibers; TearDown's call is then a no-op.
class WorkerCountTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  void SetUp() override { StartRuntime(OptionsWithWorkers(GetParam())); }
  void TearDown() override { TerminateRuntime(); }
};

inline auto WorkerCounts() {
  return ::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{4}, std::size_t{8},
                           std::size_t{16});
}

inline std::string WorkerCountName(const ::testing::TestParamInfo<std::size_t>& info) {
  return std::to_string(info.param) + (info.param == 1 ? "Worker" : "Workers");
}

}  // namespace weft::testing

// Instantiates a WorkerCountTest-derived suite over 1, 2, 4, 8 and 16 workers.
#define WEFT_INSTANTIATE_OVER_WORKER_COUNTS(suite)                          \
  INSTANTIATE_TEST_SUITE_P(Workers, suite, ::weft::testing::WorkerCounts(), \
                           ::weft::testing::WorkerCountName)

#endif  // WEFT_TEST_TEST_UTIL_H_
