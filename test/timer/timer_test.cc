#include "runtime/timer/timer.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <system_error>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/timer_worker.h"
#include "runtime/this_fiber.h"
#include "test/test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::PollUntil;
using testing::Scaled;
using testing::SumOverGroups;
using testing::WaitOrAbort;

class TimerTest : public testing::WorkerCountTest {};

TEST_P(TimerTest, OneShotRunsOnceInAFiberNoEarlierThanItsDeadline) {
  const auto deadline = steady_clock::now() + milliseconds(20);
  std::atomic<int> runs{0};
  std::atomic<bool> in_fiber{false};
  std::atomic<bool> on_time{false};
  DetachTimer(SetTimer(deadline, [&] {
    in_fiber = this_fiber::GetId() != 0;
    on_time = steady_clock::now() >= deadline;
    ++runs;
  }));
  WaitOrAbort(PollUntil([&] { return runs.load() == 1; }, "the timer to fire"));
  EXPECT_TRUE(in_fiber.load()) << "callbacks run in fibers, not on the timer thread";
  EXPECT_TRUE(on_time.load()) << "fired before its deadline";
  // A later timer proves the first one does not fire again meanwhile.
  std::atomic<bool> later{false};
  DetachTimer(SetTimer(steady_clock::now() + milliseconds(20), [&] { later = true; }));
  WaitOrAbort(PollUntil([&] { return later.load(); }, "the later timer"));
  EXPECT_EQ(runs.load(), 1);
}

TEST_P(TimerTest, DeadlineInThePastFiresSoon) {
  std::atomic<bool> fired{false};
  DetachTimer(
      SetTimer(steady_clock::now() - std::chrono::hours(1), [&] { fired = true; }));
  WaitOrAbort(PollUntil([&] { return fired.load(); }, "a timer set in the past"));
}

TEST_P(TimerTest, CallbacksMayBlockAndSleep) {
  std::atomic<bool> done{false};
  DetachTimer(SetTimer(steady_clock::now(), [&] {
    this_fiber::SleepFor(milliseconds(5));
    Fiber([] {}).Join();
    done = true;
  }));
  WaitOrAbort(PollUntil([&] { return done.load(); }, "the blocking callback"));
}

TEST_P(TimerTest, PeriodicTimerRepeatsUntilKilledAndNeverAfter) {
  std::atomic<int> runs{0};
  const TimerId id = SetTimer(steady_clock::now(), milliseconds(2), [&] { ++runs; });
  WaitOrAbort(PollUntil([&] { return runs.load() >= 5; }, "five periodic runs"));
  KillTimer(id);
  const int at_kill = runs.load();
  // Wait for a timer set after the kill and due after several more periods: the
  // killed one, had it survived, would have run meanwhile.
  std::atomic<bool> later{false};
  DetachTimer(SetTimer(steady_clock::now() + milliseconds(20), [&] { later = true; }));
  WaitOrAbort(PollUntil([&] { return later.load(); }, "the later timer"));
  EXPECT_EQ(runs.load(), at_kill);
}

TEST_P(TimerTest, SlowPeriodicCallbackDoesNotPileUpRuns) {
  std::atomic<int> concurrent{0};
  std::atomic<int> max_concurrent{0};
  std::atomic<int> runs{0};
  const TimerId id = SetTimer(steady_clock::now(), milliseconds(1), [&] {
    const int now_running = ++concurrent;
    int seen = max_concurrent.load();
    while (now_running > seen &&
           !max_concurrent.compare_exchange_weak(seen, now_running)) {
    }
    this_fiber::SleepFor(milliseconds(5));  // five periods
    --concurrent;
    ++runs;
  });
  WaitOrAbort(PollUntil([&] { return runs.load() >= 4; }, "four slow runs"));
  KillTimer(id);
  EXPECT_EQ(max_concurrent.load(), 1) << "runs of one periodic timer overlapped";
}

// KillTimer from a plain thread racing a callback that is due: once KillTimer
// returns, the callback has either finished or will never start, including in
// the gap between the timer firing and its callback's fiber starting.
TEST_P(TimerTest, NoCallbackStartsAfterKillFromAPlainThreadReturns) {
  const int rounds = static_cast<int>(testing::Scaled(3000, 300));
  // Shared: a callback that (wrongly) starts late may outlive this test.
  auto late_starts = std::make_shared<std::atomic<int>>(0);
  for (int round = 0; round != rounds; ++round) {
    auto killed = std::make_shared<std::atomic<bool>>(false);
    const TimerId id = SetTimer(steady_clock::now(), [killed, late_starts] {
      if (killed->load()) late_starts->fetch_add(1);
    });
    if (round % 2 == 0) std::this_thread::yield();  // vary where the race lands
    KillTimer(id);
    killed->store(true);
  }
  EXPECT_EQ(late_starts->load(), 0) << "callbacks started after KillTimer returned";
}

TEST_P(TimerTest, KillWaitsForARunningCallback) {
  std::atomic<bool> started{false};
  std::atomic<bool> kill_called{false};
  std::atomic<bool> finished{false};
  const TimerId id = SetTimer(steady_clock::now(), [&] {
    started = true;
    WaitOrAbort(PollUntil([&] { return kill_called.load(); }, "KillTimer to be called"));
    // Keep running a while after KillTimer was entered, so that it has to wait.
    for (int i = 0; i != 1000; ++i) this_fiber::Yield();
    finished = true;
  });
  WaitOrAbort(PollUntil([&] { return started.load(); }, "the callback to start"));
  bool finished_at_return = false;
  Fiber killer([&] {
    kill_called = true;
    KillTimer(id);
    finished_at_return = finished.load();
  });
  killer.Join();
  EXPECT_TRUE(finished_at_return) << "KillTimer returned while the callback still ran";
}

TEST_P(TimerTest, KillFromItsOwnCallbackDoesNotDeadlockAndStopsLaterRuns) {
  std::atomic<int> runs{0};
  auto id = std::make_shared<std::atomic<TimerId>>(0);
  std::atomic<bool> killed{false};
  const TimerId set = SetTimer(steady_clock::now(), milliseconds(1), [&, id] {
    if (++runs == 3) {
      while (id->load() == 0) this_fiber::Yield();
      KillTimer(id->load());
      killed = true;
    }
  });
  id->store(set);
  WaitOrAbort(PollUntil([&] { return killed.load(); }, "the self-kill"));
  std::atomic<bool> later{false};
  DetachTimer(SetTimer(steady_clock::now() + milliseconds(20), [&] { later = true; }));
  WaitOrAbort(PollUntil([&] { return later.load(); }, "the later timer"));
  EXPECT_EQ(runs.load(), 3);
}

TEST_P(TimerTest, ScopedTimerKillsOnDestructionAndMoves) {
  std::atomic<int> runs{0};
  {
    ScopedTimer outer;
    {
      ScopedTimer timer(
          SetTimer(steady_clock::now() + std::chrono::hours(1), [&] { ++runs; }));
      EXPECT_NE(timer.id(), 0u);
      outer = std::move(timer);
      EXPECT_EQ(timer.id(), 0u);
    }
    EXPECT_NE(outer.id(), 0u);
  }
  std::atomic<bool> fired{false};
  ScopedTimer released(SetTimer(steady_clock::now(), [&] { fired = true; }));
  DetachTimer(released.Release());
  WaitOrAbort(PollUntil([&] { return fired.load(); }, "the released timer"));
  EXPECT_EQ(runs.load(), 0);
}

// 1M timers set from 16 threads; half of them are killed by other fibers before
// they are due. Exactly the others fire, each once.
TEST(TimerStress, HalfOfManyTimersKilledByOtherFibersExactlyTheRestFireOnce) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  constexpr std::size_t kThreads = 16;
  const std::size_t per_thread = Scaled(62500, 2000);
  const std::size_t total = kThreads * per_thread;
  std::vector<std::atomic<std::uint8_t>> runs(total);
  std::vector<TimerId> to_kill(total / 2);
  std::atomic<std::size_t> fired{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t != kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto start = steady_clock::now();
      for (std::size_t i = 0; i != per_thread; ++i) {
        const std::size_t index = t * per_thread + i;
        auto callback = [&, index] {
          ++runs[index];
          ++fired;
        };
        if (index % 2 == 0) {
          // Killed long before it is due.
          to_kill[index / 2] = SetTimer(start + std::chrono::hours(1), callback);
        } else {
          DetachTimer(SetTimer(start + milliseconds(index % 200), callback));
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::atomic<std::size_t> killed{0};
  constexpr std::size_t kKillers = 16;
  for (std::size_t k = 0; k != kKillers; ++k) {
    ASSERT_TRUE(StartFiberDetached([&, k] {
      for (std::size_t i = k; i < to_kill.size(); i += kKillers) {
        KillTimer(to_kill[i]);
        ++killed;
      }
    }));
  }
  WaitOrAbort(PollUntil([&] { return killed.load() == to_kill.size(); }, "the kills"));
  WaitOrAbort(PollUntil([&] { return fired.load() == total / 2; }, "the live timers"));
  for (std::size_t i = 0; i != total; ++i) {
    ASSERT_EQ(runs[i].load(), i % 2 == 0 ? 0 : 1) << "timer " << i;
  }
}

// Timers that come due while they are being killed: each runs at most once, and
// never after its KillTimer returned.
TEST(TimerStress, KillRacingTheDeadlineRunsAtMostOnceAndNeverAfterTheKill) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  const std::size_t timers = Scaled(20000, 2000);
  std::vector<std::atomic<int>> runs(timers);
  std::vector<std::atomic<bool>> kill_returned(timers);
  std::atomic<std::size_t> late_runs{0};
  std::atomic<std::size_t> done{0};
  for (std::size_t i = 0; i != timers; ++i) {
    ASSERT_TRUE(StartFiberDetached([&, i] {
      const TimerId id =
          SetTimer(steady_clock::now() + std::chrono::microseconds(i % 100), [&, i] {
            if (kill_returned[i].load()) ++late_runs;
            ++runs[i];
          });
      if (i % 3 == 0) this_fiber::Yield();
      KillTimer(id);
      kill_returned[i] = true;
      ++done;
    }));
  }
  WaitOrAbort(PollUntil([&] { return done.load() == timers; }, "every kill"));
  TerminateRuntime();
  EXPECT_EQ(late_runs.load(), 0u);
  for (std::size_t i = 0; i != timers; ++i) ASSERT_LE(runs[i].load(), 1) << i;
}

// Far-off timers killed soon after they are set (RPC deadlines) must not hold
// memory until they would have been due: nothing else wakes the timer thread
// here, so only the drain on a batch of submissions or kills frees them.
TEST(TimerStress, KilledFarOffTimersAreDroppedLongBeforeTheirDeadline) {
  Runtime runtime(testing::OptionsWithWorkers(1));
  constexpr std::size_t pairs = Scaled(300000, 30000);
  Fiber([] {
    for (std::size_t i = 0; i != pairs; ++i) {
      KillTimer(SetTimer(steady_clock::now() + std::chrono::hours(1), [] {}));
    }
  }).Join();
  const std::uint64_t bound = 4 * detail::TimerWorker::kDrainBatch;
  EXPECT_TRUE(PollUntil(
      [&] { return SumOverGroups(&SchedulingGroupStats::timers_pending) < bound; },
      "the killed timers to be dropped"))
      << SumOverGroups(&SchedulingGroupStats::timers_pending) << " still held after "
      << pairs << " set+kill pairs";
}

TEST(TimerShutdown, PendingTimersAreCancelledAndIdsStayUsable) {
  std::atomic<int> runs{0};
  std::vector<TimerId> kept;
  StartRuntime(testing::OptionsWithWorkers(2));
  for (int i = 0; i != 5000; ++i) {
    const TimerId id =
        SetTimer(steady_clock::now() + std::chrono::hours(1), [&] { ++runs; });
    if (i % 2 == 0) {
      DetachTimer(id);
    } else {
      kept.push_back(id);
    }
  }
  std::atomic<bool> periodic_ran{false};
  const TimerId periodic =
      SetTimer(steady_clock::now(), milliseconds(1), [&] { periodic_ran = true; });
  WaitOrAbort(PollUntil([&] { return periodic_ran.load(); }, "the periodic timer"));
  TerminateRuntime();
  EXPECT_EQ(runs.load(), 0);
  for (TimerId id : kept) KillTimer(id);
  KillTimer(periodic);
  // A fresh runtime starts with no leftover timers.
  Runtime again(testing::OptionsWithWorkers(1));
  std::atomic<bool> fired{false};
  DetachTimer(SetTimer(steady_clock::now(), [&] { fired = true; }));
  WaitOrAbort(PollUntil([&] { return fired.load(); }, "a timer of the new runtime"));
}

TEST(TimerErrors, SetTimerWithoutARuntimeThrows) {
  EXPECT_THROW(SetTimer(steady_clock::now(), [] {}), std::system_error);
}

TEST(TimerErrors, NegativePeriodIsRejected) {
  Runtime runtime(testing::OptionsWithWorkers(1));
  EXPECT_THROW(SetTimer(steady_clock::now(), milliseconds(-1), [] {}),
               std::invalid_argument);
}

TEST(TimerDeathTest, KillingTimerZeroAborts) {
  EXPECT_DEATH(KillTimer(0), "0 is never a timer id");
  EXPECT_DEATH(DetachTimer(0), "0 is never a timer id");
}

WEFT_INSTANTIATE_OVER_WORKER_COUNTS(TimerTest);

}  // namespace
}  // namespace weft
