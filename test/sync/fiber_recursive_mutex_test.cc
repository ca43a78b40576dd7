#include "runtime/sync/fiber_recursive_mutex.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/this_fiber.h"
#include "test/sync/sync_test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::Actor;
using testing::PollUntil;
using testing::Scaled;
using testing::WaitOrAbort;

class FiberRecursiveMutexTest : public testing::WaiterNotifierTest {};

// Recursion depth d: lock d times through nested calls, with a yield inside
// (the fiber may resume on another worker and must still be the owner).
template <class Mutex>
void LockNested(Mutex& mutex, int depth, long* counter, std::atomic<int>* holders,
                std::atomic<bool>* overlap) {
  std::lock_guard<Mutex> lock(mutex);
  if (depth == 3) {
    if (holders->fetch_add(1) != 0) *overlap = true;
    ++*counter;
    this_fiber::Yield();
    holders->fetch_sub(1);
    return;
  }
  LockNested(mutex, depth + 1, counter, holders, overlap);
}

TEST_P(FiberRecursiveMutexTest, TheOwnerRelocksAndOthersAreExcludedUntilTheLastUnlock) {
  FiberRecursiveMutex mutex;
  FiberRecursiveTimedMutex timed;
  long counter = 0;
  long timed_counter = 0;
  std::atomic<int> holders{0};
  std::atomic<int> timed_holders{0};
  std::atomic<bool> overlap{false};
  const int per_actor = static_cast<int>(Scaled(3000, 300));
  {
    std::vector<Actor> actors;
    for (int i = 0; i != 6; ++i) {
      actors.emplace_back(i % 2 == 0 ? waiter() : notifier(), [&] {
        for (int k = 0; k != per_actor; ++k) {
          LockNested(mutex, 0, &counter, &holders, &overlap);
          LockNested(timed, 0, &timed_counter, &timed_holders, &overlap);
        }
      });
    }
  }
  EXPECT_FALSE(overlap.load());
  EXPECT_EQ(counter, 6L * per_actor);
  EXPECT_EQ(timed_counter, 6L * per_actor);
}

TEST_P(FiberRecursiveMutexTest, OthersWaitOrTimeOutWhileTheOwnerHoldsItAtAnyDepth) {
  FiberRecursiveTimedMutex mutex;
  std::atomic<int> stage{0};
  std::atomic<bool> acquired{false};
  Actor owner(notifier(), [&] {
    mutex.lock();
    EXPECT_TRUE(mutex.try_lock());
    EXPECT_TRUE(mutex.try_lock_for(milliseconds(1)));
    stage = 1;
    WaitOrAbort(PollUntil([&] { return stage.load() == 2; }, "the other party's tries"));
    mutex.unlock();
    mutex.unlock();
    EXPECT_FALSE(acquired.load()) << "acquired while the owner still held one level";
    mutex.unlock();
  });
  Actor other(waiter(), [&] {
    WaitOrAbort(PollUntil([&] { return stage.load() == 1; }, "the owner"));
    EXPECT_FALSE(mutex.try_lock());
    EXPECT_FALSE(mutex.try_lock_for(milliseconds(2)));
    EXPECT_FALSE(mutex.try_lock_until(std::chrono::system_clock::now()));
    stage = 2;
    mutex.lock();
    acquired = true;
    mutex.unlock();
  });
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(FiberRecursiveMutexTest);

// Two fibers on one worker thread are two owners, however often they share it.
TEST(FiberRecursiveMutex, FibersOnOneWorkerAreDistinctOwners) {
  Runtime runtime(testing::OptionsWithWorkers(1));
  FiberRecursiveMutex mutex;
  std::atomic<bool> first_holds{false};
  std::atomic<bool> second_tried{false};
  Fiber first([&] {
    mutex.lock();
    first_holds = true;
    WaitOrAbort(PollUntil([&] { return second_tried.load(); }, "the second fiber"));
    mutex.unlock();
  });
  Fiber second([&] {
    WaitOrAbort(PollUntil([&] { return first_holds.load(); }, "the first fiber"));
    EXPECT_FALSE(mutex.try_lock())
        << "a fiber owned what another fiber on its thread locked";
    second_tried = true;
  });
  first.Join();
  second.Join();
}

TEST(FiberRecursiveMutexDeathTest, UnlockByANonOwnerAborts) {
  EXPECT_DEATH(
      {
        FiberRecursiveMutex mutex;
        mutex.lock();
        std::thread([&] { mutex.unlock(); }).join();
      },
      "does not own it");
  EXPECT_DEATH(
      {
        FiberRecursiveMutex mutex;
        mutex.unlock();
      },
      "does not own it");
}

TEST(FiberRecursiveMutexDeathTest, DestroyingALockedMutexAborts) {
  EXPECT_DEATH(
      {
        FiberRecursiveMutex mutex;
        mutex.lock();
        mutex.lock();
      },
      "destroyed while locked");
}

}  // namespace
}  // namespace weft
