// CallState: the shared state of a future whose value a callable computes — the
// result of Future::Then and SharedFuture::Then (the callable runs when the input
// is ready) and of Async (it runs on a new fiber). The state holds the callable,
// so a Then step allocates exactly one object. Internal: included by
// runtime/future/future.h.
#ifndef WEFT_RUNTIME_FUTURE_DETAIL_CALL_STATE_H_
#define WEFT_RUNTIME_FUTURE_DETAIL_CALL_STATE_H_

#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "runtime/future/detail/shared_state.h"

namespace weft::detail {

// What a callable is given.
enum class Input {
  kValue,        // the input's value (nothing for void); skipped on an exception
  kWholeFuture,  // the ready input future itself
  kNothing,      // no input at all (Async)
};

// How a CallState reads a Future<T> input: it owns the only consumer's
// reference, so it moves the value out, and the whole-future form hands over a
// Future<T>. (SharedFutureInput in shared_future.h reads a SharedFuture's.)
template <class T>
struct FutureInput {
  using State = SharedState<T>;
  using Whole = Future<T>;
  using ValueArg = T;  // what the value form is invoked with
  // What a CallState on such an input is, for the input to fire it.
  using Listener = Continuation;

  static Stored<T>&& Value(State& state) noexcept { return std::move(state.value()); }
  static Whole Adopt(State* state) noexcept { return FutureAccess::Adopt(state); }
};

// Then's choice for a callable `Fn` on an input read through `Access`: the value
// if Fn accepts it, otherwise the whole future.
template <class T, class Fn, class Access = FutureInput<T>>
constexpr Input ChooseInput() {
  constexpr bool kTakesValue = [] {
    if constexpr (std::is_void_v<T>) {
      return std::is_invocable_v<Fn>;
    } else {
      return std::is_invocable_v<Fn, typename Access::ValueArg>;
    }
  }();
  static_assert(kTakesValue || std::is_invocable_v<Fn, typename Access::Whole>,
                "Then needs a callable taking the value (T for Future<T>, const T& for "
                "SharedFuture<T>, nothing for void) or taking the future itself");
  return kTakesValue ? Input::kValue : Input::kWholeFuture;
}

template <class T, class Fn, Input kInput, class Access>
struct CallResult {
  using type = std::invoke_result_t<Fn, typename Access::ValueArg>;
};
template <class Fn, class Access>
struct CallResult<void, Fn, Input::kValue, Access> {
  using type = std::invoke_result_t<Fn>;
};
template <class T, class Fn, class Access>
struct CallResult<T, Fn, Input::kWholeFuture, Access> {
  using type = std::invoke_result_t<Fn, typename Access::Whole>;
};
template <class T, class Fn, class Access>
struct CallResult<T, Fn, Input::kNothing, Access> {
  using type = std::invoke_result_t<Fn>;
};

// Called once: by the input's continuation (Then) or by the fiber (Async).
// References: one for the result future, one for the call in flight, dropped when
// the result is published. The call keeps a reference to its input until it has
// read it.
template <class T, class Fn, Input kInput, class Access = FutureInput<T>>
class CallState final
    : public SharedState<
          typename UnwrapFuture<typename CallResult<T, Fn, kInput, Access>::type>::type>,
      public Access::Listener {
  using Raw = typename CallResult<T, Fn, kInput, Access>::type;
  using InputState = typename Access::State;
  static constexpr bool kFlattens = IsFuture<Raw>::value;

 public:
  using Result = typename UnwrapFuture<Raw>::type;

  template <class F>
  CallState(InputState* input, F&& fn)
      : SharedState<Result>(/*references=*/2), input_(input) {
    fn_.emplace(std::forward<F>(fn));
  }
  ~CallState() override {
    if (input_ != nullptr) input_->DropReference();
  }

  // Runs the callable and publishes its result (or, when it returned a future,
  // arranges to publish that future's outcome). Returns the continuation to fire
  // next.
  Continuation* Fire() noexcept override {
    if constexpr (kInput == Input::kValue) {
      if (input_->exception()) {
        this->StoreException(input_->exception());
        ReleaseCallee();
        return PublishAndDrop();
      }
    }
    if constexpr (kFlattens) {
      return FireFlattening();
    } else {
      StoreResultOf(*this, [this]() -> Raw { return Call(); });
      ReleaseCallee();
      return PublishAndDrop();
    }
  }

 private:
  // Moves the outcome of the inner future a flattening callable returned into
  // the call's state once the inner one is ready.
  struct Forwarder final : Continuation {
    CallState* owner = nullptr;
    SharedState<Result>* inner = nullptr;

    Continuation* Fire() noexcept override {
      owner->StoreOutcomeOf(*inner);
      std::exchange(inner, nullptr)->DropReference();
      return owner->PublishAndDrop();
    }
  };
  struct NoForwarder {};

  Raw Call() {
    if constexpr (kInput == Input::kWholeFuture) {
      return std::invoke(std::move(*fn_), Access::Adopt(std::exchange(input_, nullptr)));
    } else if constexpr (kInput == Input::kNothing || std::is_void_v<T>) {
      return std::invoke(std::move(*fn_));
    } else {
      return std::invoke(std::move(*fn_), Access::Value(*input_));
    }
  }

  Continuation* FireFlattening() noexcept {
    SharedState<Result>* inner = nullptr;
    try {
      Raw future = Call();
      inner = FutureAccess::Release(future);
      if (inner == nullptr) {
        throw std::logic_error(
            "a callable given to weft::Future::Then, weft::SharedFuture::Then or "
            "weft::Async returned an invalid (default-constructed or moved-from) future");
      }
    } catch (...) {
      this->StoreException(std::current_exception());
    }
    ReleaseCallee();
    if (inner == nullptr) return PublishAndDrop();
    forwarder_.owner = this;
    forwarder_.inner = inner;
    return inner->Install(&forwarder_);
  }

  // The callable's captures and the input are released as soon as they are used,
  // not when the last future of this state goes.
  void ReleaseCallee() noexcept {
    fn_.reset();
    if (input_ != nullptr) std::exchange(input_, nullptr)->DropReference();
  }

  Continuation* PublishAndDrop() noexcept {
    Continuation* next = this->Publish();
    this->DropReference();  // `this` may be gone from here on
    return next;
  }

  InputState* input_;
  std::optional<Fn> fn_;
  std::conditional_t<kFlattens, Forwarder, NoForwarder> forwarder_;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_FUTURE_DETAIL_CALL_STATE_H_
