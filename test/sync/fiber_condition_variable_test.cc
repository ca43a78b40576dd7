#include "runtime/sync/fiber_condition_variable.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/this_fiber.h"
#include "test/sync/sync_test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::Actor;
using testing::PollUntil;
using testing::Scaled;
using testing::WaitOrAbort;

class FiberConditionVariableTest : public testing::WaiterNotifierTest {};

// Two parties hand a turn back and forth: every hand-over must be seen.
TEST_P(FiberConditionVariableTest, PingPongLosesNoNotification) {
  FiberMutex mutex;
  FiberConditionVariable cv;
  int turn = 0;  // guarded by mutex
  const int rounds = static_cast<int>(Scaled(20000, 2000));
  auto player = [&](int me) {
    for (int i = 0; i != rounds; ++i) {
      std::unique_lock<FiberMutex> lock(mutex);
      cv.wait(lock, [&] { return turn == me; });
      turn = 1 - me;
      cv.notify_one();
    }
  };
  Actor a(waiter(), [&] { player(0); });
  Actor b(notifier(), [&] { player(1); });
  a.Join();
  b.Join();
  EXPECT_EQ(turn, 0);
}

TEST_P(FiberConditionVariableTest, NotifyAllWakesEveryWaiter) {
  FiberMutex mutex;
  FiberConditionVariable cv;
  bool go = false;
  std::atomic<int> waiting{0};
  std::atomic<int> woken{0};
  constexpr int kWaiters = 16;
  {
    std::vector<Actor> waiters;
    for (int i = 0; i != kWaiters; ++i) {
      waiters.emplace_back(waiter(), [&] {
        std::unique_lock<FiberMutex> lock(mutex);
        ++waiting;
        cv.wait(lock, [&] { return go; });
        ++woken;
      });
    }
    Actor(notifier(), [&] {
      WaitOrAbort(PollUntil([&] { return waiting.load() == kWaiters; }, "the waiters"));
      std::lock_guard<FiberMutex> lock(mutex);
      go = true;
      cv.notify_all();
    }).Join();
  }
  EXPECT_EQ(woken.load(), kWaiters);
}

TEST_P(FiberConditionVariableTest, TimedWaitsTimeOutWithoutANotification) {
  FiberMutex mutex;
  FiberConditionVariable cv;
  Actor(waiter(), [&] {
    std::unique_lock<FiberMutex> lock(mutex);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(cv.wait_for(lock, milliseconds(10)), std::cv_status::timeout);
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(10));
    EXPECT_TRUE(lock.owns_lock());
    EXPECT_FALSE(cv.wait_for(lock, milliseconds(1), [] { return false; }));
    EXPECT_TRUE(cv.wait_until(lock, std::chrono::system_clock::now() + milliseconds(1),
                              [] { return true; }));
    EXPECT_EQ(cv.wait_for(lock, milliseconds(-5)), std::cv_status::timeout);
  }).Join();
}

// Consumers wait with short timeouts while producers hand out tokens with
// notify_one: timeouts and notifications race all the time, and every token
// must be consumed exactly once.
TEST_P(FiberConditionVariableTest, TimeoutsRacingNotificationsLoseNothing) {
  FiberMutex mutex;
  FiberConditionVariable cv;
  long tokens = 0;    // guarded by mutex
  long consumed = 0;  // guarded by mutex
  const long total = static_cast<long>(Scaled(20000, 2000));
  std::atomic<bool> produced_all{false};
  {
    std::vector<Actor> actors;
    for (int c = 0; c != 4; ++c) {
      actors.emplace_back(waiter(), [&, c] {
        std::unique_lock<FiberMutex> lock(mutex);
        for (;;) {
          cv.wait_for(lock, std::chrono::microseconds(20 + c * 7),
                      [&] { return tokens > 0 || produced_all.load(); });
          if (tokens > 0) {
            --tokens;
            ++consumed;
          } else if (produced_all.load()) {
            return;  // everything produced and nothing left
          }
        }
      });
    }
    actors.emplace_back(notifier(), [&] {
      for (long i = 0; i != total; ++i) {
        std::lock_guard<FiberMutex> lock(mutex);
        ++tokens;
        cv.notify_one();
      }
      std::lock_guard<FiberMutex> lock(mutex);
      produced_all = true;
      cv.notify_all();
    });
  }
  std::lock_guard<FiberMutex> lock(mutex);
  EXPECT_EQ(consumed, total);
  EXPECT_EQ(tokens, 0);
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(FiberConditionVariableTest);

TEST(FiberConditionVariableDeathTest, DestroyingWithWaitersAborts) {
  EXPECT_DEATH(
      {
        Runtime runtime(testing::OptionsWithWorkers(1));
        auto* cv = new FiberConditionVariable;
        FiberMutex mutex;
        std::atomic<bool> waiting{false};
        ASSERT_TRUE(StartFiberDetached([&] {
          std::unique_lock<FiberMutex> lock(mutex);
          waiting = true;
          cv->wait(lock);
        }));
        while (!waiting.load()) std::this_thread::yield();
        std::lock_guard<FiberMutex> lock(mutex);  // the waiter is parked now
        delete cv;
      },
      "destroyed while fibers or threads wait");
}

}  // namespace
}  // namespace weft
