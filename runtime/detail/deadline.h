// Conversions of user durations and time points of any clock and any
// representation into steady_clock deadlines, without overflow:
//
//   - zero, negative, NaN and past values, and `min()`, mean "now" (a timed wait
//     then only checks, and times out at once if not ready);
//   - `duration::max()`, `time_point::max()`, +infinity and anything a century
//     or more away mean "no deadline" (kNoDeadline): the wait ends only when it
//     is satisfied;
//   - everything else is rounded up to the clock's resolution, so a wait never
//     ends before the time asked for.
//
// Durations of integral representation are converted exactly (128-bit
// arithmetic), floating-point ones through long double.
#ifndef WEFT_RUNTIME_DETAIL_DEADLINE_H_
#define WEFT_RUNTIME_DETAIL_DEADLINE_H_

#include <chrono>
#include <cmath>
#include <ratio>
#include <type_traits>

namespace weft::detail {

using SteadyTime = std::chrono::steady_clock::time_point;
using SteadyDuration = std::chrono::steady_clock::duration;

// A deadline that never comes. Waits given it park without a timer.
inline constexpr SteadyTime kNoDeadline = SteadyTime::max();

// Anything at least this far away is treated as no deadline: a century never
// passes in a running process, and deadlines below it stay far from overflow
// in any arithmetic on them.
inline constexpr std::chrono::hours kFarFuture{24 * 365 * 100};

namespace deadline_internal {

inline constexpr SteadyDuration::rep kFarTicks =
    std::chrono::duration_cast<SteadyDuration>(kFarFuture).count();

// The steady_clock ticks of `d` (> 0), rounded up; kFarTicks or more means
// "no deadline".
template <class Rep, class Period>
SteadyDuration::rep PositiveTicks(const std::chrono::duration<Rep, Period>& d) {
  using Ratio = std::ratio_divide<Period, SteadyDuration::period>;
  if constexpr (std::is_floating_point_v<Rep>) {
    const long double ticks = std::ceil(static_cast<long double>(d.count()) *
                                        static_cast<long double>(Ratio::num) /
                                        static_cast<long double>(Ratio::den));
    // Also true for +infinity.
    if (!(ticks < static_cast<long double>(kFarTicks))) return kFarTicks;
    return static_cast<SteadyDuration::rep>(ticks);
  } else {
    static_assert(std::is_integral_v<Rep>,
                  "weft timed waits take durations of arithmetic representation");
    // count < 2^64 and num < 2^63: the product fits in 128 bits.
    using Wide = unsigned __int128;
    const Wide product = static_cast<Wide>(d.count()) * static_cast<Wide>(Ratio::num);
    const Wide den = static_cast<Wide>(Ratio::den);
    const Wide ticks = product / den + (product % den != 0 ? 1 : 0);
    if (ticks >= static_cast<Wide>(kFarTicks)) return kFarTicks;
    return static_cast<SteadyDuration::rep>(ticks);
  }
}

// `d` in seconds, for comparing time points of any representation.
template <class Rep, class Period>
long double Seconds(const std::chrono::duration<Rep, Period>& d) {
  return static_cast<long double>(d.count()) * static_cast<long double>(Period::num) /
         static_cast<long double>(Period::den);
}

}  // namespace deadline_internal

// `d` from now as a steady_clock deadline (see the file comment).
template <class Rep, class Period>
SteadyTime DeadlineAfter(const std::chrono::duration<Rep, Period>& d) {
  using Duration = std::chrono::duration<Rep, Period>;
  if (d == Duration::max()) return kNoDeadline;
  const SteadyTime now = std::chrono::steady_clock::now();
  if (!(d > Duration::zero())) return now;  // also NaN
  const SteadyDuration::rep ticks = deadline_internal::PositiveTicks(d);
  if (ticks >= deadline_internal::kFarTicks) return kNoDeadline;
  return now + SteadyDuration(ticks);
}

// The steady_clock deadline equivalent to `at` on `Clock` (see the file
// comment). Other clocks are read once and converted by their distance from
// now, so a later jump of, say, the system clock does not move the deadline.
template <class Clock, class Duration>
SteadyTime ToSteadyDeadline(const std::chrono::time_point<Clock, Duration>& at) {
  using TimePoint = std::chrono::time_point<Clock, Duration>;
  if (at == TimePoint::max()) return kNoDeadline;
  const typename Clock::time_point clock_now = Clock::now();
  SteadyTime now;
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    now = clock_now;
  } else {
    now = std::chrono::steady_clock::now();
  }
  // Compared in seconds first: subtracting time points of different
  // representations (hours, int8_t seconds, floats) may overflow or be
  // undefined for far values.
  const long double ahead = deadline_internal::Seconds(at.time_since_epoch()) -
                            deadline_internal::Seconds(clock_now.time_since_epoch());
  if (!(ahead > 0)) return now;  // also NaN
  if (!(ahead < deadline_internal::Seconds(kFarFuture))) return kNoDeadline;
  // Within a century of now: the exact difference is representable.
  const SteadyDuration::rep ticks = deadline_internal::PositiveTicks(at - clock_now);
  if (ticks >= deadline_internal::kFarTicks) return kNoDeadline;
  return now + SteadyDuration(ticks);
}

// `d` as a positive steady_clock duration of at most kFarFuture (zero for zero,
// negative and NaN), for periods.
template <class Rep, class Period>
SteadyDuration ClampedDuration(const std::chrono::duration<Rep, Period>& d) {
  using Duration = std::chrono::duration<Rep, Period>;
  if (!(d > Duration::zero())) return SteadyDuration::zero();
  return SteadyDuration(deadline_internal::PositiveTicks(d));
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_DEADLINE_H_
