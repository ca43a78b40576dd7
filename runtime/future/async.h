// Async: run a callable on a new fiber and get its result as a future.
//
//   weft::Future<Reply> reply = weft::Async([&] { return stub.Call(request); });
//   ...                                             // overlap other work
//   Reply r = weft::BlockingGet(std::move(reply));
#ifndef WEFT_RUNTIME_FUTURE_ASYNC_H_
#define WEFT_RUNTIME_FUTURE_ASYNC_H_

#include <type_traits>
#include <utility>

#include "runtime/fiber.h"
#include "runtime/future/future.h"

namespace weft {

// Starts a detached fiber with `attrs` that runs `f` (a callable taking no
// arguments) and returns the future of its result: what `f` returns (a returned
// Future<U> is flattened into Future<U>), or the exception it throws. Callable
// from fibers and plain threads; continuations attached to the result run on the
// new fiber when `f` returns. Throws, having started nothing, where Fiber's
// constructor would: std::system_error if the runtime is not running or no stack
// can be mapped, std::invalid_argument for a scheduling group out of range.
template <class F>
auto Async(const FiberAttributes& attrs, F&& f) {
  using Fn = std::decay_t<F>;
  static_assert(std::is_invocable_v<Fn>,
                "weft::Async needs a callable taking no arguments");
  using State = detail::CallState<void, Fn, detail::Input::kNothing>;
  auto* state = new State(nullptr, std::forward<F>(f));
  auto future = detail::FutureAccess::Adopt<typename State::Result>(state);
  // The fiber owns the state's second reference (the call in flight).
  auto body = [state] { detail::FireChain(state->Fire()); };
  int error = 0;
  detail::FiberEntity* fiber = nullptr;
  try {
    fiber = detail::PrepareFiber(attrs, body, &error);
  } catch (...) {
    state->DropReference();
    throw;
  }
  if (fiber == nullptr) {
    state->DropReference();
    detail::ThrowFiberCreationError(error);
  }
  detail::LaunchFiber(fiber, attrs, /*joinable=*/false);
  return future;
}

// Async with default FiberAttributes (the caller's nearest scheduling group).
template <class F>
auto Async(F&& f) {
  return Async(FiberAttributes{}, std::forward<F>(f));
}

}  // namespace weft

#endif  // WEFT_RUNTIME_FUTURE_ASYNC_H_
