// Async: runs its callable on a new fiber and returns the result as a future.
#include "runtime/future/async.h"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/future.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/this_fiber.h"
#include "test/future/future_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::CustomError;

class AsyncTest : public testing::WorkerCountTest {};

TEST_P(AsyncTest, RunsTheCallableOnANewFiber) {
  const std::uint64_t caller = this_fiber::GetId();
  Future<std::uint64_t> id = Async([] { return this_fiber::GetId(); });
  const std::uint64_t ran_on = BlockingGet(std::move(id));
  EXPECT_NE(ran_on, 0u) << "the callable did not run on a fiber";
  EXPECT_NE(ran_on, caller);

  // And from a fiber, with a move-only result.
  Fiber outer([] {
    auto value = BlockingGet(Async([] { return std::make_unique<int>(5); }));
    EXPECT_EQ(*value, 5);
  });
  outer.Join();
}

TEST_P(AsyncTest, StoresTheCallablesExceptionInTheFuture) {
  Future<int> failed = Async([]() -> int { throw CustomError{11}; });
  try {
    BlockingGet(std::move(failed));
    FAIL() << "an exception thrown by the callable was lost";
  } catch (const CustomError& e) {
    EXPECT_EQ(e.code, 11);
  }
  EXPECT_THROW(BlockingGet(Async([] { throw std::runtime_error("void"); })),
               std::runtime_error);
}

TEST_P(AsyncTest, FlattensACallableReturningAFuture) {
  Promise<int> later;
  Future<int> later_future = later.GetFuture();
  Future<int> flat = Async([&later_future] {
    return std::move(later_future).Then([](int x) { return x * 2; });
  });
  std::thread setter([&later] { later.SetValue(21); });
  EXPECT_EQ(BlockingGet(std::move(flat)), 42);
  setter.join();
}

TEST_P(AsyncTest, ContinuationsOfTheResultRunOnTheAsyncFiber) {
  Promise<void> gate;
  Future<void> gate_future = gate.GetFuture();
  std::uint64_t producer = 0;
  Future<std::uint64_t> consumer_ran_on =
      Async([&] {
        BlockingGet(std::move(gate_future));  // the Then below is attached by now
        producer = this_fiber::GetId();
      }).Then([] { return this_fiber::GetId(); });
  gate.SetValue();
  EXPECT_EQ(BlockingGet(std::move(consumer_ran_on)), producer);
}

TEST_P(AsyncTest, HonoursTheSchedulingGroupAttribute) {
  const std::size_t groups = GetSchedulingGroupCount();
  for (std::size_t g = 0; g != groups; ++g) {
    FiberAttributes attrs;
    attrs.scheduling_group = g;
    attrs.scheduling_group_local = true;
    EXPECT_EQ(BlockingGet(
                  Async(attrs, [] { return detail::CurrentWorker()->group()->index(); })),
              g);
  }
  FiberAttributes out_of_range;
  out_of_range.scheduling_group = groups;
  EXPECT_THROW(Async(out_of_range, [] { return 1; }), std::invalid_argument);
}

TEST_P(AsyncTest, ManyConcurrentTasksEachDeliverTheirOwnResult) {
  const std::size_t tasks = testing::Scaled(10000, 500);
  std::vector<Future<std::size_t>> results;
  results.reserve(tasks);
  for (std::size_t i = 0; i != tasks; ++i) {
    results.push_back(Async([i] {
      if (i % 3 == 0) this_fiber::Yield();
      return i * i;
    }));
  }
  for (std::size_t i = 0; i != tasks; ++i) {
    ASSERT_EQ(BlockingGet(std::move(results[i])), i * i);
  }
}

WEFT_INSTANTIATE_OVER_WORKER_COUNTS(AsyncTest);

TEST(Async, ThrowsWhenTheRuntimeIsNotRunningAndLeaksNothing) {
  auto capture = std::make_shared<int>(1);
  try {
    Async([capture] { return *capture; });
    FAIL() << "Async started a task without a runtime";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("not running"), std::string::npos) << e.what();
  }
  EXPECT_EQ(capture.use_count(), 1) << "the callable was not released";
}

}  // namespace
}  // namespace weft
