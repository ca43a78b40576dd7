// The conversions behind every timed wait: any clock, any representation,
// extreme values included, without overflow (this file runs under UBSan with
// float-cast-overflow checks in the address-sanitizer build).
#include "runtime/detail/deadline.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ratio>

#include "gtest/gtest.h"

namespace weft::detail {
namespace {

using namespace std::chrono;

// `deadline` is "now": no later than the clock after the call.
::testing::AssertionResult IsNow(SteadyTime deadline, SteadyTime before) {
  const SteadyTime after = steady_clock::now();
  if (deadline >= before && deadline <= after) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "deadline is " << (deadline - before).count()
                                       << " ticks after the call began";
}

template <class D>
void ExpectAtOnce(const D& d, const char* what) {
  const SteadyTime before = steady_clock::now();
  EXPECT_TRUE(IsNow(DeadlineAfter(d), before)) << what;
}

template <class D>
void ExpectNoDeadline(const D& d, const char* what) {
  EXPECT_EQ(DeadlineAfter(d), kNoDeadline) << what;
}

TEST(DeadlineAfter, ZeroNegativeMinimalAndNaNDurationsAreNow) {
  ExpectAtOnce(nanoseconds::zero(), "zero");
  ExpectAtOnce(nanoseconds(-1), "-1 ns");
  ExpectAtOnce(nanoseconds::min(), "nanoseconds::min()");
  ExpectAtOnce(hours::min(), "hours::min()");
  ExpectAtOnce(duration<std::int8_t>::min(), "int8_t seconds min()");
  ExpectAtOnce(duration<std::uint8_t>::zero(), "uint8_t seconds zero (its min())");
  ExpectAtOnce(duration<double>::min(), "double min() (its lowest)");
  ExpectAtOnce(duration<double>(-std::numeric_limits<double>::infinity()), "-inf");
  ExpectAtOnce(duration<double>(std::numeric_limits<double>::quiet_NaN()), "NaN");
  ExpectAtOnce(duration<float>::min(), "float min()");
  ExpectAtOnce(duration<long double, std::milli>(-0.5L), "-0.5 ms as long double");
}

TEST(DeadlineAfter, MaximalInfiniteAndCenturyLongDurationsAreNoDeadline) {
  ExpectNoDeadline(nanoseconds::max(), "nanoseconds::max()");
  ExpectNoDeadline(hours::max(), "hours::max()");
  ExpectNoDeadline(duration<std::int8_t>::max(), "int8_t seconds max()");
  ExpectNoDeadline(duration<std::uint64_t, std::milli>::max(), "uint64_t ms max()");
  ExpectNoDeadline(duration<double>::max(), "double max()");
  ExpectNoDeadline(duration<float>::max(), "float max()");
  ExpectNoDeadline(duration<double>(std::numeric_limits<double>::infinity()), "+inf");
  ExpectNoDeadline(hours(24 * 365 * 101), "101 years");
  ExpectNoDeadline(duration<std::int64_t, std::ratio<86400 * 365>>(150), "150 years");
}

TEST(DeadlineAfter, FiniteDurationsAreRoundedUpToTheClocksTicks) {
  struct Case {
    SteadyDuration expected;
    SteadyTime deadline;
    SteadyTime before, after;
  };
  auto measure = [](auto d, SteadyDuration expected) {
    Case c;
    c.expected = expected;
    c.before = steady_clock::now();
    c.deadline = DeadlineAfter(d);
    c.after = steady_clock::now();
    return c;
  };
  const Case cases[] = {
      measure(nanoseconds(1), nanoseconds(1)),
      measure(duration<std::int64_t, std::ratio<1, 3>>(1), nanoseconds(333'333'334)),
      measure(duration<double, std::micro>(0.5), nanoseconds(500)),
      measure(duration<float, std::nano>(0.1f), nanoseconds(1)),
      measure(duration<std::int8_t>(127 - 1), seconds(126)),
      measure(hours(24), hours(24)),
      measure(duration<std::uint8_t, std::milli>(254), milliseconds(254)),
  };
  for (const Case& c : cases) {
    EXPECT_GE(c.deadline - c.before, c.expected);
    EXPECT_LE(c.deadline - c.after, c.expected);
  }
}

TEST(ToSteadyDeadline, PastAndMinimalTimePointsOfAnyClockAreNow) {
  const SteadyTime before = steady_clock::now();
  EXPECT_TRUE(IsNow(ToSteadyDeadline(steady_clock::time_point::min()), before));
  EXPECT_TRUE(IsNow(ToSteadyDeadline(system_clock::time_point::min()), before));
  EXPECT_TRUE(IsNow(ToSteadyDeadline(system_clock::now() - hours(1)), before));
  EXPECT_TRUE(IsNow(ToSteadyDeadline(time_point<system_clock, hours>::min()), before));
  using Int8Seconds = time_point<system_clock, duration<std::int8_t>>;
  EXPECT_TRUE(IsNow(ToSteadyDeadline(Int8Seconds::min()), before));
  // 1970 plus 100 seconds: representable, and long past.
  EXPECT_TRUE(IsNow(ToSteadyDeadline(Int8Seconds(duration<std::int8_t>(100))), before));
  using DoubleSteady = time_point<steady_clock, duration<double>>;
  EXPECT_TRUE(IsNow(ToSteadyDeadline(DoubleSteady::min()), before));
  EXPECT_TRUE(IsNow(ToSteadyDeadline(DoubleSteady(
                        duration<double>(-std::numeric_limits<double>::infinity()))),
                    before));
  EXPECT_TRUE(IsNow(ToSteadyDeadline(DoubleSteady(
                        duration<double>(std::numeric_limits<double>::quiet_NaN()))),
                    before));
  EXPECT_TRUE(
      IsNow(ToSteadyDeadline(time_point<system_clock, duration<float>>::min()), before));
}

TEST(ToSteadyDeadline, MaximalAndFarTimePointsOfAnyClockAreNoDeadline) {
  EXPECT_EQ(ToSteadyDeadline(steady_clock::time_point::max()), kNoDeadline);
  EXPECT_EQ(ToSteadyDeadline(system_clock::time_point::max()), kNoDeadline);
  EXPECT_EQ(ToSteadyDeadline(time_point<system_clock, hours>::max()), kNoDeadline);
  // Its max() is 1970 plus 127 seconds, but max() means "no deadline".
  EXPECT_EQ(ToSteadyDeadline(time_point<system_clock, duration<std::int8_t>>::max()),
            kNoDeadline);
  using DoubleSteady = time_point<steady_clock, duration<double>>;
  EXPECT_EQ(ToSteadyDeadline(DoubleSteady::max()), kNoDeadline);
  EXPECT_EQ(ToSteadyDeadline(
                DoubleSteady(duration<double>(std::numeric_limits<double>::infinity()))),
            kNoDeadline);
  EXPECT_EQ(ToSteadyDeadline(time_point<system_clock, duration<float>>::max()),
            kNoDeadline);
  EXPECT_EQ(ToSteadyDeadline(system_clock::now() + hours(24 * 365 * 101)), kNoDeadline);
}

TEST(ToSteadyDeadline, OtherClocksConvertByTheirDistanceFromNow) {
  const SteadyTime before = steady_clock::now();
  const SteadyTime deadline = ToSteadyDeadline(system_clock::now() + hours(1));
  const SteadyTime after = steady_clock::now();
  // The two clocks are read a moment apart; a second of slack is plenty.
  EXPECT_GE(deadline, before + hours(1) - seconds(1));
  EXPECT_LE(deadline, after + hours(1) + seconds(1));

  const SteadyTime in_an_hour = steady_clock::now() + hours(1);
  EXPECT_EQ(ToSteadyDeadline(in_an_hour), in_an_hour) << "steady time points are exact";
  const auto coarse = time_point_cast<hours>(steady_clock::now()) + hours(2);
  EXPECT_EQ(ToSteadyDeadline(coarse), SteadyTime(coarse));
}

TEST(ClampedDuration, IsPositiveAndAtMostACentury) {
  EXPECT_EQ(ClampedDuration(nanoseconds(-1)), SteadyDuration::zero());
  EXPECT_EQ(ClampedDuration(duration<double>(std::numeric_limits<double>::quiet_NaN())),
            SteadyDuration::zero());
  EXPECT_EQ(ClampedDuration(nanoseconds(1)), nanoseconds(1));
  EXPECT_EQ(ClampedDuration(hours::max()), SteadyDuration(kFarFuture));
  EXPECT_EQ(ClampedDuration(duration<double>::max()), SteadyDuration(kFarFuture));
}

}  // namespace
}  // namespace weft::detail
