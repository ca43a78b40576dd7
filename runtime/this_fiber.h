// Operations on the calling fiber. Each also works on a plain thread, where it
// acts on the thread.
#ifndef WEFT_RUNTIME_THIS_FIBER_H_
#define WEFT_RUNTIME_THIS_FIBER_H_

#include <chrono>
#include <cstdint>
#include <thread>

#include "runtime/detail/deadline.h"

namespace weft::detail {
// Suspends the calling fiber until `deadline` (its worker runs other fibers
// meanwhile), or blocks the calling plain thread.
void SleepUntilSteady(SteadyTime deadline);
}  // namespace weft::detail

namespace weft::this_fiber {

// Lets other ready fibers of the scheduling group run; the caller is queued
// behind them. Returns at once, without touching the run queue, when no other
// fiber is ready. On a plain thread: std::this_thread::yield().
void Yield();

// Suspends the calling fiber for at least `duration` without blocking its
// worker: the group's TimerWorker readies it when the time is up. Zero and
// negative durations (and NaN) return at once; `duration::max()` sleeps
// forever. On a plain thread: blocks the thread.
template <class Rep, class Period>
void SleepFor(const std::chrono::duration<Rep, Period>& duration) {
  detail::SleepUntilSteady(detail::DeadlineAfter(duration));
}

// Suspends the calling fiber until `deadline` (any clock and representation;
// other clocks than steady_clock are converted once, by their distance from
// now). A deadline in the past (or `time_point::min()`) returns at once;
// `time_point::max()` sleeps forever. On a plain thread: blocks the thread.
template <class Clock, class Duration>
void SleepUntil(const std::chrono::time_point<Clock, Duration>& deadline) {
  detail::SleepUntilSteady(detail::ToSteadyDeadline(deadline));
}

// A non-zero id, unique among live fibers (ids are never reused in a process).
// 0 on a plain thread.
std::uint64_t GetId();

}  // namespace weft::this_fiber

#endif  // WEFT_RUNTIME_THIS_FIBER_H_
