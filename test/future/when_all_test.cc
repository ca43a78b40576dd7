// WhenAll (variadic and over a vector), WhenAny and WhenAnyWithoutException.
#include "runtime/future/when_all.h"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/future/async.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/future.h"
#include "runtime/runtime.h"
#include "test/future/future_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::CustomError;
using testing::Tracked;

TEST(WhenAll, CombinesMixedTypesLeavingOutVoid) {
  Promise<int> a;
  Promise<void> b;
  Promise<std::unique_ptr<std::string>> c;
  auto all = WhenAll(a.GetFuture(), b.GetFuture(), c.GetFuture());
  static_assert(std::is_same_v<decltype(all),
                               Future<std::tuple<int, std::unique_ptr<std::string>>>>);
  c.SetValue(std::make_unique<std::string>("c"));
  a.SetValue(1);
  EXPECT_FALSE(all.IsReady());
  b.SetValue();
  EXPECT_TRUE(all.IsReady());
  auto [x, s] = BlockingGet(std::move(all));
  EXPECT_EQ(x, 1);
  EXPECT_EQ(*s, "c");

  auto voids = WhenAll(MakeReadyFuture(), MakeReadyFuture());
  static_assert(std::is_same_v<decltype(voids), Future<void>>);
  BlockingGet(std::move(voids));

  auto same_types = WhenAll(MakeReadyFuture(1), MakeReadyFuture(2), MakeReadyFuture(3));
  EXPECT_EQ(BlockingGet(std::move(same_types)), std::make_tuple(1, 2, 3));
}

TEST(WhenAll, KeepsInputOrderWhateverTheCompletionOrder) {
  constexpr int kInputs = 50;
  std::vector<Promise<int>> promises(kInputs);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  Future<std::vector<int>> all = WhenAll(std::move(futures));
  for (int i = kInputs - 1; i >= 0; --i) {
    EXPECT_FALSE(all.IsReady());
    promises[i].SetValue(i * 10);
  }
  std::vector<int> values = BlockingGet(std::move(all));
  ASSERT_EQ(values.size(), static_cast<std::size_t>(kInputs));
  for (int i = 0; i != kInputs; ++i) EXPECT_EQ(values[i], i * 10);
}

TEST(WhenAll, FailsWithTheFirstFailedInputOnceAllAreReady) {
  Promise<int> first;
  Promise<int> second;
  Promise<int> third;
  std::vector<Future<int>> futures;
  futures.push_back(first.GetFuture());
  futures.push_back(second.GetFuture());
  futures.push_back(third.GetFuture());
  Future<std::vector<int>> all = WhenAll(std::move(futures));
  third.SetException(std::make_exception_ptr(std::out_of_range("third")));
  second.SetException(std::make_exception_ptr(CustomError{2}));
  EXPECT_FALSE(all.IsReady()) << "ready while an input was still running";
  first.SetValue(1);
  EXPECT_THROW(BlockingGet(std::move(all)), CustomError);

  Promise<void> left;
  auto mixed =
      WhenAll(left.GetFuture(),
              MakeExceptionalFuture<int>(std::make_exception_ptr(CustomError{5})));
  EXPECT_FALSE(mixed.IsReady());
  left.SetValue();
  EXPECT_THROW(BlockingGet(std::move(mixed)), CustomError);
}

TEST(WhenAll, OfAnEmptyVectorIsReady) {
  Future<std::vector<int>> none = WhenAll(std::vector<Future<int>>());
  EXPECT_TRUE(none.IsReady());
  EXPECT_TRUE(BlockingGet(std::move(none)).empty());
  Future<void> no_voids = WhenAll(std::vector<Future<void>>());
  EXPECT_TRUE(no_voids.IsReady());
}

TEST(WhenAll, OverTenThousandFuturesFromSeveralThreads) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  const std::size_t inputs = testing::Scaled(10000, 1000);
  std::vector<Promise<std::size_t>> promises(inputs);
  std::vector<Future<std::size_t>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  Future<std::vector<std::size_t>> all = WhenAll(std::move(futures));
  constexpr std::size_t kSetters = 4;
  std::vector<std::thread> setters;
  for (std::size_t t = 0; t != kSetters; ++t) {
    setters.emplace_back([&promises, t] {
      for (std::size_t i = t; i < promises.size(); i += kSetters) promises[i].SetValue(i);
    });
  }
  std::vector<std::size_t> values;
  Fiber waiter([&] { values = BlockingGet(std::move(all)); });
  waiter.Join();
  for (auto& s : setters) s.join();
  ASSERT_EQ(values.size(), inputs);
  for (std::size_t i = 0; i != inputs; ++i) ASSERT_EQ(values[i], i);
}

TEST(WhenAny, GivesTheIndexAndValueOfTheFirstToComplete) {
  std::vector<Promise<std::string>> promises(4);
  std::vector<Future<std::string>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  Future<std::pair<std::size_t, std::string>> any = WhenAny(std::move(futures));
  EXPECT_FALSE(any.IsReady());
  promises[2].SetValue("two");
  promises[0].SetValue("zero");
  auto [index, value] = BlockingGet(std::move(any));
  EXPECT_EQ(index, 2u);
  EXPECT_EQ(value, "two");

  std::vector<Future<void>> voids;
  Promise<void> never;
  voids.push_back(never.GetFuture());
  voids.push_back(MakeReadyFuture());
  Future<std::size_t> first_void = WhenAny(std::move(voids));
  EXPECT_EQ(BlockingGet(std::move(first_void)), 1u);
}

TEST(WhenAny, PassesOnTheFirstInputsException) {
  Promise<int> slow;
  std::vector<Future<int>> futures;
  futures.push_back(slow.GetFuture());
  futures.push_back(MakeExceptionalFuture<int>(std::make_exception_ptr(CustomError{4})));
  auto any = WhenAny(std::move(futures));
  EXPECT_THROW(BlockingGet(std::move(any)), CustomError);
  slow.SetValue(1);  // late, harmless
}

TEST(WhenAny, LateCompletionsAreHarmlessAndLeakNothing) {
  std::atomic<int> alive{0};
  {
    std::vector<Promise<Tracked>> promises(8);
    std::vector<Future<Tracked>> futures;
    for (auto& p : promises) futures.push_back(p.GetFuture());
    auto any = WhenAny(std::move(futures));
    promises[5].SetValue(&alive, 5);
    {
      auto [index, value] = BlockingGet(std::move(any));  // the result future is gone
      EXPECT_EQ(index, 5u);
      EXPECT_EQ(value.value(), 5);
    }
    EXPECT_EQ(alive.load(), 0);
    for (std::size_t i = 0; i != promises.size(); ++i) {
      if (i == 5) continue;
      promises[i].SetValue(&alive, static_cast<int>(i));
      EXPECT_EQ(alive.load(), 0) << "late value " << i << " was kept";
    }
  }
  // Late inputs that are dropped instead of fulfilled (broken promises) are
  // just as harmless.
  {
    std::vector<Promise<Tracked>> promises(3);
    std::vector<Future<Tracked>> futures;
    for (auto& p : promises) futures.push_back(p.GetFuture());
    auto any = WhenAny(std::move(futures));
    promises[0].SetValue(&alive, 0);
    EXPECT_EQ(BlockingGet(std::move(any)).first, 0u);
  }
  EXPECT_EQ(alive.load(), 0);
}

TEST(WhenAny, RacingInputsFromManyFibersPickExactlyOneWinner) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  const std::size_t rounds = testing::Scaled(2000, 100);
  constexpr std::size_t kInputs = 8;
  for (std::size_t round = 0; round != rounds; ++round) {
    std::vector<Future<std::size_t>> futures;
    for (std::size_t i = 0; i != kInputs; ++i) {
      futures.push_back(Async([i] { return i; }));
    }
    auto [index, value] = BlockingGet(WhenAny(std::move(futures)));
    ASSERT_EQ(index, value);
    ASSERT_LT(index, kInputs);
  }
}

TEST(WhenAny, OfAnEmptyVectorThrows) {
  try {
    WhenAny(std::vector<Future<int>>());
    FAIL() << "WhenAny of nothing returned a future";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
  }
}

TEST(WhenAnyWithoutException, TheFirstSuccessWinsWhateverFailedBefore) {
  std::vector<Promise<std::string>> promises(4);
  std::vector<Future<std::string>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  Future<std::pair<std::size_t, std::string>> any =
      WhenAnyWithoutException(std::move(futures));
  promises[0].SetException(std::make_exception_ptr(CustomError{0}));
  promises[2].SetException(std::make_exception_ptr(CustomError{2}));
  EXPECT_FALSE(any.IsReady()) << "a failure decided while other inputs could succeed";
  promises[3].SetValue("three");
  EXPECT_TRUE(any.IsReady());
  promises[1].SetValue("one");  // late, harmless
  auto [index, value] = BlockingGet(std::move(any));
  EXPECT_EQ(index, 3u);
  EXPECT_EQ(value, "three");

  // A success that is ready from the start wins over earlier failed inputs.
  std::vector<Future<int>> ready;
  ready.push_back(MakeExceptionalFuture<int>(std::make_exception_ptr(CustomError{1})));
  ready.push_back(MakeReadyFuture(7));
  ready.push_back(MakeReadyFuture(8));
  auto first_ready = BlockingGet(WhenAnyWithoutException(std::move(ready)));
  EXPECT_EQ(first_ready, std::make_pair(std::size_t{1}, 7));
}

TEST(WhenAnyWithoutException, FailsWithTheLastFailureWhenEveryInputFails) {
  std::vector<Promise<int>> promises(3);
  std::vector<Future<int>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  auto any = WhenAnyWithoutException(std::move(futures));
  promises[1].SetException(std::make_exception_ptr(CustomError{1}));
  promises[0].SetException(std::make_exception_ptr(CustomError{0}));
  EXPECT_FALSE(any.IsReady());
  const CustomError* last = nullptr;
  try {
    throw CustomError{2};
  } catch (const CustomError& e) {
    last = &e;
    promises[2].SetException(std::current_exception());
  }
  EXPECT_TRUE(any.IsReady());
  try {
    BlockingGet(std::move(any));
    FAIL() << "every input failed, yet the result has a value";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.code, 2) << "not the last input to fail";
    EXPECT_EQ(&e, last) << "the exception was copied, not passed on";
  }

  std::vector<Future<int>> one;
  one.push_back(
      MakeExceptionalFuture<int>(std::make_exception_ptr(std::range_error("x"))));
  EXPECT_THROW(BlockingGet(WhenAnyWithoutException(std::move(one))), std::range_error);
}

TEST(WhenAnyWithoutException, OfVoidFuturesGivesTheIndex) {
  std::vector<Promise<void>> promises(3);
  std::vector<Future<void>> futures;
  for (auto& p : promises) futures.push_back(p.GetFuture());
  Future<std::size_t> any = WhenAnyWithoutException(std::move(futures));
  promises[0].SetException(std::make_exception_ptr(CustomError{0}));
  promises[2].SetValue();
  EXPECT_EQ(BlockingGet(std::move(any)), 2u);
  promises[1].SetValue();

  std::vector<Future<void>> failing;
  failing.push_back(MakeExceptionalFuture<void>(std::make_exception_ptr(CustomError{4})));
  failing.push_back(MakeExceptionalFuture<void>(std::make_exception_ptr(CustomError{5})));
  try {
    BlockingGet(WhenAnyWithoutException(std::move(failing)));
    FAIL() << "every input failed, yet the result has a value";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.code, 5);
  }
}

TEST(WhenAnyWithoutException, LateInputsAreReleasedAndNothingLeaks) {
  std::atomic<int> alive{0};
  {
    std::vector<Promise<Tracked>> promises(6);
    std::vector<Future<Tracked>> futures;
    for (auto& p : promises) futures.push_back(p.GetFuture());
    auto any = WhenAnyWithoutException(std::move(futures));
    promises[4].SetException(std::make_exception_ptr(CustomError{4}));
    promises[1].SetValue(&alive, 1);
    {
      auto [index, value] = BlockingGet(std::move(any));
      EXPECT_EQ(index, 1u);
      EXPECT_EQ(value.value(), 1);
    }
    EXPECT_EQ(alive.load(), 0);
    promises[0].SetValue(&alive, 0);
    promises[2].SetException(std::make_exception_ptr(CustomError{2}));
    EXPECT_EQ(alive.load(), 0) << "a late value was kept";
    // promises[3] and [5] break as they go: just as harmless.
  }
  {
    // The result dropped before anything completes.
    std::vector<Promise<Tracked>> promises(2);
    std::vector<Future<Tracked>> futures;
    for (auto& p : promises) futures.push_back(p.GetFuture());
    { auto dropped = WhenAnyWithoutException(std::move(futures)); }
    promises[0].SetValue(&alive, 0);
    promises[1].SetValue(&alive, 1);
  }
  EXPECT_EQ(alive.load(), 0);
}

TEST(WhenAnyWithoutException, RacingInputsPickOneSuccessOrTheLastFailure) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  const std::size_t rounds = testing::Scaled(2000, 100);
  constexpr std::size_t kInputs = 8;
  for (std::size_t round = 0; round != rounds; ++round) {
    // Odd inputs fail; in every fourth round all do.
    const bool all_fail = round % 4 == 0;
    std::vector<Future<std::size_t>> futures;
    for (std::size_t i = 0; i != kInputs; ++i) {
      futures.push_back(Async([i, all_fail]() -> std::size_t {
        if (all_fail || i % 2 == 1) throw CustomError{static_cast<int>(i)};
        return i;
      }));
    }
    auto any = WhenAnyWithoutException(std::move(futures));
    if (all_fail) {
      ASSERT_THROW(BlockingGet(std::move(any)), CustomError);
    } else {
      auto [index, value] = BlockingGet(std::move(any));
      ASSERT_EQ(index, value);
      ASSERT_EQ(index % 2, 0u) << "a failed input won";
    }
  }
}

TEST(WhenAnyWithoutException, OfAnEmptyVectorThrows) {
  EXPECT_THROW(WhenAnyWithoutException(std::vector<Future<int>>()),
               std::invalid_argument);
  EXPECT_THROW(WhenAnyWithoutException(std::vector<Future<void>>()),
               std::invalid_argument);
}

}  // namespace
}  // namespace weft
