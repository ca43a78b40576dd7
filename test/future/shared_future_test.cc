// SharedFuture: Share, copies, Then on a shared future, and BlockingGet from many
// fibers and threads at once.
#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/future/async.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/future.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "test/future/future_test_util.h"
#include "test/sync/sync_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::Actor;
using testing::CustomError;
using testing::Side;
using testing::Tracked;

TEST(SharedFuture, ShareConsumesTheFutureAndCopiesShareOneValue) {
  Promise<std::string> promise;
  Future<std::string> future = promise.GetFuture();
  SharedFuture<std::string> shared = std::move(future).Share();
  EXPECT_FALSE(future.IsValid()) << "Share did not consume the future";
  EXPECT_TRUE(shared.IsValid());
  EXPECT_FALSE(shared.IsReady());

  SharedFuture<std::string> copy = shared;
  SharedFuture<std::string> assigned;
  EXPECT_FALSE(assigned.IsValid());
  EXPECT_FALSE(assigned.IsReady());
  assigned = copy;
  SharedFuture<std::string> moved = std::move(copy);
  EXPECT_FALSE(copy.IsValid());
  promise.SetValue("value");
  EXPECT_TRUE(shared.IsReady());
  EXPECT_TRUE(assigned.IsReady());
  EXPECT_EQ(&BlockingGet(shared), &BlockingGet(assigned));
  EXPECT_EQ(&BlockingGet(shared), &BlockingGet(moved));
  EXPECT_EQ(BlockingGet(moved), "value");
  const SharedFuture<std::string>& self = assigned;
  assigned = self;  // self-assignment keeps the state
  EXPECT_EQ(BlockingGet(assigned), "value");
}

TEST(SharedFuture, ThenTakesTheValueOrTheWholeSharedFuture) {
  Promise<int> promise;
  SharedFuture<int> shared = promise.GetFuture().Share();
  Future<int> by_value = shared.Then([](const int& x) { return x + 1; });
  Future<int> by_copy = shared.Then([](int x) { return x + 2; });
  Future<std::string> whole = shared.Then([](SharedFuture<int> f) {
    EXPECT_TRUE(f.IsReady());
    return std::to_string(BlockingGet(f));
  });
  static_assert(std::is_same_v<decltype(whole), Future<std::string>>);
  EXPECT_FALSE(by_value.IsReady());
  promise.SetValue(10);
  EXPECT_EQ(BlockingGet(std::move(by_value)), 11);
  EXPECT_EQ(BlockingGet(std::move(by_copy)), 12);
  EXPECT_EQ(BlockingGet(std::move(whole)), "10");
  EXPECT_EQ(BlockingGet(shared), 10) << "a Then took the value away";

  Promise<void> done;
  SharedFuture<void> shared_void = done.GetFuture().Share();
  int ran = 0;
  Future<void> after = shared_void.Then([&ran] { ++ran; });
  Future<bool> whole_void =
      shared_void.Then([](SharedFuture<void> f) { return f.IsReady(); });
  done.SetValue();
  BlockingGet(std::move(after));
  EXPECT_EQ(ran, 1);
  EXPECT_TRUE(BlockingGet(std::move(whole_void)));
  BlockingGet(shared_void);
}

TEST(SharedFuture, ThenBeforeAndAfterTheValueArrivesRunsEachOnceInOrder) {
  Promise<int> promise;
  SharedFuture<int> shared = promise.GetFuture().Share();
  std::vector<int> order;
  std::vector<Future<void>> results;
  for (int i = 0; i != 5; ++i) {
    results.push_back(shared.Then([&order, i](int) { order.push_back(i); }));
  }
  EXPECT_TRUE(order.empty()) << "a Then ran before the value arrived";
  promise.SetValue(1);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  // Once ready, a Then runs inline, before Then returns.
  SharedFuture<int> copy = shared;
  results.push_back(copy.Then([&order](int) { order.push_back(5); }));
  EXPECT_EQ(order.size(), 6u);
  EXPECT_EQ(order.back(), 5);
  for (auto& r : results) {
    EXPECT_TRUE(r.IsReady());
    BlockingGet(std::move(r));
  }
  EXPECT_EQ(order.size(), 6u) << "a Then ran twice";
}

TEST(SharedFuture, ThenFlattensAndStoresWhatTheCallableThrows) {
  Promise<int> promise;
  SharedFuture<int> shared = promise.GetFuture().Share();
  Promise<std::string> inner;
  Future<std::string> inner_future = inner.GetFuture();
  Future<std::string> flat = shared.Then([&inner_future](int x) -> Future<std::string> {
    return std::move(inner_future).Then([x](std::string s) {
      return s + std::to_string(x);
    });
  });
  static_assert(std::is_same_v<decltype(flat), Future<std::string>>);
  Future<int> throws = shared.Then([](int) -> int { throw CustomError{3}; });
  Future<void> flat_void =
      shared.Then([](SharedFuture<int>) { return MakeReadyFuture(); });
  promise.SetValue(7);
  EXPECT_FALSE(flat.IsReady()) << "ready before the inner future was";
  inner.SetValue("answer ");
  EXPECT_EQ(BlockingGet(std::move(flat)), "answer 7");
  try {
    BlockingGet(std::move(throws));
    FAIL() << "the continuation's exception was lost";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.code, 3);
  }
  BlockingGet(std::move(flat_void));
  EXPECT_EQ(BlockingGet(shared), 7) << "the throwing continuation harmed the value";
}

TEST(SharedFuture, RethrowsTheSameExceptionObjectToEveryConsumerEveryTime) {
  Promise<int> promise;
  SharedFuture<int> shared = promise.GetFuture().Share();
  int value_calls = 0;
  Future<int> skipped = shared.Then([&value_calls](int x) {
    ++value_calls;
    return x;
  });
  Future<bool> seen = shared.Then([](SharedFuture<int> f) {
    try {
      BlockingGet(f);
    } catch (const CustomError&) {
      return true;
    }
    return false;
  });
  const CustomError* thrown = nullptr;
  try {
    throw CustomError{5};
  } catch (const CustomError& e) {
    thrown = &e;
    promise.SetException(std::current_exception());
  }
  SharedFuture<int> copy = shared;
  for (const SharedFuture<int>* consumer : {&shared, &copy, &shared}) {
    try {
      BlockingGet(*consumer);
      FAIL() << "a failed shared future gave a value";
    } catch (const CustomError& e) {
      EXPECT_EQ(e.code, 5);
      EXPECT_EQ(&e, thrown) << "the exception was copied, not rethrown";
    }
  }
  EXPECT_THROW(BlockingGet(std::move(skipped)), CustomError);
  EXPECT_EQ(value_calls, 0) << "a value continuation ran despite the failure";
  EXPECT_TRUE(BlockingGet(std::move(seen)));

  Future<void> broken;
  {
    Promise<void> dropped;
    SharedFuture<void> orphan = dropped.GetFuture().Share();
    broken = orphan.Then([](SharedFuture<void> f) { BlockingGet(f); });
  }
  EXPECT_THROW(BlockingGet(std::move(broken)), std::future_error);
}

TEST(SharedFuture, KeepsAMoveOnlyValueInPlace) {
  Promise<std::unique_ptr<int>> promise;
  SharedFuture<std::unique_ptr<int>> shared = promise.GetFuture().Share();
  Future<int> read = shared.Then([](const std::unique_ptr<int>& p) { return *p; });
  promise.SetValue(std::make_unique<int>(42));
  const std::unique_ptr<int>& value = BlockingGet(shared);
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 42);
  EXPECT_EQ(BlockingGet(std::move(read)), 42);
  EXPECT_EQ(BlockingGet(shared).get(), value.get()) << "the value moved";
}

TEST(SharedFuture, DestroysTheValueOnceWithTheLastCopyOrPendingThen) {
  std::atomic<int> alive{0};
  {
    Promise<Tracked> promise;
    SharedFuture<Tracked> shared = promise.GetFuture().Share();
    SharedFuture<Tracked> copy = shared;
    promise.SetValue(&alive, 1);
    EXPECT_EQ(alive.load(), 1);
    shared = SharedFuture<Tracked>();
    EXPECT_EQ(alive.load(), 1) << "destroyed while a copy still refers to it";
    EXPECT_EQ(BlockingGet(copy).value(), 1);
  }
  EXPECT_EQ(alive.load(), 0);

  // Every copy dropped before the value arrives: a pending Then still reads it.
  Promise<Tracked> promise;
  Future<int> read;
  {
    SharedFuture<Tracked> shared = promise.GetFuture().Share();
    read = shared.Then([](const Tracked& t) { return t.value(); });
  }
  promise.SetValue(&alive, 2);
  EXPECT_EQ(alive.load(), 0) << "kept after the last reader was done";
  EXPECT_EQ(BlockingGet(std::move(read)), 2);

  // Nobody left at all: the value is destroyed as it arrives.
  Promise<Tracked> unread;
  { SharedFuture<Tracked> dropped = unread.GetFuture().Share(); }
  unread.SetValue(&alive, 3);
  EXPECT_EQ(alive.load(), 0);
}

// Each step's continuation returns the next shared future's state as the tail
// instead of firing it, so a long chain of shared futures fired from a fiber's
// 128 KiB stack does not recurse; nor do many Thens on one shared future.
TEST(SharedFuture, LongChainsAndManyThensFireWithoutDeepRecursion) {
  Runtime runtime(testing::OptionsWithWorkers(1));
  constexpr int kSteps = 100000;
  Promise<int> promise;
  SharedFuture<int> first = promise.GetFuture().Share();
  SharedFuture<int> end = first;
  for (int i = 0; i != kSteps; ++i) end = end.Then([](int x) { return x + 1; }).Share();
  std::atomic<int> fired{0};
  std::vector<Future<void>> many;
  for (int i = 0; i != kSteps; ++i) {
    many.push_back(first.Then([&fired](int) { fired.fetch_add(1); }));
  }
  Fiber setter([&promise] { promise.SetValue(0); });
  setter.Join();
  EXPECT_EQ(BlockingGet(end), kSteps);
  EXPECT_EQ(fired.load(), kSteps);
}

class SharedFutureTest : public testing::WaiterNotifierTest {};

// N fibers and N threads wait on copies at once; every one sees the same
// object. With the waiters on one side and the setter on the other.
TEST_P(SharedFutureTest, ManyConsumersSeeOneValue) {
  constexpr int kConsumers = 16;
  Promise<std::vector<int>> promise;
  SharedFuture<std::vector<int>> shared = promise.GetFuture().Share();
  std::atomic<const std::vector<int>*> address{nullptr};
  std::atomic<int> mismatches{0};
  std::atomic<int> done{0};
  FiberLatch started(2 * kConsumers);
  std::vector<Actor> consumers;
  for (int i = 0; i != 2 * kConsumers; ++i) {
    // Half on the parameter's waiter side, half on the other.
    const Side side = i % 2 == 0 ? waiter() : notifier();
    consumers.emplace_back(side, [&, copy = shared] {
      started.CountDown();
      const std::vector<int>& value = BlockingGet(copy);
      const std::vector<int>* expected = nullptr;
      if (!address.compare_exchange_strong(expected, &value) && expected != &value) {
        mismatches.fetch_add(1);
      }
      if (value != std::vector<int>{1, 2, 3}) mismatches.fetch_add(1);
      done.fetch_add(1);
    });
  }
  Actor setting(notifier(), [&] {
    started.Wait();
    promise.SetValue(std::vector<int>{1, 2, 3});
  });
  setting.Join();
  for (auto& c : consumers) c.Join();
  EXPECT_EQ(done.load(), 2 * kConsumers);
  EXPECT_EQ(mismatches.load(), 0) << "a consumer saw another object or value";
  EXPECT_EQ(address.load(), &BlockingGet(shared));
}

TEST_P(SharedFutureTest, EveryWaiterGetsTheExceptionWithItsType) {
  Promise<int> promise;
  SharedFuture<int> shared = promise.GetFuture().Share();
  std::atomic<int> caught{0};
  std::vector<Actor> waiters;
  for (int i = 0; i != 8; ++i) {
    waiters.emplace_back(waiter(), [&caught, shared] {
      try {
        BlockingGet(shared);
      } catch (const CustomError& e) {
        if (e.code == 8) caught.fetch_add(1);
      }
    });
  }
  Actor setting(notifier(),
                [&] { promise.SetException(std::make_exception_ptr(CustomError{8})); });
  setting.Join();
  for (auto& w : waiters) w.Join();
  EXPECT_EQ(caught.load(), 8);
}

// The waiter destroys the promise (and its copy of the shared future) as soon as
// BlockingGet returns, while the setter may still be inside SetValue: the
// promise on the heap, then on the waiting side's stack.
TEST_P(SharedFutureTest, TheWaiterMayDestroyThePromiseAsSoonAsBlockingGetReturns) {
  const std::size_t rounds = testing::Scaled(3000, 300);
  std::atomic<int> alive{0};
  for (bool on_stack : {false, true}) {
    std::atomic<Promise<Tracked>*> slot{nullptr};
    std::atomic<std::size_t> wrong{0};
    Actor waiting(waiter(), [&] {
      for (std::size_t i = 0; i != rounds; ++i) {
        std::unique_ptr<Promise<Tracked>> on_heap;
        std::optional<Promise<Tracked>> local;
        Promise<Tracked>* promise =
            on_stack ? &local.emplace()
                     : (on_heap = std::make_unique<Promise<Tracked>>()).get();
        SharedFuture<Tracked> shared = promise->GetFuture().Share();
        slot.store(promise, std::memory_order_release);
        if (BlockingGet(shared).value() != static_cast<int>(i)) wrong.fetch_add(1);
      }  // the promise and the shared future go here
    });
    Actor setting(notifier(), [&] {
      for (std::size_t i = 0; i != rounds; ++i) {
        Promise<Tracked>* promise = nullptr;
        testing::WaitOrAbort(testing::PollUntil(
            [&] {
              promise = slot.exchange(nullptr, std::memory_order_acquire);
              return promise != nullptr;
            },
            "the waiter's next promise"));
        promise->SetValue(&alive, static_cast<int>(i));
      }
    });
    waiting.Join();
    setting.Join();
    EXPECT_EQ(wrong.load(), 0u) << (on_stack ? "stack" : "heap");
  }
  EXPECT_EQ(alive.load(), 0) << "values leaked or were destroyed twice";
}

// Fibers and threads attach Thens and wait on copies while the value arrives:
// every Then runs exactly once, every waiter returns.
TEST_P(SharedFutureTest, ThensAndWaitersRacingTheValueEachRunOnce) {
  const std::size_t rounds = testing::Scaled(500, 50);
  std::atomic<int> alive{0};
  for (std::size_t round = 0; round != rounds; ++round) {
    Promise<Tracked> promise;
    SharedFuture<Tracked> shared = promise.GetFuture().Share();
    std::atomic<int> ran{0};
    std::vector<Future<void>> thens(4);
    Actor attaching(waiter(), [&, copy = shared] {
      for (auto& t : thens) {
        t = copy.Then([&ran](const Tracked& v) {
          if (v.value() == 7) ran.fetch_add(1);
        });
      }
      EXPECT_EQ(BlockingGet(copy).value(), 7);
    });
    Actor setting(notifier(), [&] { promise.SetValue(&alive, 7); });
    attaching.Join();
    setting.Join();
    for (auto& t : thens) BlockingGet(std::move(t));
    ASSERT_EQ(ran.load(), 4) << "round " << round;
  }
  EXPECT_EQ(alive.load(), 0);
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(SharedFutureTest);

class SharedFutureMisuseDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { ::testing::FLAGS_gtest_death_test_style = "threadsafe"; }
};

TEST_F(SharedFutureMisuseDeathTest, AbortsWithAMessage) {
  EXPECT_DEATH(
      {
        SharedFuture<int> invalid;
        BlockingGet(invalid);
      },
      "invalid SharedFuture");
  EXPECT_DEATH(
      {
        SharedFuture<int> shared = MakeReadyFuture(1).Share();
        SharedFuture<int> moved = std::move(shared);
        auto f = shared.Then([](int x) { return x; });
      },
      "invalid SharedFuture");
  EXPECT_DEATH(
      {
        Future<int> f = MakeReadyFuture(1);
        auto shared = std::move(f).Share();
        auto again = std::move(f).Share();
      },
      "weft::Future::Share was given an invalid future");
}

}  // namespace
}  // namespace weft
