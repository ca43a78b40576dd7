// Timers whose callbacks run in fibers.
//
//   weft::TimerId id = weft::SetTimer(std::chrono::steady_clock::now() + 100ms,
//                                     [] { Flush(); });
//   weft::KillTimer(id);  // or DetachTimer(id) to let it fire unattended
//
//   weft::ScopedTimer heartbeat(weft::SetTimer(start, 1s, [] { SendHeartbeat(); }));
//
// Each timer is served by the TimerWorker of one scheduling group (the caller's,
// or one near the calling thread) and its callback runs in a new fiber of that
// group, never on the timer thread, so a callback may block, sleep, lock
// mutexes and start fibers.
//
// Periodic timers never overlap their own runs: the next run is due one period
// after the previous due time; if a run ends after that, the missed ticks are
// skipped (no burst of catch-up runs) and the timer stays on its original
// schedule (start + k * period).
//
// Ownership: SetTimer returns an id that must be passed to exactly one of
// KillTimer or DetachTimer (ScopedTimer does it for you). Using an id after that
// is undefined behaviour, like a double free.
//
// Shutdown: TerminateRuntime() cancels every timer that is not yet running;
// those callbacks never run. A callback that is running is a fiber like any
// other, and termination waits for it. Timers set while the runtime terminates
// never run. Ids stay valid across termination: kill or detach them as usual.
//
// All functions are thread-safe and may be called from fibers and plain
// threads. An exception escaping a callback terminates the process, as from any
// fiber.
#ifndef WEFT_RUNTIME_TIMER_TIMER_H_
#define WEFT_RUNTIME_TIMER_TIMER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include "runtime/detail/deadline.h"

namespace weft {

// Identifies a timer between SetTimer and KillTimer / DetachTimer. Never 0.
using TimerId = std::uint64_t;

namespace detail {

struct TimerCallback {
  virtual ~TimerCallback() = default;
  virtual void Run() = 0;
};

template <class F>
struct TimerCallbackOf final : TimerCallback {
  explicit TimerCallbackOf(F&& f) : f(std::move(f)) {}
  void Run() override { f(); }
  F f;
};

// `period` zero: one-shot. `at` may be any time point (it is clamped to a
// century around now). Throws std::system_error when the runtime is not
// running.
TimerId SetTimerImpl(SteadyTime at, SteadyDuration period,
                     std::unique_ptr<TimerCallback> callback);

// Throws std::invalid_argument unless `period` is positive.
[[noreturn]] void ThrowNonPositivePeriod();

template <class F>
std::unique_ptr<TimerCallback> MakeTimerCallback(F&& f) {
  using Decayed = std::decay_t<F>;
  static_assert(std::is_invocable_v<Decayed&>, "a timer callback takes no arguments");
  return std::make_unique<TimerCallbackOf<Decayed>>(Decayed(std::forward<F>(f)));
}

}  // namespace detail

// Runs `callback` once, in a fiber, at `at` (or as soon as possible if `at` is
// past, `time_point::min()` included; `time_point::max()` never comes). Throws
// std::system_error if the runtime is not running.
template <class F>
TimerId SetTimer(std::chrono::steady_clock::time_point at, F&& callback) {
  return detail::SetTimerImpl(at, detail::SteadyDuration::zero(),
                              detail::MakeTimerCallback(std::forward<F>(callback)));
}

// Runs `callback` at `at` and then every `period` (see the file comment for
// runs that take longer than the period). `period` may be of any
// representation and must be positive (not NaN); otherwise throws
// std::invalid_argument. Periods of a century or more are a century.
template <class Rep, class Period, class F>
TimerId SetTimer(std::chrono::steady_clock::time_point at,
                 std::chrono::duration<Rep, Period> period, F&& callback) {
  if (!(period > period.zero())) detail::ThrowNonPositivePeriod();
  return detail::SetTimerImpl(at, detail::ClampedDuration(period),
                              detail::MakeTimerCallback(std::forward<F>(callback)));
}

// Cancels the timer and releases `id`. When KillTimer returns, the callback is
// not running, will never run again, and has been destroyed with its captures,
// so the caller may free whatever the callback used. Called from the timer's
// own callback, it does not wait for that run (it would wait for itself) and
// returns at once; later runs are still cancelled, and the callback is
// destroyed when its run ends. Aborts with a message for id 0.
void KillTimer(TimerId id);

// Releases `id` and lets the timer run unattended: a one-shot timer fires once,
// a periodic one until the runtime terminates. Aborts with a message for id 0.
void DetachTimer(TimerId id);

// Owns a timer: kills it on destruction (waiting for a running callback, see
// KillTimer). Movable, not copyable.
class ScopedTimer {
 public:
  ScopedTimer() = default;
  explicit ScopedTimer(TimerId id) : id_(id) {}
  ScopedTimer(ScopedTimer&& other) noexcept : id_(std::exchange(other.id_, 0)) {}
  ScopedTimer& operator=(ScopedTimer&& other) noexcept {
    if (this != &other) {
      Reset();
      id_ = std::exchange(other.id_, 0);
    }
    return *this;
  }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;
  ~ScopedTimer() { Reset(); }

  // Kills the owned timer, if any.
  void Reset() {
    if (id_ != 0) KillTimer(std::exchange(id_, 0));
  }
  // Gives up ownership without killing the timer.
  TimerId Release() { return std::exchange(id_, 0); }
  TimerId id() const { return id_; }

 private:
  TimerId id_ = 0;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_TIMER_TIMER_H_
