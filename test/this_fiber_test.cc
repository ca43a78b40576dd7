// Tests runtime/this_fiber.h: Yield and GetId.
#include "runtime/this_fiber.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::OptionsWithWorkers;
using testing::OsThreadId;
using testing::PollUntil;
using testing::Scaled;
using testing::Watchdog;

class ThisFiberTest : public testing::WorkerCountTest {};
WEFT_INSTANTIATE_OVER_WORKER_COUNTS(ThisFiberTest);

TEST(ThisFiber, GetIdIsZeroOnAPlainThread) {
  EXPECT_EQ(0u, this_fiber::GetId());
  Runtime runtime(OptionsWithWorkers(1));
  EXPECT_EQ(0u, this_fiber::GetId());
  std::uint64_t other_thread_id = 1;
  std::thread([&other_thread_id] { other_thread_id = this_fiber::GetId(); }).join();
  EXPECT_EQ(0u, other_thread_id);
}

TEST(ThisFiber, YieldOnAPlainThreadReturns) {
  this_fiber::Yield();
  Runtime runtime(OptionsWithWorkers(1));
  for (int i = 0; i != 100; ++i) this_fiber::Yield();
  EXPECT_EQ(0u, this_fiber::GetId());
}

TEST_P(ThisFiberTest, GetIdIsNonZeroAndDistinctAmongLiveFibers) {
  const std::size_t count = Scaled(1000, 50);
  std::vector<std::uint64_t> ids(count);
  std::vector<std::uint64_t> ids_after_yield(count);
  std::atomic<std::size_t> arrived{0};
  std::atomic<bool> all_alive{false};
  std::vector<Fiber> fibers;
  for (std::size_t i = 0; i != count; ++i) {
    fibers.emplace_back([&, i] {
      ids[i] = this_fiber::GetId();
      // Stay alive until every fiber has taken its id, so that none can be reused.
      if (arrived.fetch_add(1) + 1 == count) all_alive = true;
      while (!all_alive) this_fiber::Yield();
      ids_after_yield[i] = this_fiber::GetId();
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();

  std::set<std::uint64_t> distinct;
  for (std::size_t i = 0; i != count; ++i) {
    EXPECT_NE(0u, ids[i]) << "fiber " << i;
    EXPECT_EQ(ids[i], ids_after_yield[i]) << "fiber " << i << "'s id changed";
    distinct.insert(ids[i]);
  }
  EXPECT_EQ(count, distinct.size()) << "live fibers shared an id";
}

TEST_P(ThisFiberTest, IdsAreNotReusedAfterFibersEnd) {
  std::set<std::uint64_t> ids;
  for (std::size_t i = 0; i != Scaled(200, 20); ++i) {
    std::uint64_t id = 0;
    Fiber fiber([&id] { id = this_fiber::GetId(); });
    fiber.Join();
    EXPECT_TRUE(ids.insert(id).second) << "id " << id << " reused";
  }
}

// Every worker is kept busy by a fiber spinning on Yield(); the fiber that ends
// their loop is started only once they all spin, and must still get to run.
void ExpectSpinnersLetTheSetterRun(std::size_t spinners) {
  std::atomic<bool> flag{false};
  std::atomic<std::size_t> spinning{0};
  std::vector<Fiber> fibers;
  for (std::size_t i = 0; i != spinners; ++i) {
    fibers.emplace_back([&flag, &spinning] {
      spinning.fetch_add(1);
      while (!flag.load(std::memory_order_acquire)) this_fiber::Yield();
    });
  }
  EXPECT_TRUE(
      PollUntil([&] { return spinning.load() == spinners; }, "every spinner to start"));
  fibers.emplace_back([&flag] { flag.store(true, std::memory_order_release); });
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_TRUE(flag.load());
}

TEST_P(ThisFiberTest, YieldingSpinnersStartedFromAThreadDoNotStarveTheSetter) {
  Watchdog watchdog("the setter fiber behind yielding spinners");
  ExpectSpinnersLetTheSetterRun(GetParam() + 1);
}

TEST_P(ThisFiberTest, YieldingSpinnersStartedFromAFiberDoNotStarveTheSetter) {
  Watchdog watchdog("the setter fiber behind yielding spinners");
  const std::size_t spinners = GetParam() + 1;
  Fiber starter([spinners] { ExpectSpinnersLetTheSetterRun(spinners); });
  starter.Join();
}

TEST_P(ThisFiberTest, YieldingSpinnersInEveryGroupDoNotStarveTheSetter) {
  Watchdog watchdog("the setter fibers behind yielding spinners");
  const std::size_t groups = GetSchedulingGroupCount();
  const std::size_t spinners = GetParam() + 1;
  std::vector<Fiber> per_group;
  for (std::size_t group = 0; group != groups; ++group) {
    FiberAttributes attrs;
    attrs.scheduling_group = group;
    attrs.scheduling_group_local = true;
    per_group.emplace_back(attrs,
                           [spinners] { ExpectSpinnersLetTheSetterRun(spinners); });
  }
  for (Fiber& fiber : per_group) fiber.Join();
}

TEST_P(ThisFiberTest, AYieldingFiberDoesNotStarveOthers) {
  Watchdog watchdog("fibers running beside a yielding fiber");
  const std::size_t yields = Scaled(100000);
  constexpr std::size_t kOthers = 8;
  constexpr int kIncrements = 1000;
  std::vector<int> counters(kOthers);  // each written by one fiber only
  std::atomic<std::size_t> others_started{0};
  std::atomic<std::size_t> others_done{0};
  std::size_t others_done_when_yielder_ended = 0;

  std::vector<Fiber> fibers;
  fibers.emplace_back([&] {
    // Yielding with nobody else ready returns at once: start counting once the
    // others are there.
    EXPECT_TRUE(PollUntil([&] { return others_started.load() == kOthers; },
                          "the other fibers to start"));
    for (std::size_t i = 0; i != yields; ++i) this_fiber::Yield();
    others_done_when_yielder_ended = others_done.load();
  });
  for (std::size_t b = 0; b != kOthers; ++b) {
    fibers.emplace_back([&counters, &others_started, &others_done, b] {
      others_started.fetch_add(1);
      for (int i = 0; i != kIncrements; ++i) {
        ++counters[b];
        this_fiber::Yield();
      }
      others_done.fetch_add(1);
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  for (std::size_t b = 0; b != kOthers; ++b) EXPECT_EQ(kIncrements, counters[b]);
  if (GetParam() == 1 && yields > kOthers * kIncrements) {
    // On one worker, Yield() queues the yielder behind every ready fiber, so the
    // others advance one step per yield and finish long before it does.
    EXPECT_EQ(kOthers, others_done_when_yielder_ended);
  }
}

// A yielding fiber goes back to the group's shared queue, so a busy worker that
// yields next takes it: it must not stay pinned to the worker it yielded on.
// Bounded by the other workers' progress rather than by time: on an overloaded
// machine the OS may not run the other workers for seconds, but every yield they
// do make takes the queue's oldest fiber, and the yielder is queued half the time.
TEST(ThisFiber, AYieldingFiberIsResumedOnMoreThanOneWorker) {
  constexpr std::size_t kWorkers = 4;
  Runtime runtime(OptionsWithWorkers(kWorkers));
  std::atomic<bool> stop{false};
  std::atomic<long> yielder_thread{0};
  std::atomic<std::size_t> foreign_yields{0};  // by busy fibers off the yielder's thread
  std::vector<Fiber> busy;
  for (std::size_t i = 0; i != kWorkers; ++i) {
    busy.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        // Some CPU work between yields, so that workers are seen busy.
        volatile std::uint64_t sink = 0;
        for (int j = 0; j != 1000; ++j) sink = sink + j;
        // Counted only once the yielder runs: its own start may take long.
        const long yielder_on = yielder_thread.load(std::memory_order_relaxed);
        if (yielder_on != 0 && yielder_on != OsThreadId()) {
          foreign_yields.fetch_add(1, std::memory_order_relaxed);
        }
        this_fiber::Yield();
      }
    });
  }
  const std::size_t enough = Scaled(1'000'000);
  std::set<long> threads;  // OS thread ids
  std::size_t yields = 0;
  Fiber yielder([&] {
    yielder_thread = OsThreadId();
    threads.insert(yielder_thread);
    while (threads.size() < 2 &&
           foreign_yields.load(std::memory_order_relaxed) < enough) {
      this_fiber::Yield();
      ++yields;
      yielder_thread = OsThreadId();
      threads.insert(yielder_thread);
    }
    stop = true;
  });
  yielder.Join();
  for (Fiber& fiber : busy) fiber.Join();
  EXPECT_GE(threads.size(), 2u)
      << "a yielding fiber stayed on one of " << kWorkers << " busy workers for "
      << yields << " yields while the "
      << "other workers yielded " << foreign_yields.load() << " times";
}

using std::chrono::milliseconds;
using std::chrono::steady_clock;

TEST_P(ThisFiberTest, SleepForLastsAtLeastTheRequestedTime) {
  std::atomic<std::size_t> too_early{0};
  std::atomic<std::size_t> done{0};
  const std::size_t sleepers = Scaled(2000, 200);
  for (std::size_t i = 0; i != sleepers; ++i) {
    ASSERT_TRUE(StartFiberDetached([&, i] {
      const auto requested = std::chrono::microseconds(i % 3000);
      const auto start = steady_clock::now();
      this_fiber::SleepFor(requested);
      if (steady_clock::now() - start < requested) ++too_early;
      ++done;
    }));
  }
  testing::WaitOrAbort(
      PollUntil([&] { return done.load() == sleepers; }, "the sleepers"));
  EXPECT_EQ(too_early.load(), 0u);
}

TEST(ThisFiber, ASleepingFiberDoesNotBlockItsWorker) {
  Runtime runtime(OptionsWithWorkers(1));
  std::atomic<bool> other_ran{false};
  bool other_ran_during_sleep = false;
  Fiber sleeper([&] {
    // Readied after the sleeper parks, on the only worker.
    ASSERT_TRUE(StartFiberDetached([&] { other_ran = true; }));
    this_fiber::SleepFor(milliseconds(20));
    other_ran_during_sleep = other_ran.load();
  });
  sleeper.Join();
  EXPECT_TRUE(other_ran_during_sleep);
}

TEST_P(ThisFiberTest, SleepUntilAcceptsAnyClockAndPastDeadlinesReturnAtOnce) {
  Fiber([] {
    const auto system_deadline = std::chrono::system_clock::now() + milliseconds(10);
    this_fiber::SleepUntil(system_deadline);
    EXPECT_GE(std::chrono::system_clock::now() + milliseconds(1), system_deadline);
    const auto steady_deadline = steady_clock::now() + milliseconds(10);
    this_fiber::SleepUntil(steady_deadline);
    EXPECT_GE(steady_clock::now(), steady_deadline);
    // These would never return if treated as far-future deadlines.
    this_fiber::SleepUntil(steady_clock::now() - std::chrono::hours(1));
    this_fiber::SleepUntil(steady_clock::time_point::min());
    this_fiber::SleepFor(std::chrono::hours(-1));
    this_fiber::SleepFor(std::chrono::nanoseconds::zero());
    this_fiber::SleepFor(std::chrono::duration<double>(-0.5));
  }).Join();
}

TEST(ThisFiber, SleepOnAPlainThreadBlocksTheThread) {
  const auto start = steady_clock::now();
  this_fiber::SleepFor(milliseconds(10));
  EXPECT_GE(steady_clock::now() - start, milliseconds(10));
  const auto deadline = steady_clock::now() + milliseconds(5);
  this_fiber::SleepUntil(deadline);
  EXPECT_GE(steady_clock::now(), deadline);
  this_fiber::SleepFor(std::chrono::hours(-1));
}

TEST(ThisFiber, TerminateWaitsForSleepingFibersToFinishTheirSleep) {
  StartRuntime(OptionsWithWorkers(2));
  std::atomic<int> finished{0};
  for (int i = 0; i != 100; ++i) {
    ASSERT_TRUE(StartFiberDetached([&, i] {
      this_fiber::SleepFor(milliseconds(i % 20));
      ++finished;
    }));
  }
  TerminateRuntime();
  EXPECT_EQ(finished.load(), 100);
}

}  // namespace
}  // namespace weft
