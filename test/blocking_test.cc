// Tests runtime/blocking.h: RunBlocking's results, exceptions and threads, the
// blocking pool's sizing, queue, retirement and statistics, and its shutdown.
#include "runtime/blocking.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/flags.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::CountThreads;
using testing::OptionsWithWorkers;
using testing::OsThreadId;
using testing::PollUntil;
using testing::WaitOrAbort;

RuntimeOptions PoolOptions(std::size_t workers, std::size_t max_threads,
                           std::size_t idle_timeout_ms = 10000) {
  RuntimeOptions options = OptionsWithWorkers(workers);
  options.blocking_pool_max_threads = max_threads;
  options.blocking_pool_idle_timeout_ms = idle_timeout_ms;
  return options;
}

// Runs `body` in a fiber and waits for it.
template <class F>
void InFiber(F&& body) {
  Fiber fiber(std::forward<F>(body));
  fiber.Join();
}

// Raises `peak` to `value` if it is higher.
void RaisePeak(std::atomic<std::size_t>& peak, std::size_t value) {
  std::size_t seen = peak.load();
  while (value > seen && !peak.compare_exchange_weak(seen, value)) {
  }
}

class RunBlockingTest : public ::testing::TestWithParam<std::size_t> {
 protected:
  Runtime runtime_{OptionsWithWorkers(GetParam())};
};

TEST_P(RunBlockingTest, ReturnsTheValueOfTheCallable) {
  InFiber([] { EXPECT_EQ(42, RunBlocking([] { return 42; })); });
}

TEST_P(RunBlockingTest, RunsAVoidCallableForItsEffect) {
  int effect = 0;
  InFiber([&] {
    auto set = [&] { effect = 7; };
    static_assert(std::is_void_v<decltype(RunBlocking(set))>);
    RunBlocking(set);
    EXPECT_EQ(7, effect);
  });
}

TEST_P(RunBlockingTest, ReturnsMoveOnlyValues) {
  InFiber([] {
    std::unique_ptr<std::string> p =
        RunBlocking([] { return std::make_unique<std::string>("moved"); });
    ASSERT_NE(nullptr, p);
    EXPECT_EQ("moved", *p);
  });
}

TEST_P(RunBlockingTest, ReturnsReferencesToTheSameObject) {
  std::vector<int> numbers{1, 2, 3};
  InFiber([&] {
    int& middle = RunBlocking([&]() -> int& { return numbers[1]; });
    EXPECT_EQ(&numbers[1], &middle);
    middle = 20;
    const std::vector<int>& all =
        RunBlocking([&]() -> const std::vector<int>& { return numbers; });
    EXPECT_EQ(&numbers, &all);
    std::vector<int>&& taken =
        RunBlocking([&]() -> std::vector<int>&& { return std::move(numbers); });
    EXPECT_EQ(&numbers, &taken);
  });
  EXPECT_EQ(20, numbers[1]);
}

struct BlockingFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

TEST_P(RunBlockingTest, RethrowsTheExceptionInTheCallingFiber) {
  InFiber([] {
    const std::uint64_t fiber = this_fiber::GetId();
    try {
      RunBlocking([]() -> int { throw BlockingFailure("disk on fire"); });
      ADD_FAILURE() << "RunBlocking did not rethrow";
    } catch (const BlockingFailure& e) {
      EXPECT_STREQ("disk on fire", e.what());
      EXPECT_EQ(fiber, this_fiber::GetId()) << "caught outside the calling fiber";
    }
  });
}

TEST_P(RunBlockingTest, RunsTheCallableOnAPoolThreadNotOnAWorker) {
  InFiber([] {
    const long worker_thread = OsThreadId();
    long pool_thread = 0;
    bool on_worker = true;
    std::uint64_t fiber_id = 1;
    RunBlocking([&] {
      pool_thread = OsThreadId();
      on_worker = IsRunningInFiberWorker();
      fiber_id = this_fiber::GetId();
    });
    EXPECT_NE(worker_thread, pool_thread);
    EXPECT_FALSE(on_worker);
    EXPECT_EQ(0u, fiber_id) << "the callable ran in a fiber";
  });
}

TEST_P(RunBlockingTest, NestedCallsRunInlineOnThePoolThread) {
  InFiber([] {
    const auto [outer, inner] = RunBlocking([] {
      const long outer_thread = OsThreadId();
      return std::make_pair(outer_thread, RunBlocking([] { return OsThreadId(); }));
    });
    EXPECT_EQ(outer, inner);
  });
}

INSTANTIATE_TEST_SUITE_P(Workers, RunBlockingTest, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<std::size_t>& info) {
                           return std::to_string(info.param) + "Workers";
                         });

TEST(RunBlocking, FromAPlainThreadCallsInlineWithOrWithoutARuntime) {
  const long caller = OsThreadId();
  EXPECT_EQ(caller, RunBlocking([] { return OsThreadId(); }));
  Runtime runtime(OptionsWithWorkers(2));
  EXPECT_EQ(caller, RunBlocking([] { return OsThreadId(); }));
  EXPECT_THROW(RunBlocking([] { throw BlockingFailure("inline"); }), BlockingFailure);
  EXPECT_EQ(0u, GetRuntimeStats().blocking_pool.tasks_run);
  EXPECT_EQ(0u, GetRuntimeStats().blocking_pool.threads);
}

// The scenario: a thousand fibers on two workers each block for 100 ms
// in RunBlocking. They all finish, and a fiber that only ticks keeps running on
// the same workers throughout.
TEST(RunBlocking, AThousandSleepingCallsFinishWhileOtherFibersKeepRunning) {
  constexpr std::size_t kCalls = 1000;
  constexpr std::size_t kMaxThreads = 64;
  Runtime runtime(PoolOptions(2, kMaxThreads));
  std::atomic<std::size_t> running{0};
  std::atomic<std::size_t> peak{0};
  std::atomic<std::size_t> finished{0};
  std::atomic<std::size_t> ticks_while_blocked{0};
  std::atomic<bool> ticker_done{false};
  std::vector<std::size_t> finished_seen_by_ticker;
  ASSERT_TRUE(StartFiberDetached([&] {
    while (finished.load() < kCalls) {
      const std::size_t now = finished.load();
      if (now < kCalls) {
        ticks_while_blocked.fetch_add(1);
        if (finished_seen_by_ticker.empty() || finished_seen_by_ticker.back() != now) {
          finished_seen_by_ticker.push_back(now);
        }
      }
      this_fiber::SleepFor(std::chrono::milliseconds(1));
    }
    ticker_done = true;
  }));
  for (std::size_t i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      RunBlocking([&] {
        RaisePeak(peak, running.fetch_add(1) + 1);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        running.fetch_sub(1);
      });
      finished.fetch_add(1);
    }));
  }
  WaitOrAbort(PollUntil([&] { return ticker_done.load(); }, "every call and the ticker"));
  EXPECT_EQ(kCalls, finished.load());
  EXPECT_LE(peak.load(), kMaxThreads);
  EXPECT_GE(peak.load(), 2u) << "the calls did not overlap";
  // The ticker ran while calls were blocked, and between completions.
  EXPECT_GE(ticks_while_blocked.load(), 10u);
  EXPECT_GE(finished_seen_by_ticker.size(), 3u);
  // A task counts as run once its thread is back from it, just after its fiber
  // resumed.
  EXPECT_TRUE(
      PollUntil([] { return GetRuntimeStats().blocking_pool.tasks_run == kCalls; },
                "every task counted"));
  const BlockingPoolStats stats = GetRuntimeStats().blocking_pool;
  EXPECT_LE(stats.peak_threads, kMaxThreads);
  EXPECT_EQ(0u, stats.queue_depth);
}

// Every call holds its thread until the pool has reached its maximum; none
// is ever above it.
TEST(RunBlocking, ThePoolNeverRunsMoreThreadsThanItsMaximum) {
  constexpr std::size_t kMaxThreads = 3;
  constexpr std::size_t kCalls = 30;
  Runtime runtime(PoolOptions(2, kMaxThreads));
  std::atomic<std::size_t> running{0};
  std::atomic<std::size_t> peak{0};
  std::atomic<std::size_t> finished{0};
  for (std::size_t i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      RunBlocking([&] {
        RaisePeak(peak, running.fetch_add(1) + 1);
        EXPECT_TRUE(PollUntil([&] { return peak.load() >= kMaxThreads; },
                              "the pool to reach its maximum"));
        running.fetch_sub(1);
      });
      finished.fetch_add(1);
    }));
  }
  WaitOrAbort(PollUntil([&] { return finished.load() == kCalls; }, "every call"));
  EXPECT_EQ(kMaxThreads, peak.load());
  EXPECT_TRUE(
      PollUntil([] { return GetRuntimeStats().blocking_pool.tasks_run == kCalls; },
                "every task counted"));
  const BlockingPoolStats stats = GetRuntimeStats().blocking_pool;
  EXPECT_EQ(kMaxThreads, stats.peak_threads);
  EXPECT_EQ(kMaxThreads, stats.max_threads);
  EXPECT_LE(stats.threads, kMaxThreads);
}

TEST(RunBlocking, StatsShowTheThreadsAndTheQueue) {
  constexpr std::size_t kCalls = 10;
  Runtime runtime(PoolOptions(2, 2));
  FiberLatch gate(1);
  std::atomic<std::size_t> finished{0};
  for (std::size_t i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      RunBlocking([&] { gate.Wait(); });
      finished.fetch_add(1);
    }));
  }
  BlockingPoolStats stats;
  const bool queued = PollUntil(
      [&] {
        stats = GetRuntimeStats().blocking_pool;
        return stats.queue_depth == kCalls - 2;
      },
      "eight calls queued behind two busy threads");
  EXPECT_TRUE(queued);
  EXPECT_EQ(2u, stats.threads);
  EXPECT_EQ(0u, stats.idle_threads);
  EXPECT_EQ(0u, stats.tasks_run);
  gate.CountDown();
  WaitOrAbort(PollUntil([&] { return finished.load() == kCalls; }, "every call"));
  ASSERT_TRUE(PollUntil(
      [&] {
        stats = GetRuntimeStats().blocking_pool;
        return stats.idle_threads == 2;
      },
      "both threads idle"));
  EXPECT_EQ(0u, stats.queue_depth);
  EXPECT_EQ(kCalls, stats.tasks_run);
  EXPECT_EQ(2u, stats.threads_started);
  std::ostringstream text;
  DumpRuntimeStats(text);
  EXPECT_NE(text.str().find("blocking pool: threads 2 (max 2, peak 2) idle 2 queued 0"),
            std::string::npos)
      << text.str();
}

TEST(RunBlocking, IdleThreadsRetireAndThePoolGrowsAgain) {
  constexpr std::size_t kThreads = 4;
  Runtime runtime(PoolOptions(2, kThreads, /*idle_timeout_ms=*/20));
  std::atomic<std::size_t> started{0};
  std::atomic<std::size_t> finished{0};
  for (std::size_t i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      // Each holds its thread until all four run: four threads at once.
      RunBlocking([&] {
        started.fetch_add(1);
        EXPECT_TRUE(PollUntil([&] { return started.load() == kThreads; }, "four calls"));
      });
      finished.fetch_add(1);
    }));
  }
  WaitOrAbort(PollUntil([&] { return finished.load() == kThreads; }, "every call"));
  EXPECT_EQ(kThreads, GetRuntimeStats().blocking_pool.peak_threads);
  ASSERT_TRUE(PollUntil([] { return GetRuntimeStats().blocking_pool.threads == 0; },
                        "the idle threads to retire"));
  EXPECT_EQ(kThreads, GetRuntimeStats().blocking_pool.threads_retired);
  InFiber([] { EXPECT_EQ(5, RunBlocking([] { return 5; })); });
  EXPECT_EQ(kThreads + 1, GetRuntimeStats().blocking_pool.threads_started);
}

// TerminateRuntime() while calls run and more wait in the queue: every call
// runs, every fiber resumes, and the pool's threads are gone afterwards.
TEST(RunBlocking, TerminateRuntimeRunsEveryCallAndJoinsThePool) {
  constexpr std::size_t kCalls = 40;
  {
    // A first runtime, so that helper threads a sanitizer starts with the
    // first threads are there before the count.
    Runtime warm_up(PoolOptions(2, 4));
    InFiber([] { RunBlocking([] {}); });
  }
  const int threads_before = CountThreads();
  std::atomic<std::size_t> ran{0};
  std::atomic<std::size_t> resumed{0};
  StartRuntime(PoolOptions(2, 4));
  for (std::size_t i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      RunBlocking([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        ran.fetch_add(1);
      });
      resumed.fetch_add(1);
    }));
  }
  TerminateRuntime();
  EXPECT_EQ(kCalls, ran.load());
  EXPECT_EQ(kCalls, resumed.load());
  EXPECT_EQ(0u, detail::BlockingPool::Global().Stats().threads);
  EXPECT_EQ(threads_before, CountThreads()) << "a pool thread outlived the runtime";
  // The next runtime opens the pool again.
  Runtime again(PoolOptions(1, 2));
  InFiber([] { EXPECT_EQ(3, RunBlocking([] { return 3; })); });
}

TEST(RunBlocking, InvalidPoolOptionsAreRejectedNamingTheOption) {
  struct Case {
    std::size_t max_threads;
    std::size_t idle_timeout_ms;
    std::size_t ttl_ms;
    const char* option;
    const char* detail;
  };
  const Case cases[] = {
      {0, 10000, 5000, "blocking_pool_max_threads", "is 0"},
      {static_cast<std::size_t>(-1), 10000, 5000, "blocking_pool_max_threads",
       "negative"},
      {1u << 20, 10000, 5000, "blocking_pool_max_threads", "1..4096"},
      {64, 0, 5000, "blocking_pool_idle_timeout_ms", "1..86400000"},
      {64, 10000, std::size_t{1} << 40, "resolve_cache_ttl_ms", "0..86400000"},
  };
  for (const Case& c : cases) {
    RuntimeOptions options = PoolOptions(1, c.max_threads, c.idle_timeout_ms);
    options.resolve_cache_ttl_ms = c.ttl_ms;
    try {
      StartRuntime(options);
      TerminateRuntime();
      ADD_FAILURE() << "accepted an invalid " << c.option;
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(c.option), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("--weft_") + c.option), std::string::npos) << what;
      EXPECT_NE(what.find(c.detail), std::string::npos) << what;
    }
  }
  RuntimeOptions boundary = PoolOptions(1, 4096, 1);
  boundary.resolve_cache_ttl_ms = 0;
  EXPECT_NO_THROW(boundary.Validate());
}

TEST(RunBlocking, OptionsComeFromTheFlagsWithTheDocumentedDefaults) {
  const RuntimeOptions defaults;
  EXPECT_EQ(64u, defaults.blocking_pool_max_threads);
  EXPECT_EQ(10000u, defaults.blocking_pool_idle_timeout_ms);
  EXPECT_EQ(5000u, defaults.resolve_cache_ttl_ms);
  EXPECT_EQ(64u, RuntimeOptions::FromFlags().blocking_pool_max_threads);
  gflags::FlagSaver saver;
  FLAGS_weft_blocking_pool_max_threads = 8;
  FLAGS_weft_blocking_pool_idle_timeout_ms = 250;
  FLAGS_weft_resolve_cache_ttl_ms = 0;
  const RuntimeOptions options = RuntimeOptions::FromFlags();
  EXPECT_EQ(8u, options.blocking_pool_max_threads);
  EXPECT_EQ(250u, options.blocking_pool_idle_timeout_ms);
  EXPECT_EQ(0u, options.resolve_cache_ttl_ms);
}

}  // namespace
}  // namespace weft
