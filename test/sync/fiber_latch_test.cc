// FiberLatch and FiberEvent (an event is a latch of one that may be set twice).
#include "runtime/sync/fiber_latch.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/sync/fiber_event.h"
#include "runtime/this_fiber.h"
#include "test/sync/sync_test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::Actor;
using testing::PollUntil;
using testing::Scaled;
using testing::WaitOrAbort;

class FiberLatchTest : public testing::WaiterNotifierTest {};

TEST_P(FiberLatchTest, WaitReturnsOnlyOnceTheCountReachesZeroAndSeesPriorWrites) {
  constexpr int kCounters = 8;
  FiberLatch latch(kCounters);
  std::vector<int> written(kCounters, 0);  // each slot written before its CountDown
  std::atomic<bool> returned{false};
  Actor waiting(waiter(), [&] {
    latch.Wait();
    returned = true;
    for (int i = 0; i != kCounters; ++i) EXPECT_EQ(written[i], i + 1);
  });
  std::vector<Actor> counters;
  for (int i = 0; i != kCounters; ++i) {
    counters.emplace_back(notifier(), [&, i] {
      written[i] = i + 1;
      if (i == 0) {
        EXPECT_FALSE(latch.TryWait()) << "this party has not counted down yet";
      }
      latch.CountDown();
    });
  }
  for (Actor& counter : counters) counter.Join();
  waiting.Join();
  EXPECT_TRUE(returned.load());
  EXPECT_TRUE(latch.TryWait());
}

// The waiter destroys the latch (or event) the moment Wait() returns, while
// the party that released it may still be inside CountDown() / Set().
TEST_P(FiberLatchTest, LatchAndEventMayBeDestroyedRightAfterWaitReturns) {
  const int rounds = static_cast<int>(Scaled(5000, 500));
  for (int i = 0; i != rounds; ++i) {
    auto* latch = new FiberLatch(1);
    auto* event = new FiberEvent;
    Actor releaser(notifier(), [latch, event] {
      event->Set();
      latch->CountDown();
    });
    Actor(waiter(), [latch, event] {
      event->Wait();
      delete event;
      latch->Wait();
      delete latch;
    }).Join();
    releaser.Join();
  }
}

TEST_P(FiberLatchTest, TimedWaitsReportWhetherTheyWereReleased) {
  FiberLatch latch(1);
  FiberEvent event;
  Actor(waiter(), [&] {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(latch.WaitFor(milliseconds(10)));
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(10));
    EXPECT_FALSE(event.WaitFor(milliseconds(1)));
    EXPECT_FALSE(latch.WaitUntil(std::chrono::system_clock::now() - milliseconds(1)));
  }).Join();
  std::atomic<int> released{0};
  Actor waiting(waiter(), [&] {
    released += latch.WaitFor(std::chrono::seconds(60)) ? 1 : 0;
    released += event.WaitFor(std::chrono::seconds(60)) ? 1 : 0;
  });
  Actor(notifier(), [&] {
    latch.CountDown();
    event.Set();
    event.Set();  // a second Set() is harmless
  }).Join();
  waiting.Join();
  EXPECT_EQ(released.load(), 2);
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(FiberLatchTest);

TEST(FiberLatch, TenThousandFibersArriveAndWait) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  const std::size_t fibers = Scaled(10000, 1000);
  FiberLatch latch(static_cast<std::ptrdiff_t>(fibers));
  std::atomic<std::size_t> arrived{0};
  std::atomic<std::size_t> early{0};
  FiberLatch all_returned(static_cast<std::ptrdiff_t>(fibers));
  for (std::size_t i = 0; i != fibers; ++i) {
    ASSERT_TRUE(StartFiberDetached([&] {
      ++arrived;
      latch.ArriveAndWait();
      if (arrived.load() != fibers) ++early;
      all_returned.CountDown();
    }));
  }
  all_returned.Wait();  // a plain thread waiting on 10k fibers
  EXPECT_EQ(early.load(), 0u);
}

TEST(FiberLatchDeathTest, CountingDownBelowZeroAborts) {
  FiberLatch latch(1);
  EXPECT_DEATH(latch.CountDown(2), "below zero");
  EXPECT_DEATH(FiberLatch(-1), "negative count");
}

}  // namespace
}  // namespace weft
