// Stress tests of the workers' sleep/wake-up protocol: hand-offs between plain
// threads and fibers, and between fibers, with more workers than CPUs so that
// workers keep falling asleep. A lost wake-up shows as a hang, which every test
// turns into a failure (or an abort from a watchdog) with a message.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::kGenerousTimeout;
using testing::OptionsWithWorkers;
using testing::PollUntil;
using testing::Scaled;
using testing::SumOverGroups;
using testing::WaitOrAbort;
using testing::Watchdog;

TEST(WakePolicy, PlainThreadsCreateAndJoinFibersWithoutLosingWakeUps) {
  constexpr std::size_t kThreads = 4;
  constexpr std::size_t handoffs = Scaled(250000);
  Runtime runtime(OptionsWithWorkers(4));
  const std::uint64_t sleeps_before = SumOverGroups(&SchedulingGroupStats::sleeps);
  const std::uint64_t wakeups_before = SumOverGroups(&SchedulingGroupStats::wakeups);

  std::vector<std::size_t> counts(kThreads);  // plain data: Join() must publish it
  std::vector<std::atomic<std::size_t>> progress(kThreads);
  {
    Watchdog watchdog("plain threads joining fibers", 2 * kGenerousTimeout, [&] {
      std::string status = "hand-offs done per thread:";
      for (const auto& done : progress) status += " " + std::to_string(done.load());
      return status + " of " + std::to_string(handoffs);
    });
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t != kThreads; ++t) {
      threads.emplace_back([&counts, &progress, t] {
        for (std::size_t i = 0; i != handoffs; ++i) {
          Fiber fiber([&counts, t] { ++counts[t]; });
          fiber.Join();
          progress[t].store(i + 1, std::memory_order_relaxed);
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  for (std::size_t t = 0; t != kThreads; ++t) {
    EXPECT_EQ(handoffs, counts[t]) << "thread " << t;
  }

  // Each hand-off leaves the workers idle until the next fiber arrives, so they
  // must have slept and been woken.
  EXPECT_GT(SumOverGroups(&SchedulingGroupStats::sleeps), sleeps_before);
  EXPECT_GT(SumOverGroups(&SchedulingGroupStats::wakeups), wakeups_before);
}

TEST(WakePolicy, PlainThreadsSeeEveryStoreOfTheFibersTheyStart) {
  constexpr std::size_t kThreads = 2;
  constexpr std::size_t handoffs = Scaled(50000);
  Runtime runtime(OptionsWithWorkers(8));

  std::vector<std::atomic<std::size_t>> seen(kThreads);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t != kThreads; ++t) {
    threads.emplace_back([&seen, t] {
      std::atomic<std::size_t>& mine = seen[t];
      for (std::size_t i = 1; i <= handoffs; ++i) {
        ASSERT_TRUE(StartFiberDetached([&mine, i] {
          mine.store(i, std::memory_order_release);
        })) << "thread "
            << t << ", hand-off " << i;
        WaitOrAbort(
            PollUntil([&mine, i] { return mine.load(std::memory_order_acquire) == i; },
                      "thread " + std::to_string(t) + "'s fiber number " +
                          std::to_string(i) + " to run (a lost wake-up?)"));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  TerminateRuntime();  // no fiber may outlive `seen`, even after a failure
  for (std::size_t t = 0; t != kThreads; ++t) EXPECT_EQ(handoffs, seen[t].load());
}

// Busy-waits for `duration`. Not synchronization: it stands for the caller doing
// some work, so that its next hand-off lands at a different moment of the idle
// worker's way from spinning to sleeping.
void BusyWaitFor(std::chrono::nanoseconds duration) {
  const auto end = std::chrono::steady_clock::now() + duration;
  while (std::chrono::steady_clock::now() < end) {
  }
}

TEST(WakePolicy, HandOffsArrivingAtEveryStageOfFallingAsleepWakeTheWorker) {
  // One worker, so no other worker can be woken instead: a wake-up lost while it
  // turns from spinner to sleeper strands the fiber for good.
  Runtime runtime(OptionsWithWorkers(1));
  constexpr std::size_t handoffs = Scaled(50000);
  std::atomic<std::size_t> seen{0};
  std::uint32_t random = 12345;
  for (std::size_t i = 1; i <= handoffs; ++i) {
    random = random * 1664525 + 1013904223;  // jitter uniform in 0..~100 us
    BusyWaitFor(std::chrono::nanoseconds((random >> 8) % 100000));
    ASSERT_TRUE(
        StartFiberDetached([&seen, i] { seen.store(i, std::memory_order_release); }));
    WaitOrAbort(
        PollUntil([&] { return seen.load(std::memory_order_acquire) == i; },
                  "fiber number " + std::to_string(i) + " to run (a lost wake-up?)"));
  }
  TerminateRuntime();  // no fiber may outlive `seen`, even after a failure
}

// Fiber i starts fiber i + 1 and ends, so exactly one fiber is ready at a time
// while the other workers have nothing to do. With `groups` > 1, link i runs in
// group i % groups and may not be stolen, so every hand-off has to wake the
// sleeping workers of another group.
class Chain {
 public:
  Chain(std::size_t length, std::size_t groups) : length_(length), groups_(groups) {}

  bool Start() { return StartLink(0); }

  std::size_t links_run() const { return links_run_.load(); }
  bool done() const { return done_.load(std::memory_order_acquire); }
  bool broken() const { return broken_.load(); }

 private:
  bool StartLink(std::size_t i) {
    FiberAttributes attrs;
    if (groups_ > 1) {
      attrs.scheduling_group = i % groups_;
      attrs.scheduling_group_local = true;
    }
    return StartFiberDetached(attrs, [this, i] { Link(i); });
  }

  void Link(std::size_t i) {
    if (links_run_.fetch_add(1, std::memory_order_relaxed) != i) broken_ = true;
    if (i + 1 == length_ || broken_) {
      done_.store(true, std::memory_order_release);
      return;
    }
    if (!StartLink(i + 1)) {
      broken_ = true;
      done_.store(true, std::memory_order_release);
    }
  }

  const std::size_t length_;
  const std::size_t groups_;
  std::atomic<std::size_t> links_run_{0};
  std::atomic<bool> broken_{false};
  std::atomic<bool> done_{false};
};

void RunChain(const RuntimeOptions& options, std::size_t length) {
  Runtime runtime(options);
  Chain chain(length, GetSchedulingGroupCount());
  ASSERT_TRUE(chain.Start());
  WaitOrAbort(PollUntil([&] { return chain.done(); },
                        "the chain of fibers to end (a lost wake-up?)",
                        2 * kGenerousTimeout)
              << "; stalled after " << chain.links_run() << " of " << length << " links");
  TerminateRuntime();
  EXPECT_FALSE(chain.broken()) << "a link ran out of order, twice, or failed to start";
  EXPECT_EQ(length, chain.links_run());
}

TEST(WakePolicy, ChainOfFibersStartingFibersCompletesOnIdleWorkers) {
  RunChain(OptionsWithWorkers(8), Scaled(1000000));
}

TEST(WakePolicy, ChainOfFibersHoppingGroupsCompletesOnIdleWorkers) {
  RuntimeOptions options = OptionsWithWorkers(8);
  options.scheduling_group_size = 1;  // eight groups of one worker
  // Every hop is a futex wake-up of a sleeping thread (~100 us on a loaded VM).
  RunChain(options, Scaled(50000));
}

TEST(WakePolicy, FibersJoiningFibersAcrossGroupsCompleteOnIdleWorkers) {
  // Two groups of four workers; each hand-off crosses groups and wakes a sleeper.
  RuntimeOptions options = OptionsWithWorkers(8);
  options.scheduling_group_size = 4;
  Runtime runtime(options);
  ASSERT_EQ(2u, GetSchedulingGroupCount());
  constexpr std::size_t handoffs = Scaled(100000);
  std::size_t ran = 0;  // plain data: each Join() must publish it
  Watchdog watchdog("fibers joining fibers in the other group");
  Fiber driver([&ran] {
    for (std::size_t i = 0; i != handoffs; ++i) {
      FiberAttributes attrs;
      attrs.scheduling_group = i % 2;
      attrs.scheduling_group_local = true;
      Fiber fiber(attrs, [&ran] { ++ran; });
      fiber.Join();
    }
  });
  driver.Join();
  EXPECT_EQ(handoffs, ran);
}

}  // namespace
}  // namespace weft
