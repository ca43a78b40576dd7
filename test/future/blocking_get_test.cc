// BlockingGet and BlockingTryGet with a fiber or a plain thread on either side,
// and timeouts racing fulfilment.
#include "runtime/future/blocking_get.h"

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/future/future.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "test/future/future_test_util.h"
#include "test/sync/sync_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using namespace std::chrono_literals;
using testing::Actor;
using testing::CustomError;
using testing::Side;
using testing::Tracked;

class BlockingGetTest : public testing::WaiterNotifierTest {};

TEST_P(BlockingGetTest, WaitsForTheValue) {
  constexpr int kRounds = 200;
  std::vector<Promise<int>> promises(kRounds);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  std::atomic<int> got{0};
  Actor waiting(waiter(), [&] {
    for (int i = 0; i != kRounds; ++i) {
      EXPECT_EQ(BlockingGet(std::move(futures[i])), i);
      got.store(i + 1, std::memory_order_release);
    }
  });
  Actor setting(notifier(), [&] {
    for (int i = 0; i != kRounds; ++i) {
      // Every other value is set while the waiter is (likely) already waiting.
      if (i % 2 == 0) {
        testing::WaitOrAbort(testing::PollUntil(
            [&] { return got.load(std::memory_order_acquire) == i; }, "the waiter"));
      }
      promises[i].SetValue(i);
    }
  });
}

TEST_P(BlockingGetTest, RethrowsTheStoredException) {
  Promise<void> promise;
  Future<void> future = promise.GetFuture();
  Actor waiting(waiter(),
                [&] { EXPECT_THROW(BlockingGet(std::move(future)), CustomError); });
  Actor setting(notifier(),
                [&] { promise.SetException(std::make_exception_ptr(CustomError{1})); });
}

TEST_P(BlockingGetTest, TryGetReturnsTheValueOrGivesUpAfterTheTimeout) {
  Promise<int> never;
  Promise<int> never_either;
  Promise<int> soon;
  Future<int> soon_future = soon.GetFuture();
  Promise<void> done;
  Future<void> done_future = done.GetFuture();
  Actor waiting(waiter(), [&] {
    EXPECT_EQ(BlockingTryGet(never.GetFuture(), 1ms), std::nullopt);
    EXPECT_EQ(BlockingTryGet(never_either.GetFuture(), -5s), std::nullopt);
    EXPECT_EQ(BlockingTryGet(std::move(soon_future), testing::kGenerousTimeout), 42);
    EXPECT_TRUE(BlockingTryGet(std::move(done_future), testing::kGenerousTimeout));
  });
  Actor setting(notifier(), [&] {
    soon.SetValue(42);
    done.SetValue();
  });
}

// The time-point form takes any clock's time points: those of steady_clock and
// system_clock in the near future time out; time_point::max() waits as long as
// it takes.
TEST_P(BlockingGetTest, TryGetUntilATimePointOfAnyClock) {
  using std::chrono::steady_clock;
  using std::chrono::system_clock;
  Promise<int> never;
  Promise<int> never_either;
  Promise<int> later;
  Future<int> later_future = later.GetFuture();
  Promise<void> later_void;
  Future<void> later_void_future = later_void.GetFuture();
  std::atomic<bool> timed_out{false};
  Actor waiting(waiter(), [&] {
    EXPECT_EQ(BlockingTryGet(never.GetFuture(), steady_clock::now() + 2ms), std::nullopt);
    EXPECT_EQ(BlockingTryGet(never_either.GetFuture(), system_clock::now() + 2ms),
              std::nullopt);
    timed_out.store(true, std::memory_order_release);
    EXPECT_EQ(BlockingTryGet(std::move(later_future), steady_clock::time_point::max()),
              5);
    EXPECT_TRUE(
        BlockingTryGet(std::move(later_void_future), system_clock::time_point::max()));
  });
  Actor setting(notifier(), [&] {
    // Set only after the timed-out waits, so that the waits on max() do wait.
    testing::WaitOrAbort(testing::PollUntil(
        [&] { return timed_out.load(std::memory_order_acquire); }, "the timeouts"));
    later.SetValue(5);
    later_void.SetValue();
  });
}

INSTANTIATE_TEST_SUITE_P(
    Sides, BlockingGetTest,
    ::testing::Combine(::testing::Values(Side::kFiber, Side::kThread),
                       ::testing::Values(Side::kFiber, Side::kThread)),
    testing::WaiterNotifierName);

class BlockingTryGetTest : public testing::WorkerCountTest {};

TEST_P(BlockingTryGetTest, ZeroAndNegativeTimeoutsOnlyCheck) {
  Promise<int> pending;
  EXPECT_EQ(BlockingTryGet(pending.GetFuture(), 0s), std::nullopt);
  Promise<int> pending2;
  EXPECT_EQ(BlockingTryGet(pending2.GetFuture(), -1h), std::nullopt);
  EXPECT_EQ(BlockingTryGet(MakeReadyFuture(3), 0s), 3);
  EXPECT_EQ(BlockingTryGet(MakeReadyFuture(4), -1s), 4);
  Promise<void> pending_void;
  EXPECT_FALSE(BlockingTryGet(pending_void.GetFuture(), 0s));
  EXPECT_THROW(
      BlockingTryGet(MakeExceptionalFuture<int>(std::make_exception_ptr(CustomError{1})),
                     0s),
      CustomError);
}

// A deadline already past only checks, on any clock.
TEST_P(BlockingTryGetTest, PastTimePointsOnlyCheck) {
  using std::chrono::steady_clock;
  using std::chrono::system_clock;
  Promise<int> pending;
  EXPECT_EQ(BlockingTryGet(pending.GetFuture(), steady_clock::now() - 1h), std::nullopt);
  Promise<int> pending2;
  EXPECT_EQ(BlockingTryGet(pending2.GetFuture(), system_clock::now() - 1s), std::nullopt);
  Promise<int> pending3;
  EXPECT_EQ(BlockingTryGet(pending3.GetFuture(), steady_clock::time_point::min()),
            std::nullopt);
  EXPECT_EQ(BlockingTryGet(MakeReadyFuture(3), steady_clock::now() - 1h), 3);
  EXPECT_EQ(BlockingTryGet(MakeReadyFuture(4), system_clock::time_point()), 4);
  Promise<void> pending_void;
  EXPECT_FALSE(BlockingTryGet(pending_void.GetFuture(), system_clock::now()));
  EXPECT_TRUE(BlockingTryGet(MakeReadyFuture(), steady_clock::now()));
  EXPECT_THROW(
      BlockingTryGet(MakeExceptionalFuture<int>(std::make_exception_ptr(CustomError{1})),
                     steady_clock::now() - 1s),
      CustomError);
}

// A timeout racing the value: either the waiter gets the value or it gives up,
// never both, never a hang, and the value is destroyed exactly once either way
// (LeakSanitizer and the Tracked count catch a lost or doubled state).
TEST_P(BlockingTryGetTest, ATimeoutRacingTheValueHasOneWinner) {
  const std::size_t rounds = testing::Scaled(4000, 200);
  std::atomic<int> alive{0};
  std::size_t got = 0;
  std::size_t timed_out = 0;
  std::atomic<bool> failed{false};
  Fiber waiter([&] {
    for (std::size_t i = 0; i != rounds; ++i) {
      Promise<Tracked> promise;
      Future<Tracked> future = promise.GetFuture();
      FiberLatch started(1);
      std::thread setter([&] {
        started.Wait();
        promise.SetValue(&alive, static_cast<int>(i));
      });
      started.CountDown();
      std::optional<Tracked> value =
          BlockingTryGet(std::move(future), std::chrono::microseconds(i % 50));
      if (value) {
        ++got;
        if (value->value() != static_cast<int>(i)) failed = true;
      } else {
        ++timed_out;
      }
      setter.join();
    }
  });
  waiter.Join();
  EXPECT_FALSE(failed.load()) << "a waiter got another round's value";
  EXPECT_EQ(got + timed_out, rounds);
  EXPECT_EQ(alive.load(), 0) << "values leaked or were destroyed twice";
}

// The waiter's own state lives on its stack: it returns and reuses that stack at
// once, while the fulfilling side may still be inside SetValue.
TEST_P(BlockingTryGetTest, AWaiterMayReturnWhileTheSetterIsStillInSetValue) {
  const std::size_t rounds = testing::Scaled(20000, 1000);
  std::vector<Promise<int>> promises(rounds);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  std::thread setter([&] {
    for (std::size_t i = 0; i != rounds; ++i) promises[i].SetValue(static_cast<int>(i));
  });
  std::size_t sum_ok = 0;
  Fiber waiter([&] {
    for (std::size_t i = 0; i != rounds; ++i) {
      sum_ok += BlockingGet(std::move(futures[i])) == static_cast<int>(i);
    }
  });
  waiter.Join();
  setter.join();
  EXPECT_EQ(sum_ok, rounds);
}

WEFT_INSTANTIATE_OVER_WORKER_COUNTS(BlockingTryGetTest);

}  // namespace
}  // namespace weft
