#include "runtime/sync/fiber_mutex.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/sync/fiber_timed_mutex.h"
#include "runtime/this_fiber.h"
#include "test/sync/sync_test_util.h"

namespace weft {
namespace {

using testing::Actor;
using testing::PollUntil;
using testing::Scaled;
using testing::Side;
using testing::WaitOrAbort;

class FiberMutexTest : public testing::WaiterNotifierTest {};

// Half the lockers are `waiter()` kind, half `notifier()` kind; every increment
// of a plain counter under the mutex must survive, and no two holders overlap.
TEST_P(FiberMutexTest, ExcludesFibersAndThreadsAlike) {
  FiberMutex mutex;
  long counter = 0;
  std::atomic<int> holders{0};
  std::atomic<bool> overlap{false};
  const int per_actor = static_cast<int>(Scaled(10000, 1000));
  constexpr int kActorsPerSide = 4;
  {
    std::vector<Actor> actors;
    for (int i = 0; i != 2 * kActorsPerSide; ++i) {
      actors.emplace_back(i % 2 == 0 ? waiter() : notifier(), [&] {
        for (int k = 0; k != per_actor; ++k) {
          std::lock_guard<FiberMutex> lock(mutex);
          if (holders.fetch_add(1) != 0) overlap = true;
          ++counter;
          if (k % 64 == 0) this_fiber::Yield();  // hold it across a switch now and then
          holders.fetch_sub(1);
        }
      });
    }
  }
  EXPECT_FALSE(overlap.load());
  EXPECT_EQ(counter, 2L * kActorsPerSide * per_actor);
}

TEST_P(FiberMutexTest, UnlockWakesAParkedWaiter) {
  FiberMutex mutex;
  mutex.lock();
  std::atomic<bool> acquired{false};
  Actor waiting(waiter(), [&] {
    mutex.lock();
    acquired = true;
    mutex.unlock();
  });
  Actor releasing(notifier(), [&] {
    // Let the waiter get past its spinning and park (observed, not relied on).
    for (int i = 0; i != 1000 && !acquired.load(); ++i) this_fiber::Yield();
    EXPECT_FALSE(acquired.load());
    mutex.unlock();
  });
  releasing.Join();
  waiting.Join();
  EXPECT_TRUE(acquired.load());
}

TEST_P(FiberMutexTest, TimedLockTimesOutWhileHeldAndSucceedsOnceReleased) {
  FiberTimedMutex mutex;
  mutex.lock();
  Actor(waiter(), [&] {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(mutex.try_lock_for(std::chrono::milliseconds(10)));
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(10));
    EXPECT_FALSE(
        mutex.try_lock_until(std::chrono::system_clock::now() - std::chrono::seconds(1)));
    EXPECT_FALSE(mutex.try_lock_for(std::chrono::seconds(-1)));
  }).Join();
  std::atomic<bool> got{false};
  Actor locker(waiter(), [&] {
    got = mutex.try_lock_for(std::chrono::seconds(60));
    if (got) mutex.unlock();
  });
  Actor(notifier(), [&] { mutex.unlock(); }).Join();
  locker.Join();
  EXPECT_TRUE(got.load());
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(FiberMutexTest);

TEST(FiberMutex, WorksWithStdLocks) {
  Runtime runtime(testing::OptionsWithWorkers(2));
  FiberMutex a;
  FiberMutex b;
  Fiber([&] {
    std::unique_lock<FiberMutex> lock(a);
    EXPECT_TRUE(lock.owns_lock());
    lock.unlock();
    EXPECT_TRUE(a.try_lock());
    a.unlock();
    std::scoped_lock both(a, b);
    EXPECT_FALSE(a.try_lock());
    EXPECT_FALSE(b.try_lock());
  }).Join();
}

// 10k fibers and a few threads contend; every increment survives.
TEST(FiberMutex, TenThousandFibersStress) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  FiberMutex mutex;
  long counter = 0;
  const std::size_t fibers = Scaled(10000, 1000);
  constexpr int kRounds = 20;
  std::atomic<std::size_t> done{0};
  for (std::size_t i = 0; i != fibers; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      for (int k = 0; k != kRounds; ++k) {
        mutex.lock();
        ++counter;
        mutex.unlock();
        if (k % 4 == 0) this_fiber::Yield();
      }
      ++done;
    }));
  }
  std::thread thread([&] {
    for (int k = 0; k != 10000; ++k) {
      std::lock_guard<FiberMutex> lock(mutex);
      ++counter;
    }
  });
  thread.join();
  WaitOrAbort(PollUntil([&] { return done.load() == fibers; }, "every fiber"));
  std::lock_guard<FiberMutex> lock(mutex);
  EXPECT_EQ(counter, static_cast<long>(fibers) * kRounds + 10000);
}

// Four fibers hammer the mutex; a plain thread asking for it must get it while
// they still run (the bound on their loop only ends a failing test).
TEST(FiberMutex, AWaiterIsNotStarvedByLockersThatNeverPause) {
  Runtime runtime(testing::OptionsWithWorkers(2));
  FiberMutex mutex;
  std::atomic<bool> waiter_done{false};
  std::atomic<int> hammering{0};
  std::atomic<bool> starved{false};
  std::vector<Fiber> hammers;
  for (int i = 0; i != 4; ++i) {
    hammers.emplace_back([&] {
      ++hammering;
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (!waiter_done.load()) {
        mutex.lock();
        detail::CpuRelax();
        mutex.unlock();
        if (std::chrono::steady_clock::now() > give_up) {
          starved = true;
          break;
        }
      }
    });
  }
  WaitOrAbort(PollUntil([&] { return hammering.load() == 4; }, "the hammering fibers"));
  std::thread waiter([&] {
    mutex.lock();
    waiter_done = true;
    mutex.unlock();
  });
  waiter.join();
  for (Fiber& fiber : hammers) fiber.Join();
  EXPECT_FALSE(starved.load());
}

TEST(FiberMutexDeathTest, UnlockingAnUnlockedMutexAborts) {
  FiberMutex mutex;
  EXPECT_DEATH(mutex.unlock(), "not locked");
}

TEST(FiberMutexDeathTest, DestroyingALockedMutexAborts) {
  EXPECT_DEATH(
      {
        FiberMutex mutex;
        mutex.lock();
      },
      "destroyed while locked");
}

}  // namespace
}  // namespace weft
