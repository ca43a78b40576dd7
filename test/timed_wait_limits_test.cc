// Every timed API takes the extreme values of any clock and representation:
// min(), past, negative, NaN and -infinity time out at once when the wait is
// not satisfied; max() and +infinity wait without a deadline, until satisfied.
// Under UBSan (the address-sanitizer build, with float-cast-overflow) any
// overflow on the way is an error.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <ratio>
#include <stdexcept>
#include <thread>

#include "gtest/gtest.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/future.h"
#include "runtime/sync/fiber_channel.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_event.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_recursive_mutex.h"
#include "runtime/sync/fiber_semaphore.h"
#include "runtime/sync/fiber_timed_mutex.h"
#include "runtime/this_fiber.h"
#include "runtime/timer/timer.h"
#include "test/sync/sync_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using namespace std::chrono;
using testing::Actor;
using testing::PollUntil;
using testing::Side;
using testing::WaitOrAbort;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <class F>
void ForEachAtOnceDuration(F&& f) {
  f(nanoseconds::zero());
  f(milliseconds(-1));
  f(nanoseconds::min());
  f(hours::min());
  f(duration<std::int8_t>::min());
  f(duration<std::uint8_t>::min());
  f(duration<double>::min());
  f(duration<double>(-kInf));
  f(duration<double>(kNaN));
  f(duration<float>::min());
}

template <class F>
void ForEachUnboundedDuration(F&& f) {
  f(nanoseconds::max());
  f(hours::max());
  f(duration<std::int8_t>::max());
  f(duration<std::uint64_t, std::milli>::max());
  f(duration<double>::max());
  f(duration<double>(kInf));
  f(duration<float>::max());
}

using Int8Seconds = time_point<system_clock, duration<std::int8_t>>;
using DoubleSteady = time_point<steady_clock, duration<double>>;
using FloatSystem = time_point<system_clock, duration<float>>;

template <class F>
void ForEachPastTimePoint(F&& f) {
  f(steady_clock::time_point::min());
  f(system_clock::time_point::min());
  f(system_clock::now() - seconds(1));
  f(time_point<system_clock, hours>::min());
  f(Int8Seconds::min());
  f(Int8Seconds(duration<std::int8_t>(100)));
  f(DoubleSteady::min());
  f(DoubleSteady(duration<double>(-kInf)));
  f(DoubleSteady(duration<double>(kNaN)));
  f(FloatSystem::min());
}

template <class F>
void ForEachUnboundedTimePoint(F&& f) {
  f(steady_clock::time_point::max());
  f(system_clock::time_point::max());
  f(time_point<system_clock, hours>::max());
  f(Int8Seconds::max());
  f(DoubleSteady::max());
  f(DoubleSteady(duration<double>(kInf)));
  f(FloatSystem::max());
}

// Calls `f` with every "time out at once" argument, durations and time points.
template <class F>
void ForEachAtOnce(F&& f) {
  ForEachAtOnceDuration(f);
  ForEachPastTimePoint(f);
}
template <class F>
void ForEachUnbounded(F&& f) {
  ForEachUnboundedDuration(f);
  ForEachUnboundedTimePoint(f);
}

class TimedWaitLimitsTest : public ::testing::TestWithParam<Side> {
 protected:
  void SetUp() override { StartRuntime(testing::OptionsWithWorkers(2)); }
  void TearDown() override { TerminateRuntime(); }
  Side waiter() const { return GetParam(); }

  // Runs `wait` (which must return true, i.e. satisfied) on the waiter's side,
  // and `release` on a fiber once the waiter is about to wait.
  void ExpectWaitsUntilReleased(std::function<bool()> wait,
                                std::function<void()> release) {
    std::atomic<bool> about_to_wait{false};
    Actor waiting(waiter(), [&] {
      about_to_wait = true;
      EXPECT_TRUE(wait()) << "a wait without deadline ended unsatisfied";
    });
    Actor releasing(Side::kFiber, [&] {
      WaitOrAbort(PollUntil([&] { return about_to_wait.load(); }, "the waiter"));
      for (int i = 0; i != 5; ++i) this_fiber::Yield();
      release();
    });
  }
  void OnWaiterSide(std::function<void()> body) {
    Actor(waiter(), std::move(body)).Join();
  }
};

// A duration or a time point: the two overload sets of each API.
template <class Rep, class Period, class DurationF, class TimePointF>
auto Dispatch(const duration<Rep, Period>& d, DurationF&& with_duration, TimePointF&&) {
  return with_duration(d);
}
template <class Clock, class D, class DurationF, class TimePointF>
auto Dispatch(const time_point<Clock, D>& tp, DurationF&&, TimePointF&& with_time_point) {
  return with_time_point(tp);
}

TEST_P(TimedWaitLimitsTest, SleepsReturnAtOnce) {
  OnWaiterSide([] {
    ForEachAtOnceDuration([](auto d) { this_fiber::SleepFor(d); });
    ForEachPastTimePoint([](auto tp) { this_fiber::SleepUntil(tp); });
  });
}

TEST_P(TimedWaitLimitsTest, TimedMutexes) {
  FiberTimedMutex mutex;
  FiberRecursiveTimedMutex recursive;
  auto try_lock = [](auto& m, auto limit) {
    return Dispatch(
        limit, [&](auto d) { return m.try_lock_for(d); },
        [&](auto tp) { return m.try_lock_until(tp); });
  };
  {
    std::unique_lock<FiberTimedMutex> held(mutex);
    std::unique_lock<FiberRecursiveTimedMutex> held_recursive(recursive);
    OnWaiterSide([&] {
      ForEachAtOnce([&](auto limit) {
        EXPECT_FALSE(try_lock(mutex, limit));
        EXPECT_FALSE(try_lock(recursive, limit));
      });
    });
  }
  // The holder is a fiber that unlocks once the waiter is about to wait (a
  // recursive mutex is unlocked by its owner only).
  ForEachUnbounded([&](auto limit) {
    std::atomic<bool> held{false};
    std::atomic<bool> about_to_wait{false};
    Actor holder(Side::kFiber, [&] {
      mutex.lock();
      recursive.lock();
      held = true;
      WaitOrAbort(PollUntil([&] { return about_to_wait.load(); }, "the waiter"));
      for (int i = 0; i != 5; ++i) this_fiber::Yield();
      mutex.unlock();
      recursive.unlock();
    });
    Actor waiting(waiter(), [&] {
      WaitOrAbort(PollUntil([&] { return held.load(); }, "the holder"));
      about_to_wait = true;
      EXPECT_TRUE(try_lock(mutex, limit));
      EXPECT_TRUE(try_lock(recursive, limit));
      EXPECT_TRUE(try_lock(recursive, limit)) << "the owner relocks at once";
      mutex.unlock();
      recursive.unlock();
      recursive.unlock();
    });
  });
}

TEST_P(TimedWaitLimitsTest, ConditionVariable) {
  FiberMutex mutex;
  FiberConditionVariable cv;
  bool ready = false;
  auto wait = [&](auto limit) {
    std::unique_lock<FiberMutex> lock(mutex);
    return Dispatch(
        limit,
        [&](auto d) {
          const bool no_pred = cv.wait_for(lock, d) == std::cv_status::no_timeout;
          return cv.wait_for(lock, d, [&] { return ready; }) || no_pred;
        },
        [&](auto tp) {
          const bool no_pred = cv.wait_until(lock, tp) == std::cv_status::no_timeout;
          return cv.wait_until(lock, tp, [&] { return ready; }) || no_pred;
        });
  };
  OnWaiterSide([&] { ForEachAtOnce([&](auto limit) { EXPECT_FALSE(wait(limit)); }); });
  ForEachUnbounded([&](auto limit) {
    ready = false;
    ExpectWaitsUntilReleased(
        [&] {
          std::unique_lock<FiberMutex> lock(mutex);
          return Dispatch(
              limit, [&](auto d) { return cv.wait_for(lock, d, [&] { return ready; }); },
              [&](auto tp) { return cv.wait_until(lock, tp, [&] { return ready; }); });
        },
        [&] {
          std::lock_guard<FiberMutex> lock(mutex);
          ready = true;
          cv.notify_all();
        });
  });
}

TEST_P(TimedWaitLimitsTest, LatchEventAndSemaphore) {
  OnWaiterSide([&] {
    FiberLatch latch(1);
    FiberEvent event;
    FiberSemaphore semaphore(0);
    ForEachAtOnceDuration([&](auto d) {
      EXPECT_FALSE(latch.WaitFor(d));
      EXPECT_FALSE(event.WaitFor(d));
      EXPECT_FALSE(semaphore.TryAcquireFor(d));
    });
    ForEachPastTimePoint([&](auto tp) { EXPECT_FALSE(latch.WaitUntil(tp)); });
  });
  ForEachUnboundedDuration([&](auto d) {
    FiberLatch latch(1);
    FiberEvent event;
    FiberSemaphore semaphore(0);
    ExpectWaitsUntilReleased(
        [&] {
          return latch.WaitFor(d) && event.WaitFor(d) && semaphore.TryAcquireFor(d);
        },
        [&] {
          latch.CountDown();
          event.Set();
          semaphore.Release();
        });
  });
  ForEachUnboundedTimePoint([&](auto tp) {
    FiberLatch latch(1);
    ExpectWaitsUntilReleased([&] { return latch.WaitUntil(tp); },
                             [&] { latch.CountDown(); });
  });
}

TEST_P(TimedWaitLimitsTest, BlockingTryGet) {
  OnWaiterSide([&] {
    ForEachAtOnce([&](auto limit) {
      Promise<int> promise;
      EXPECT_FALSE(BlockingTryGet(promise.GetFuture(), limit).has_value());
    });
  });
  ForEachUnbounded([&](auto limit) {
    Promise<int> promise;
    Future<int> future = promise.GetFuture();
    ExpectWaitsUntilReleased(
        [&] {
          auto value = BlockingTryGet(std::move(future), limit);
          return value.has_value() && *value == 5;
        },
        [&] { promise.SetValue(5); });
  });
}

TEST_P(TimedWaitLimitsTest, Channel) {
  FiberChannel<int> full(1);
  ASSERT_TRUE(full.TryPush(0));
  FiberChannel<int> empty(1);
  auto push = [&](auto limit) {
    return Dispatch(
        limit, [&](auto d) { return full.PushFor(1, d); },
        [&](auto tp) { return full.PushUntil(1, tp); });
  };
  auto pop = [&](auto limit) {
    return Dispatch(
        limit, [&](auto d) { return empty.PopFor(d); },
        [&](auto tp) { return empty.PopUntil(tp); });
  };
  OnWaiterSide([&] {
    ForEachAtOnce([&](auto limit) {
      EXPECT_EQ(push(limit), ChannelStatus::kTimedOut);
      const auto popped = pop(limit);
      EXPECT_EQ(popped.status, ChannelStatus::kTimedOut);
      EXPECT_FALSE(popped.value.has_value());
    });
  });
  ForEachUnbounded([&](auto limit) {
    ExpectWaitsUntilReleased(
        [&] {
          const auto popped = pop(limit);
          return popped.status == ChannelStatus::kOk && popped.value == 9;
        },
        [&] { EXPECT_TRUE(empty.Push(9)); });
    ExpectWaitsUntilReleased([&] { return push(limit) == ChannelStatus::kOk; },
                             [&] { EXPECT_TRUE(full.Pop().has_value()); });
  });
}

INSTANTIATE_TEST_SUITE_P(Waiters, TimedWaitLimitsTest,
                         ::testing::Values(Side::kFiber, Side::kThread),
                         [](const ::testing::TestParamInfo<Side>& info) {
                           return std::string(testing::SideName(info.param)) + "Waits";
                         });

// Timers take any start and period without overflow: a start at min() fires
// at once and keeps its schedule, one at max() never comes, a period of
// max() is one run a century.
TEST(TimerLimits, ExtremeStartsAndPeriodsDoNotOverflow) {
  Runtime runtime(testing::OptionsWithWorkers(2));
  std::atomic<int> runs{0};
  const TimerId from_the_dawn_of_time =
      SetTimer(steady_clock::time_point::min(), milliseconds(1), [&] { ++runs; });
  WaitOrAbort(PollUntil([&] { return runs.load() >= 3; }, "three periodic runs"));
  KillTimer(from_the_dawn_of_time);

  std::atomic<bool> ran{false};
  const TimerId never = SetTimer(steady_clock::time_point::max(), [&] { ran = true; });
  std::atomic<int> long_period_runs{0};
  const TimerId once =
      SetTimer(steady_clock::now(), hours::max(), [&] { ++long_period_runs; });
  const TimerId once_too =
      SetTimer(steady_clock::now(), duration<double>(kInf), [&] { ++long_period_runs; });
  WaitOrAbort(PollUntil([&] { return long_period_runs.load() == 2; }, "the first runs"));
  KillTimer(once);
  KillTimer(once_too);
  KillTimer(never);
  EXPECT_FALSE(ran.load());
  EXPECT_EQ(long_period_runs.load(), 2);
}

TEST(TimerLimits, NonPositivePeriodsAreRejected) {
  Runtime runtime(testing::OptionsWithWorkers(1));
  const auto now = steady_clock::now();
  EXPECT_THROW(SetTimer(now, nanoseconds::zero(), [] {}), std::invalid_argument);
  EXPECT_THROW(SetTimer(now, hours::min(), [] {}), std::invalid_argument);
  EXPECT_THROW(SetTimer(now, duration<double>(kNaN), [] {}), std::invalid_argument);
  EXPECT_THROW(SetTimer(now, duration<double>(-kInf), [] {}), std::invalid_argument);
}

}  // namespace
}  // namespace weft
