// WhenAll / WhenAny / WhenAnyWithoutException: one future for several.
//
//   // Future<std::tuple<User, Cart>>:
//   auto both = weft::WhenAll(Async(LoadUser), Async(LoadCart));
//   auto [user, cart] = weft::BlockingGet(std::move(both));
//
//   std::vector<weft::Future<Reply>> replicas = ...;
//   auto [index, reply] = weft::BlockingGet(weft::WhenAny(std::move(replicas)));
//
// All consume their input futures (each must be valid; an invalid one aborts).
// The result becomes ready on the fiber or thread that completes the deciding
// input, like any continuation (see future.h).
#ifndef WEFT_RUNTIME_FUTURE_WHEN_ALL_H_
#define WEFT_RUNTIME_FUTURE_WHEN_ALL_H_

#include <cstddef>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/future/detail/when_all_state.h"
#include "runtime/future/future.h"

namespace weft {

// A future of every input's value, in argument order, once all of them are ready:
// Future<std::tuple<...>> of the non-void value types (Future<void> if all are
// void). If any input failed, the result holds the exception of the first failed
// input in argument order — but only after every input is ready, so nothing the
// inputs reference is still in use when a waiter wakes.
template <class... Ts>
auto WhenAll(Future<Ts>... inputs) {
  static_assert(sizeof...(Ts) > 0, "weft::WhenAll() needs at least one future");
  using State = detail::WhenAllTupleState<Ts...>;
  auto* state = new State(inputs...);
  auto result = detail::FutureAccess::Adopt<detail::WhenAllTupleResult<Ts...>>(state);
  state->Start();
  return result;
}

// WhenAll over a vector: Future<std::vector<T>> in input order (Future<void> for
// T = void). Ready at once for an empty vector. Failures as for the variadic form.
template <class T>
Future<detail::WhenAllVectorResult<T>> WhenAll(std::vector<Future<T>> inputs) {
  if (inputs.empty()) {
    if constexpr (std::is_void_v<T>) {
      return MakeReadyFuture();
    } else {
      return MakeReadyFuture(std::vector<T>());
    }
  }
  auto* state = new detail::WhenAllVectorState<T>(inputs);
  auto result = detail::FutureAccess::Adopt<detail::WhenAllVectorResult<T>>(state);
  state->Start();
  return result;
}

// A future of the first input to become ready: Future<std::pair<std::size_t, T>>
// with its index and value (Future<std::size_t> for T = void), or that input's
// exception. Inputs that complete later are released as they do; nothing leaks.
// Throws std::invalid_argument for an empty vector, which could never complete.
template <class T>
Future<detail::WhenAnyResult<T>> WhenAny(std::vector<Future<T>> inputs) {
  if (inputs.empty()) {
    throw std::invalid_argument(
        "weft::WhenAny: the vector of futures is empty, so the result could never "
        "become ready; pass at least one future");
  }
  auto* state = new detail::WhenAnyState<T, detail::AnyOf::kFirstToComplete>(inputs);
  auto result = detail::FutureAccess::Adopt<detail::WhenAnyResult<T>>(state);
  state->Start();
  return result;
}

// WhenAny that waits for a success: the first input to complete with a value
// decides (Future<std::pair<std::size_t, T>>, or Future<std::size_t> for T =
// void), whatever inputs failed before it. Only if every input fails does the
// result fail, with the exception of the last input to fail (the one that
// completes it). Inputs that complete after the result are released as they do;
// nothing leaks. Throws std::invalid_argument for an empty vector.
template <class T>
Future<detail::WhenAnyResult<T>> WhenAnyWithoutException(std::vector<Future<T>> inputs) {
  if (inputs.empty()) {
    throw std::invalid_argument(
        "weft::WhenAnyWithoutException: the vector of futures is empty, so the result "
        "could never become ready; pass at least one future");
  }
  auto* state = new detail::WhenAnyState<T, detail::AnyOf::kFirstSuccess>(inputs);
  auto result = detail::FutureAccess::Adopt<detail::WhenAnyResult<T>>(state);
  state->Start();
  return result;
}

}  // namespace weft

#endif  // WEFT_RUNTIME_FUTURE_WHEN_ALL_H_
