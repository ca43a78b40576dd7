// DoWhile, Repeat and DoForEach: their exact iteration semantics, failures,
// bodies whose futures complete later on other fibers and threads, constant
// stack depth and the release of everything a loop holds.
#include "runtime/future/loop.h"

#include <atomic>
#include <cstddef>
#include <exception>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/future/async.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/future.h"
#include "runtime/runtime.h"
#include "test/future/future_test_util.h"
#include "test/sync/sync_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::Actor;
using testing::CustomError;
using testing::Tracked;

// Fails `promise` with a CustomError and returns the address of the thrown
// object, to check that a loop passes on that object itself.
template <class T>
const CustomError* FailWith(Promise<T>& promise, int code) {
  try {
    throw CustomError{code};
  } catch (const CustomError& e) {
    promise.SetException(std::current_exception());
    return &e;
  }
}

// Expects `future` to fail with a CustomError of `code` (and, if given, that
// very object).
::testing::AssertionResult FailsWith(Future<void> future, int code,
                                     const CustomError* object = nullptr) {
  try {
    BlockingGet(std::move(future));
  } catch (const CustomError& e) {
    if (e.code != code) {
      return ::testing::AssertionFailure() << "failed with code " << e.code;
    }
    if (object != nullptr && &e != object) {
      return ::testing::AssertionFailure() << "the exception was copied";
    }
    return ::testing::AssertionSuccess();
  } catch (...) {
    return ::testing::AssertionFailure() << "failed with another exception";
  }
  return ::testing::AssertionFailure() << "succeeded";
}

TEST(DoWhile, ChecksTheConditionBeforeEveryIteration) {
  std::string trace;
  int left = 3;
  Future<void> loop = DoWhile(
      [&] {
        trace += 'c';
        return left > 0;
      },
      [&] {
        trace += 'b';
        --left;
        return MakeReadyFuture(left);  // any value type; it is ignored
      });
  EXPECT_TRUE(loop.IsReady()) << "ready bodies should run the loop to its end";
  BlockingGet(std::move(loop));
  EXPECT_EQ(trace, "cbcbcbc");

  int calls = 0;
  Future<void> never = DoWhile([] { return false; },
                               [&calls] {
                                 ++calls;
                                 return MakeReadyFuture();
                               });
  EXPECT_TRUE(never.IsReady());
  BlockingGet(std::move(never));
  EXPECT_EQ(calls, 0) << "the body ran although the condition was false at once";
}

// Each body's future is pending until the test sets it: the next check and
// body run only then, inside SetValue.
TEST(DoWhile, StartsTheNextIterationOnlyAfterTheBodysFutureCompleted) {
  std::list<Promise<void>> promises;
  int checks = 0;
  Future<void> loop = DoWhile([&] { return ++checks <= 3; },
                              [&] { return promises.emplace_back().GetFuture(); });
  EXPECT_EQ(checks, 1);
  ASSERT_EQ(promises.size(), 1u);
  EXPECT_FALSE(loop.IsReady());
  promises.back().SetValue();
  EXPECT_EQ(checks, 2) << "the next iteration did not run inside SetValue";
  EXPECT_EQ(promises.size(), 2u);
  promises.back().SetValue();
  promises.back().SetValue();
  EXPECT_EQ(checks, 4);
  EXPECT_EQ(promises.size(), 3u);
  EXPECT_TRUE(loop.IsReady());
  BlockingGet(std::move(loop));
}

TEST(DoWhile, StopsAtTheFirstFailureWithThatException) {
  std::list<Promise<int>> promises;
  int checks = 0;
  Future<void> loop = DoWhile([&] { return ++checks < 100; },
                              [&] { return promises.emplace_back().GetFuture(); });
  promises.back().SetValue(1);
  const CustomError* thrown = FailWith(promises.back(), 7);
  EXPECT_EQ(checks, 2) << "the condition was checked after a failed iteration";
  EXPECT_EQ(promises.size(), 2u);
  EXPECT_TRUE(FailsWith(std::move(loop), 7, thrown));

  int bodies = 0;
  Future<void> cond_throws = DoWhile(
      [&] {
        if (bodies == 2) throw CustomError{1};
        return true;
      },
      [&] {
        ++bodies;
        return MakeReadyFuture();
      });
  EXPECT_TRUE(FailsWith(std::move(cond_throws), 1));
  EXPECT_EQ(bodies, 2);

  int checked = 0;
  Future<void> body_throws = DoWhile([&] { return ++checked > 0; },
                                     []() -> Future<void> { throw CustomError{2}; });
  EXPECT_TRUE(FailsWith(std::move(body_throws), 2));
  EXPECT_EQ(checked, 1);

  Future<void> invalid = DoWhile([] { return true; }, [] { return Future<int>(); });
  EXPECT_THROW(BlockingGet(std::move(invalid)), std::logic_error);
}

TEST(DoWhile, WithABoolBodyRunsAtLeastOnceAndWhileItSaysSo) {
  int calls = 0;
  BlockingGet(DoWhile([&] {
    ++calls;
    return MakeReadyFuture(false);
  }));
  EXPECT_EQ(calls, 1);

  calls = 0;
  BlockingGet(DoWhile([&] { return MakeReadyFuture(++calls < 5); }));
  EXPECT_EQ(calls, 5);

  std::list<Promise<bool>> promises;
  Future<void> loop = DoWhile([&] { return promises.emplace_back().GetFuture(); });
  promises.back().SetValue(true);
  promises.back().SetValue(true);
  EXPECT_EQ(promises.size(), 3u);
  EXPECT_FALSE(loop.IsReady());
  const CustomError* thrown = FailWith(promises.back(), 3);
  EXPECT_EQ(promises.size(), 3u) << "the body ran after a failure";
  EXPECT_TRUE(FailsWith(std::move(loop), 3, thrown));

  calls = 0;
  Future<void> throws = DoWhile([&]() -> Future<bool> {
    if (++calls == 4) throw CustomError{4};
    return MakeReadyFuture(true);
  });
  EXPECT_TRUE(FailsWith(std::move(throws), 4));
  EXPECT_EQ(calls, 4);
}

TEST(Repeat, ForeverEndsOnlyWithTheFirstFailure) {
  std::size_t calls = 0;
  Future<void> loop = Repeat([&]() -> Future<void> {
    if (++calls == 1000) {
      return MakeExceptionalFuture<void>(std::make_exception_ptr(CustomError{9}));
    }
    return MakeReadyFuture();
  });
  EXPECT_TRUE(FailsWith(std::move(loop), 9));
  EXPECT_EQ(calls, 1000u);

  // With futures completed later it stays pending between iterations, and the
  // index counts the iterations.
  std::list<Promise<void>> promises;
  std::vector<std::size_t> indexes;
  Future<void> background = Repeat([&](std::size_t i) {
    indexes.push_back(i);
    return promises.emplace_back().GetFuture();
  });
  for (int i = 0; i != 5; ++i) {
    EXPECT_FALSE(background.IsReady());
    promises.back().SetValue();
  }
  EXPECT_EQ(indexes, (std::vector<std::size_t>{0, 1, 2, 3, 4, 5}));
  promises.pop_back();  // a broken promise is a failure too
  EXPECT_THROW(BlockingGet(std::move(background)), std::future_error);
  EXPECT_EQ(indexes.size(), 6u);

  std::size_t thrown_at = 0;
  Future<void> body_throws = Repeat([&](std::size_t i) -> Future<void> {
    thrown_at = i;
    if (i == 3) throw CustomError{3};
    return MakeReadyFuture();
  });
  EXPECT_TRUE(FailsWith(std::move(body_throws), 3));
  EXPECT_EQ(thrown_at, 3u);
}

TEST(Repeat, CountedRunsTheBodyThatManyTimesWithItsIndex) {
  std::vector<std::size_t> indexes;
  BlockingGet(Repeat(5, [&](std::size_t i) {
    indexes.push_back(i);
    return MakeReadyFuture();
  }));
  EXPECT_EQ(indexes, (std::vector<std::size_t>{0, 1, 2, 3, 4}));

  int calls = 0;
  BlockingGet(Repeat(3, [&] {
    ++calls;
    return MakeReadyFuture(std::string("ignored"));
  }));
  EXPECT_EQ(calls, 3);

  calls = 0;
  Future<void> none = Repeat(0, [&] {
    ++calls;
    return MakeReadyFuture();
  });
  EXPECT_TRUE(none.IsReady());
  BlockingGet(std::move(none));
  EXPECT_EQ(calls, 0);

  std::list<Promise<void>> promises;
  Future<void> stops =
      Repeat(10, [&](std::size_t) { return promises.emplace_back().GetFuture(); });
  promises.back().SetValue();
  promises.back().SetValue();
  const CustomError* thrown = FailWith(promises.back(), 2);
  EXPECT_EQ(promises.size(), 3u) << "an iteration ran after the failure";
  EXPECT_TRUE(FailsWith(std::move(stops), 2, thrown));
}

TEST(DoForEach, VisitsEachElementInOrderOneAtATime) {
  std::vector<int> values{1, 2, 3, 4};
  std::vector<const int*> seen;
  std::list<Promise<void>> promises;
  Future<void> loop = DoForEach(values, [&](int& v) {
    seen.push_back(&v);
    return promises.emplace_back().GetFuture();
  });
  for (std::size_t i = 0; i != values.size(); ++i) {
    ASSERT_EQ(seen.size(), i + 1) << "not one element at a time";
    EXPECT_EQ(seen[i], &values[i]) << "an lvalue range must be referenced, in order";
    EXPECT_FALSE(loop.IsReady());
    promises.back().SetValue();
  }
  EXPECT_TRUE(loop.IsReady());
  BlockingGet(std::move(loop));

  std::string order;
  const std::string text = "abc";
  BlockingGet(DoForEach(text.begin(), text.end(), [&](char c) {
    order += c;
    return MakeReadyFuture(c);
  }));
  EXPECT_EQ(order, "abc");

  int calls = 0;
  Future<void> empty = DoForEach(std::vector<int>(), [&](int) {
    ++calls;
    return MakeReadyFuture();
  });
  EXPECT_TRUE(empty.IsReady());
  BlockingGet(std::move(empty));
  EXPECT_EQ(calls, 0);
}

TEST(DoForEach, OwnsAnRvalueRangeUntilTheLoopEnds) {
  std::atomic<int> alive{0};
  std::vector<Tracked> values;
  for (int i = 0; i != 3; ++i) values.emplace_back(&alive, i);
  std::vector<int> seen;
  std::list<Promise<void>> promises;
  Future<void> loop = DoForEach(std::move(values), [&](const Tracked& t) {
    seen.push_back(t.value());
    return promises.emplace_back().GetFuture();
  });
  EXPECT_EQ(alive.load(), 3);
  promises.back().SetValue();
  promises.back().SetValue();
  EXPECT_EQ(alive.load(), 3);
  Future<int> after = std::move(loop).Then([&alive] { return alive.load(); });
  promises.back().SetValue();
  EXPECT_EQ(BlockingGet(std::move(after)), 0)
      << "the range was still alive when the loop's future became ready";
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
}

TEST(DoForEach, StopsAtTheFirstFailure) {
  std::vector<int> values{0, 1, 2, 3};
  std::vector<int> seen;
  Future<void> loop = DoForEach(values, [&](int v) -> Future<void> {
    seen.push_back(v);
    if (v == 1) {
      return MakeExceptionalFuture<void>(std::make_exception_ptr(CustomError{1}));
    }
    return MakeReadyFuture();
  });
  EXPECT_TRUE(FailsWith(std::move(loop), 1));
  EXPECT_EQ(seen, (std::vector<int>{0, 1}));

  seen.clear();
  Future<void> throws = DoForEach(values, [&](int v) -> Future<void> {
    seen.push_back(v);
    if (v == 2) throw CustomError{2};
    return MakeReadyFuture();
  });
  EXPECT_TRUE(FailsWith(std::move(throws), 2));
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
}

// A loop frees its callables before its future becomes ready, its state once
// it has ended (even with its future dropped early), and every body's future.
TEST(Loops, ReleaseEverythingTheyHold) {
  std::atomic<int> alive{0};
  {
    Tracked captured(&alive);
    Future<bool> released_first = Repeat(100, [&alive, t = std::move(captured)] {
                                    return MakeReadyFuture(Tracked(&alive));
                                  }).Then([&alive] { return alive.load() == 0; });
    EXPECT_TRUE(BlockingGet(std::move(released_first)));
  }
  {
    std::list<Promise<Tracked>> promises;
    {
      Future<void> dropped = DoWhile([t = Tracked(&alive)] { return true; },
                                     [&] { return promises.emplace_back().GetFuture(); });
    }
    promises.back().SetValue(&alive, 1);
    promises.back().SetValue(&alive, 2);
    EXPECT_EQ(alive.load(), 1) << "only the captured Tracked should be alive";
    promises.pop_back();  // broken: the loop fails, nobody reads it, it is freed
    EXPECT_EQ(alive.load(), 0);
  }
  EXPECT_EQ(alive.load(), 0);
}

// 100,000 iterations whose bodies return ready futures, on a fiber's 128 KiB
// stack: a loop built from recursive continuations would overflow it.
TEST(Loops, RunInConstantStackDepth) {
  Runtime runtime(testing::OptionsWithWorkers(1));
  constexpr std::size_t kIterations = 100000;
  std::size_t counts[6] = {};
  Fiber fiber([&] {
    std::size_t i = 0;
    BlockingGet(DoWhile([&] { return i < kIterations; },
                        [&] {
                          ++i;
                          return MakeReadyFuture();
                        }));
    counts[0] = i;
    BlockingGet(DoWhile([&] { return MakeReadyFuture(++counts[1] < kIterations); }));
    BlockingGet(Repeat(kIterations, [&](std::size_t) {
      ++counts[2];
      return MakeReadyFuture(1);
    }));
    std::vector<int> values(kIterations, 1);
    BlockingGet(DoForEach(values, [&](int v) {
      counts[3] += v;
      return MakeReadyFuture();
    }));
    try {
      BlockingGet(Repeat([&]() -> Future<void> {
        if (++counts[4] == kIterations) throw CustomError{0};
        return MakeReadyFuture();
      }));
    } catch (const CustomError&) {
    }
    // Ready bodies built by a Then chain step each time.
    BlockingGet(Repeat(kIterations,
                       [&] { return MakeReadyFuture().Then([&] { ++counts[5]; }); }));
  });
  fiber.Join();
  for (std::size_t count : counts) EXPECT_EQ(count, kIterations);
}

class LoopTest : public testing::WaiterNotifierTest {};

// The bodies' futures are completed by the other side, a fiber or a thread, each
// only after its body has run: every iteration but the first runs there.
TEST_P(LoopTest, BodiesCompletedElsewhereContinueTheLoopThere) {
  const std::size_t iterations = testing::Scaled(2000, 200);
  std::vector<Promise<std::size_t>> promises(iterations);
  std::atomic<std::size_t> started{0};
  std::vector<std::size_t> order;
  Actor looping(waiter(), [&] {
    Future<void> loop = Repeat(iterations, [&](std::size_t i) {
      order.push_back(i);
      Future<std::size_t> future = promises[i].GetFuture();
      // The other side may set the promise from here on (not before: a promise
      // is used by one caller at a time).
      started.store(i + 1, std::memory_order_release);
      return future;
    });
    BlockingGet(std::move(loop));
  });
  Actor completing(notifier(), [&] {
    for (std::size_t i = 0; i != iterations; ++i) {
      testing::WaitOrAbort(testing::PollUntil(
          [&] { return started.load(std::memory_order_acquire) == i + 1; },
          "iteration " + std::to_string(i)));
      promises[i].SetValue(i);
    }
  });
  looping.Join();
  completing.Join();
  ASSERT_EQ(order.size(), iterations);
  for (std::size_t i = 0; i != iterations; ++i) ASSERT_EQ(order[i], i);
}

// Bodies that start fibers, with the loop started and waited for on a fiber and
// on a thread: each iteration continues on the previous body's Async fiber.
TEST(Loops, BodiesReturningAsyncFutures) {
  Runtime runtime(testing::OptionsWithWorkers(4));
  const std::size_t iterations = testing::Scaled(1000, 100);
  std::vector<int> values(iterations);
  for (std::size_t i = 0; i != iterations; ++i) values[i] = static_cast<int>(i);
  for (testing::Side side : {testing::Side::kFiber, testing::Side::kThread}) {
    std::atomic<long> sum{0};
    std::atomic<bool> overlapped{false};
    std::atomic<int> running{0};
    Actor looping(side, [&] {
      Future<void> loop = DoForEach(values, [&](int v) {
        return Async([&, v] {
          if (running.fetch_add(1) != 0) overlapped = true;
          sum.fetch_add(v);
          running.fetch_sub(1);
        });
      });
      BlockingGet(std::move(loop));
    });
    looping.Join();
    EXPECT_FALSE(overlapped.load()) << "two iterations ran at once";
    EXPECT_EQ(sum.load(), static_cast<long>(iterations) * (iterations - 1) / 2);
  }
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(LoopTest);

}  // namespace
}  // namespace weft
