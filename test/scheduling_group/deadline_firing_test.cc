// Who fires a scheduling group's deadlines (runtime/scheduling_group/
// timer_worker.h): awake workers, between fibers and while they spin, with the
// TimerWorker as the backstop; the TimerWorker alone, on time, once every
// worker sleeps. Whoever fires, a deadline fires once, never early, and the
// fiber it wakes runs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "runtime/timer/timer.h"
#include "test/test_util.h"

namespace weft {
namespace {

using Clock = std::chrono::steady_clock;
using testing::OptionsWithWorkers;
using testing::SumOverGroups;

std::uint64_t TimersFired() { return SumOverGroups(&SchedulingGroupStats::timers_fired); }

// Yields the calling (plain) thread until `done` holds or the generous timeout
// passes; returns whether it held.
template <class Done>
bool AwaitCondition(Done&& done) {
  const auto give_up = Clock::now() + testing::kGenerousTimeout;
  while (!done()) {
    if (Clock::now() > give_up) return false;
    std::this_thread::yield();
  }
  return true;
}

// Fibers that keep yielding, so that the workers never idle and look at the
// deadlines between fibers; they stop at Stop().
class Yielders {
 public:
  explicit Yielders(int count) : done_(count) {
    for (int i = 0; i < count; ++i) {
      StartFiberDetached([this] {
        while (!stop_.load()) this_fiber::Yield();
        done_.CountDown();
      });
    }
  }
  void Stop() {
    stop_.store(true);
    done_.Wait();
  }

 private:
  std::atomic<bool> stop_{false};
  FiberLatch done_;
};

class DeadlineFiringTest : public ::testing::Test {
 protected:
  void TearDown() override { TerminateRuntime(); }
};

// Every worker runs a fiber that never blocks nor yields, so no worker looks
// at the deadlines between fibers: the TimerWorker fires the one that comes
// due, and the fiber it wakes runs once a worker is free. (If the machine is
// so slow that both workers are held only after the deadline, the round
// proves nothing and is run again with a longer sleep.)
TEST_F(DeadlineFiringTest, ADueDeadlineFiresWhileEveryWorkerIsBusy) {
  constexpr std::size_t kWorkers = 2;
  StartRuntime(OptionsWithWorkers(kWorkers));
  bool held_before_due = false;
  for (auto sleep = std::chrono::milliseconds(2);
       !held_before_due && sleep <= std::chrono::seconds(2); sleep *= 2) {
    std::atomic<bool> parked{false};
    std::atomic<bool> woke{false};
    std::atomic<Clock::rep> due{0};
    StartFiberDetached([&, sleep] {
      const auto deadline = Clock::now() + sleep;
      due.store(deadline.time_since_epoch().count());
      parked.store(true);
      this_fiber::SleepUntil(deadline);
      woke.store(true);
    });
    ASSERT_TRUE(AwaitCondition([&] { return parked.load(); }));
    // Read before the deadline if the workers are held before it (checked
    // below): no deadline fires early, so none of this round's has yet.
    const std::uint64_t fired_before = TimersFired();

    std::atomic<bool> release{false};
    std::atomic<std::size_t> spinning{0};
    FiberLatch spinners_done(kWorkers);
    for (std::size_t i = 0; i < kWorkers; ++i) {
      StartFiberDetached([&] {
        spinning.fetch_add(1);
        while (!release.load()) {
        }
        spinners_done.CountDown();
      });
    }
    ASSERT_TRUE(AwaitCondition([&] { return spinning.load() == kWorkers; }));
    held_before_due = Clock::now().time_since_epoch().count() < due.load();
    if (held_before_due) {
      // Both workers are held; the deadline fires without them.
      EXPECT_TRUE(AwaitCondition([&] { return TimersFired() > fired_before; }));
      EXPECT_FALSE(woke.load()) << "the woken fiber ran although every worker was held";
    }
    release.store(true);
    spinners_done.Wait();
    EXPECT_TRUE(AwaitCondition([&] { return woke.load(); }));
  }
  EXPECT_TRUE(held_before_due) << "the workers were never held before the deadline";
}

// With every worker asleep between the sleeps, each wake-up comes from the
// timer thread sleeping until the deadline exactly: none is lost, none early.
TEST_F(DeadlineFiringTest, DeadlinesFireWhileEveryWorkerSleeps) {
  StartRuntime(OptionsWithWorkers(2));
  const int sleeps = static_cast<int>(testing::Scaled(50, 10));
  std::atomic<int> early{0};
  FiberLatch done(1);
  StartFiberDetached([&] {
    for (int i = 0; i < sleeps; ++i) {
      const auto deadline = Clock::now() + std::chrono::microseconds(500 + 100 * (i % 7));
      this_fiber::SleepUntil(deadline);
      if (Clock::now() < deadline) early.fetch_add(1);
    }
    done.CountDown();
  });
  done.Wait();
  EXPECT_EQ(early.load(), 0);
}

// Workers kept awake by fibers that yield fire most deadlines themselves,
// racing the timer thread: a thousand sleepers each wake once, never before
// their deadline.
TEST_F(DeadlineFiringTest, AwakeWorkersFireEachDeadlineOnceAndNeverEarly) {
  StartRuntime(OptionsWithWorkers(2));
  const int sleepers = static_cast<int>(testing::Scaled(1000, 100));
  Yielders yielders(2);
  std::vector<std::atomic<int>> wake_ups(sleepers);
  std::atomic<int> early{0};
  FiberLatch sleepers_done(sleepers);
  for (int i = 0; i < sleepers; ++i) {
    StartFiberDetached([&, i] {
      std::mt19937 random(static_cast<unsigned>(i));
      for (int round = 0; round < 3; ++round) {
        const auto deadline = Clock::now() + std::chrono::microseconds(random() % 2000);
        this_fiber::SleepUntil(deadline);
        if (Clock::now() < deadline) early.fetch_add(1);
      }
      wake_ups[i].fetch_add(1);
      sleepers_done.CountDown();
    });
  }
  sleepers_done.Wait();
  yielders.Stop();
  EXPECT_EQ(early.load(), 0);
  for (int i = 0; i < sleepers; ++i) {
    ASSERT_EQ(wake_ups[i].load(), 1) << "sleeper " << i;
  }
}

// User timers set while the workers are busy fire each once and never early,
// whether a worker or the timer thread fires them.
TEST_F(DeadlineFiringTest, TimersSetWhileWorkersAreBusyFireOnceAndNeverEarly) {
  StartRuntime(OptionsWithWorkers(2));
  const int timers = static_cast<int>(testing::Scaled(200, 50));
  Yielders yielders(2);
  std::vector<std::atomic<int>> runs(timers);
  std::atomic<int> early{0};
  FiberLatch fired(timers);
  const auto base = Clock::now() + std::chrono::milliseconds(5);
  std::vector<TimerId> ids;
  ids.reserve(timers);
  for (int i = 0; i < timers; ++i) {
    const auto due = base + std::chrono::microseconds(200) * i;
    ids.push_back(SetTimer(due, [&, i, due] {
      if (Clock::now() < due) early.fetch_add(1);
      runs[i].fetch_add(1);
      fired.CountDown();
    }));
  }
  fired.Wait();
  for (TimerId id : ids) KillTimer(id);
  yielders.Stop();
  EXPECT_EQ(early.load(), 0);
  for (int i = 0; i < timers; ++i) ASSERT_EQ(runs[i].load(), 1) << "timer " << i;
}

}  // namespace
}  // namespace weft
