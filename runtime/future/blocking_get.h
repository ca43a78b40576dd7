// BlockingGet / BlockingTryGet: wait for a future from a fiber (which suspends; its
// worker runs other fibers meanwhile) or from a plain thread (which blocks on a
// futex).
//
//   weft::Future<int> f = weft::Async([] { return Compute(); });
//   int v = weft::BlockingGet(std::move(f));   // rethrows Compute()'s exception
//
//   if (auto v = weft::BlockingTryGet(std::move(g), std::chrono::milliseconds(5))) {
//     Use(*v);
//   }
//
//   weft::SharedFuture<Config> shared = LoadConfig().Share();
//   const Config& c = weft::BlockingGet(shared);   // any number of consumers
#ifndef WEFT_RUNTIME_FUTURE_BLOCKING_GET_H_
#define WEFT_RUNTIME_FUTURE_BLOCKING_GET_H_

#include <chrono>
#include <optional>
#include <type_traits>

#include "runtime/detail/deadline.h"
#include "runtime/future/detail/future_waiter.h"
#include "runtime/future/future.h"

namespace weft {

namespace detail {

template <class T>
using TryGetResult = std::conditional_t<std::is_void_v<T>, bool, std::optional<T>>;

template <class T>
using SharedGetResult =
    std::conditional_t<std::is_void_v<T>, void, std::add_lvalue_reference_t<const T>>;

// BlockingTryGet with a steady_clock deadline.
template <class T>
TryGetResult<T> TryGetUntil(Future<T>& future, SteadyTime deadline) {
  SharedState<T>* state = FutureAccess::ReleaseValid(future, "weft::BlockingTryGet");
  auto owner = FutureAccess::Adopt(state);  // drops the state on return
  FutureWaiter waiter;
  const bool ready = waiter.WaitUntil(*state, deadline);
  if constexpr (std::is_void_v<T>) {
    if (ready) state->TakeValue();
    return ready;
  } else {
    if (!ready) return std::nullopt;
    return std::optional<T>(state->TakeValue());
  }
}

}  // namespace detail

// Waits until `future` is ready, then returns its value or rethrows its exception
// (the original exception object). Works from fibers and plain threads. Aborts on
// an invalid future.
template <class T>
T BlockingGet(Future<T> future) {
  detail::SharedState<T>* state =
      detail::FutureAccess::ReleaseValid(future, "weft::BlockingGet");
  auto owner = detail::FutureAccess::Adopt(state);  // drops the state on return
  if (!state->IsReady()) {
    detail::FutureWaiter waiter;
    waiter.Wait(*state);
  }
  if constexpr (std::is_void_v<T>) {
    state->TakeValue();
  } else {
    return state->TakeValue();
  }
}

// BlockingGet that gives up after `timeout` (zero or negative: only checks).
// Returns the value (for Future<void>: true), or std::nullopt (false) on
// timeout. On timeout the future is dropped: its value, when it arrives, is
// destroyed. An exception stored in the future is rethrown.
template <class T, class Rep, class Period>
detail::TryGetResult<T> BlockingTryGet(
    Future<T> future, const std::chrono::duration<Rep, Period>& timeout) {
  return detail::TryGetUntil(future, detail::DeadlineAfter(timeout));
}

// BlockingTryGet that gives up at `deadline`, a time point of any clock; waits
// are measured on steady_clock, so a clock other than steady_clock is read once
// and the deadline taken as that distance from now (a later jump of, say, the
// system clock does not move it). A deadline already past only checks; one more
// than a century away, time_point::max() included, is taken as a century, i.e.
// waits until the value arrives. Returns and rethrows as the duration form.
template <class T, class Clock, class Duration>
detail::TryGetResult<T> BlockingTryGet(
    Future<T> future, const std::chrono::time_point<Clock, Duration>& deadline) {
  return detail::TryGetUntil(future, detail::ToSteadyDeadline(deadline));
}

// Waits until `future` is ready, then returns a reference to its value (nothing
// for SharedFuture<void>) or rethrows its exception — the same exception object,
// on every call and to every consumer. Any number of fibers and plain threads may
// call it at once, on one object or on copies. Does not consume anything.
//
// The reference is to the one value all copies share: it stays valid as long as
// any copy of this SharedFuture (or a Then attached to it that has not yet run)
// lives, so keep a copy for as long as the reference is used. Aborts on an
// invalid shared future.
template <class T>
detail::SharedGetResult<T> BlockingGet(const SharedFuture<T>& future) {
  detail::SharedFutureState<T>& state =
      detail::SharedFutureAccess::StateOf(future, "weft::BlockingGet");
  state.Wait();
  if (state.exception()) std::rethrow_exception(state.exception());
  if constexpr (!std::is_void_v<T>) return state.value();
}

}  // namespace weft

#endif  // WEFT_RUNTIME_FUTURE_BLOCKING_GET_H_
