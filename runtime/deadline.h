// weft::Deadline: when a call that may wait gives up. Every weft::io call takes
// one as its last argument.
//
//   weft::io::Read(fd, buf, n);                                  // no deadline
//   weft::io::Read(fd, buf, n, std::chrono::milliseconds(50));   // 50 ms from now
//   auto at = std::chrono::steady_clock::now() + std::chrono::seconds(2);
//   weft::io::Read(fd, buf, n, at);                              // a time point
//
// A duration is measured from the moment the Deadline is made (the call), so
// one Deadline made from a time point can bound several calls together.
// Durations of any representation work: zero, negative and NaN durations
// (and past time points) have passed already; duration::max(), infinity and
// time_point::max() mean "no deadline". A call whose deadline has passed
// still completes what it can do at once (data already there is still read).
#ifndef WEFT_RUNTIME_DEADLINE_H_
#define WEFT_RUNTIME_DEADLINE_H_

#include <chrono>

#include "runtime/detail/deadline.h"

namespace weft {

class Deadline {
 public:
  // No deadline.
  constexpr Deadline() noexcept = default;

  // `timeout` from now. Implicit, so that a call takes a duration directly.
  template <class Rep, class Period>
  Deadline(const std::chrono::duration<Rep, Period>& timeout)  // NOLINT(runtime/explicit)
      : at_(detail::DeadlineAfter(timeout)) {}

  // At `at` on the steady clock. Implicit, like the duration form.
  template <class Duration>
  Deadline(const std::chrono::time_point<std::chrono::steady_clock, Duration>&
               at)  // NOLINT(runtime/explicit)
      : at_(detail::ToSteadyDeadline(at)) {}

  static constexpr Deadline Never() noexcept { return Deadline(); }

  bool IsNever() const noexcept { return at_ == detail::kNoDeadline; }
  // The steady-clock instant; time_point::max() for Never().
  std::chrono::steady_clock::time_point TimePoint() const noexcept { return at_; }
  bool HasPassed() const {
    return !IsNever() && at_ <= std::chrono::steady_clock::now();
  }

 private:
  detail::SteadyTime at_ = detail::kNoDeadline;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_DEADLINE_H_
