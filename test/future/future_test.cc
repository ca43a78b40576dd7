// Promise, Future, Then, MakeReadyFuture and MakeExceptionalFuture; waits go
// through BlockingGet from a plain thread here (blocking_get_test.cc covers
// fibers).
#include "runtime/future/future.h"

#include <atomic>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/future/blocking_get.h"
#include "runtime/runtime.h"
#include "test/future/future_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::CustomError;
using testing::Tracked;

TEST(Future, DeliversAValueSetBeforeOrAfterTheWaitStarts) {
  Promise<int> early;
  Future<int> early_future = early.GetFuture();
  early.SetValue(1);
  EXPECT_TRUE(early_future.IsReady());
  EXPECT_EQ(BlockingGet(std::move(early_future)), 1);

  Promise<int> late;
  Future<int> late_future = late.GetFuture();
  EXPECT_FALSE(late_future.IsReady());
  std::thread setter([&late] { late.SetValue(2); });
  EXPECT_EQ(BlockingGet(std::move(late_future)), 2);
  setter.join();
}

TEST(Future, CarriesMoveOnlyValuesAndVoid) {
  Promise<std::unique_ptr<std::string>> promise;
  auto future = promise.GetFuture().Then([](std::unique_ptr<std::string> s) {
    return std::make_unique<std::size_t>(s->size());
  });
  promise.SetValue(std::make_unique<std::string>("four"));
  EXPECT_EQ(*BlockingGet(std::move(future)), 4u);

  Promise<void> done;
  bool ran = false;
  Future<void> after = done.GetFuture().Then([&ran] { ran = true; });
  EXPECT_FALSE(ran);
  done.SetValue();
  BlockingGet(std::move(after));
  EXPECT_TRUE(ran);
}

TEST(Future, RethrowsTheOriginalExceptionObjectThroughValueContinuations) {
  Promise<int> promise;
  int calls = 0;
  Future<std::string> end =
      promise.GetFuture()
          .Then([&calls](int x) { return ++calls + x; })
          .Then([&calls](int x) { return std::to_string(x + ++calls); })
          .Then([&calls](std::string s) {
            ++calls;
            return s;
          });
  const CustomError* thrown = nullptr;
  try {
    throw CustomError{7};
  } catch (const CustomError& e) {
    thrown = &e;
    promise.SetException(std::current_exception());
  }
  try {
    BlockingGet(std::move(end));
    FAIL() << "BlockingGet returned a value from a failed chain";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.code, 7);
    EXPECT_EQ(&e, thrown) << "the exception was copied, not passed on";
  }
  EXPECT_EQ(calls, 0) << "value continuations ran despite the failure";
}

TEST(Future, WholeFutureContinuationSeesTheFailureAndCanRecover) {
  Future<int> recovered = MakeExceptionalFuture<int>(
                              std::make_exception_ptr(std::out_of_range("no such key")))
                              .Then([](Future<int> f) {
                                EXPECT_TRUE(f.IsReady());
                                try {
                                  return BlockingGet(std::move(f));
                                } catch (const std::out_of_range& e) {
                                  EXPECT_STREQ(e.what(), "no such key");
                                  return -1;
                                }
                              });
  EXPECT_EQ(BlockingGet(std::move(recovered)), -1);
}

TEST(Future, StoresWhatAContinuationThrows) {
  Future<int> failed = MakeReadyFuture(1).Then([](int) -> int { throw CustomError{3}; });
  try {
    BlockingGet(std::move(failed));
    FAIL() << "the continuation's exception was lost";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.code, 3);
  }
  Future<void> failed_void =
      MakeReadyFuture().Then([] { throw std::length_error("too long"); });
  EXPECT_THROW(BlockingGet(std::move(failed_void)), std::length_error);
}

TEST(Future, FlattensAContinuationThatReturnsAFuture) {
  Promise<std::string> inner;
  Future<std::string> inner_future = inner.GetFuture();
  Promise<int> outer;
  Future<std::string> flat =
      outer.GetFuture().Then([&inner_future](int x) -> Future<std::string> {
        return std::move(inner_future).Then([x](std::string s) {
          return s + std::to_string(x);
        });
      });
  outer.SetValue(5);
  EXPECT_FALSE(flat.IsReady()) << "ready before the inner future was";
  std::thread setter([&inner] { inner.SetValue("answer "); });
  EXPECT_EQ(BlockingGet(std::move(flat)), "answer 5");
  setter.join();

  Future<int> failed_inner = MakeReadyFuture(1).Then([](int) {
    return MakeExceptionalFuture<int>(std::make_exception_ptr(CustomError{9}));
  });
  EXPECT_THROW(BlockingGet(std::move(failed_inner)), CustomError);

  Future<void> flat_void = MakeReadyFuture().Then([] { return MakeReadyFuture(); });
  BlockingGet(std::move(flat_void));
}

TEST(Future, AContinuationReturningAnInvalidFutureGivesALogicError) {
  Future<int> result = MakeReadyFuture(1).Then([](int) { return Future<int>(); });
  try {
    BlockingGet(std::move(result));
    FAIL() << "an invalid inner future produced a value";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("invalid"), std::string::npos) << e.what();
  }
}

TEST(Future, ContinuationRunsInsideThenWhenTheInputIsReady) {
  bool ran = false;
  Future<void> f = MakeReadyFuture(1).Then([&ran](int) { ran = true; });
  EXPECT_TRUE(ran);
  EXPECT_TRUE(f.IsReady());
}

TEST(Future, ContinuationRunsOnTheThreadThatSetsTheValue) {
  Promise<int> promise;
  std::thread::id ran_on;
  Future<void> f =
      promise.GetFuture().Then([&ran_on](int) { ran_on = std::this_thread::get_id(); });
  std::thread::id setter_id;
  std::thread setter([&] {
    setter_id = std::this_thread::get_id();
    promise.SetValue(1);
    EXPECT_TRUE(f.IsReady()) << "SetValue returned before its continuation ran";
  });
  setter.join();
  EXPECT_EQ(ran_on, setter_id);
}

TEST(Future, ADroppedPromiseBreaksItsFuture) {
  Future<int> orphan;
  {
    Promise<int> promise;
    orphan = promise.GetFuture();
  }
  try {
    BlockingGet(std::move(orphan));
    FAIL() << "a broken promise produced a value";
  } catch (const std::future_error& e) {
    EXPECT_EQ(e.code(), std::future_errc::broken_promise);
  }

  // The same through a chain, and for a promise moved away and dropped.
  Promise<void> moved;
  Future<int> chained = moved.GetFuture().Then([](Future<void> f) {
    try {
      BlockingGet(std::move(f));
    } catch (const std::future_error&) {
      return 1;
    }
    return 0;
  });
  { Promise<void> sink = std::move(moved); }
  EXPECT_EQ(BlockingGet(std::move(chained)), 1);
}

TEST(Future, DroppingTheFutureEarlyDestroysTheValueOnce) {
  std::atomic<int> alive{0};
  {
    Promise<Tracked> promise;
    { Future<Tracked> dropped = promise.GetFuture(); }
    promise.SetValue(&alive);
    EXPECT_EQ(alive.load(), 0) << "nobody can read the value, yet it is kept";
  }
  EXPECT_EQ(alive.load(), 0);
  {
    Promise<Tracked> not_yet_read;  // the future may still be taken
    not_yet_read.SetValue(&alive);
    EXPECT_EQ(alive.load(), 1);
    EXPECT_EQ(BlockingGet(not_yet_read.GetFuture()).value(), 0);
    EXPECT_EQ(alive.load(), 0);
    Promise<Tracked> never_read;
    never_read.SetValue(&alive);
  }
  EXPECT_EQ(alive.load(), 0);
}

TEST(Future, ReleasesAContinuationsCapturesOnceItHasRun) {
  auto capture = std::make_shared<int>(0);
  Promise<int> promise;
  Future<int> f = promise.GetFuture().Then([capture](int x) { return x + *capture; });
  EXPECT_EQ(capture.use_count(), 2);
  promise.SetValue(1);
  EXPECT_EQ(capture.use_count(), 1) << "the result future still pins the callable";
  EXPECT_EQ(BlockingGet(std::move(f)), 1);
}

// Each pending step would recurse into the next on a naive implementation; the
// chain is fired from a fiber, whose stack is 128 KiB by default.
TEST(Future, LongChainsCompleteWithoutDeepRecursion) {
  Runtime runtime(testing::OptionsWithWorkers(1));
  constexpr int kSteps = 100000;
  Promise<int> promise;
  Future<int> end = promise.GetFuture();
  for (int i = 0; i != kSteps; ++i)
    end = std::move(end).Then([](int x) { return x + 1; });
  Fiber setter([&promise] { promise.SetValue(0); });
  setter.Join();
  EXPECT_EQ(BlockingGet(std::move(end)), kSteps);

  // Flattening steps chain through the inner futures' continuations as well.
  std::vector<Promise<int>> inner(1000);
  Future<int> flat = MakeReadyFuture(0);
  for (auto& p : inner) {
    flat = std::move(flat).Then(
        [&p](int x) { return p.GetFuture().Then([x](int y) { return x + y; }); });
  }
  Fiber fulfil([&inner] {
    for (auto& p : inner) p.SetValue(1);
  });
  fulfil.Join();
  EXPECT_EQ(BlockingGet(std::move(flat)), 1000);
}

TEST(Future, MakeReadyAndExceptionalFuturesAreReady) {
  Future<std::string> ready = MakeReadyFuture(std::string("x"));
  EXPECT_TRUE(ready.IsValid());
  EXPECT_TRUE(ready.IsReady());
  EXPECT_EQ(BlockingGet(std::move(ready)), "x");
  EXPECT_FALSE(ready.IsValid()) << "BlockingGet did not consume the future";
  Future<void> failed =
      MakeExceptionalFuture<void>(std::make_exception_ptr(CustomError{1}));
  EXPECT_TRUE(failed.IsReady());
  EXPECT_THROW(BlockingGet(std::move(failed)), CustomError);
  Future<int> invalid;
  EXPECT_FALSE(invalid.IsValid());
  EXPECT_FALSE(invalid.IsReady());
}

TEST(Future, ASetValueWhoseConstructionThrowsLeavesThePromiseUsable) {
  struct Picky {
    explicit Picky(int v) : value(v) {
      if (v < 0) throw std::invalid_argument("negative");
    }
    int value;
  };
  Promise<Picky> promise;
  Future<Picky> future = promise.GetFuture();
  EXPECT_THROW(promise.SetValue(-1), std::invalid_argument);
  EXPECT_FALSE(future.IsReady());
  promise.SetValue(3);
  EXPECT_EQ(BlockingGet(std::move(future)).value, 3);
}

class FutureMisuseDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { ::testing::FLAGS_gtest_death_test_style = "threadsafe"; }
};

TEST_F(FutureMisuseDeathTest, AbortsWithAMessage) {
  EXPECT_DEATH(
      {
        Promise<int> p;
        p.SetValue(1);
        p.SetValue(2);
      },
      "already satisfied");
  EXPECT_DEATH(
      {
        Promise<int> p;
        auto a = p.GetFuture();
        auto b = p.GetFuture();
      },
      "GetFuture\\(\\) called twice");
  EXPECT_DEATH(
      {
        Future<int> f = MakeReadyFuture(1);
        auto g = std::move(f).Then([](int x) { return x; });
        BlockingGet(std::move(f));
      },
      "invalid future");
  EXPECT_DEATH(
      {
        Future<int> f;
        auto g = f.Then([](int x) { return x; });
      },
      "invalid future");
  EXPECT_DEATH({ Promise<int>().SetException(nullptr); }, "pass a real exception");
}

}  // namespace
}  // namespace weft
