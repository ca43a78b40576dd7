// Conversions of user durations and time points of any clock into steady_clock
// deadlines, saturating instead of overflowing.
#ifndef WEFT_RUNTIME_DETAIL_DEADLINE_H_
#define WEFT_RUNTIME_DETAIL_DEADLINE_H_

#include <chrono>

namespace weft::detail {

using SteadyTime = std::chrono::steady_clock::time_point;

// Deadlines further away than this are treated as this far: a century never
// passes in a running process, and the clamp keeps every arithmetic on
// deadlines far from overflow.
inline constexpr std::chrono::hours kFarFuture{24 * 365 * 100};

// now + d, rounded up to the clock's resolution; now for zero or negative d,
// now + kFarFuture for anything longer than that.
template <class Rep, class Period>
SteadyTime DeadlineAfter(const std::chrono::duration<Rep, Period>& d) {
  const SteadyTime now = std::chrono::steady_clock::now();
  if (d <= d.zero()) return now;
  if (std::chrono::duration<double>(d) >= std::chrono::duration<double>(kFarFuture)) {
    return now + kFarFuture;
  }
  return now + std::chrono::ceil<std::chrono::steady_clock::duration>(d);
}

// The steady_clock deadline equivalent to `at` on `Clock`. Other clocks are read
// once and converted by their distance from now, so a later jump of, say, the
// system clock does not move the deadline.
template <class Clock, class Duration>
SteadyTime ToSteadyDeadline(const std::chrono::time_point<Clock, Duration>& at) {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    const SteadyTime now = std::chrono::steady_clock::now();
    if (at <= now) return now;
    return DeadlineAfter(at - now);
  } else {
    return DeadlineAfter(at - Clock::now());
  }
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_DEADLINE_H_
