// Promise<T> / Future<T>: a value (or an exception) produced once, somewhere, and
// consumed once, by a continuation or by a fiber or thread that waits for it.
//
//   weft::Promise<int> promise;
//   weft::Future<int> future = promise.GetFuture();
//   weft::Future<std::string> text =
//       std::move(future).Then([](int n) { return std::to_string(n); });
//   promise.SetValue(42);                       // runs the continuation here
//   std::string s = weft::BlockingGet(std::move(text));   // blocking_get.h
//
// A promise and its future share one heap-allocated state and nothing else is
// allocated on the way from SetValue to the consumer. Both are move-only. A
// promise is satisfied once; a future is consumed once (by Then, BlockingGet,
// BlockingTryGet, WhenAll, WhenAny or Share), after which it is invalid. For
// several consumers of one value, Share() it into a SharedFuture
// (runtime/future/shared_future.h, included here).
//
// Where continuations run: a continuation runs on the fiber or thread that makes
// its input ready (inside SetValue / SetException, or at the end of the fiber
// that Async started), or, if the input is already ready when Then is called,
// inside Then. It runs inline, before that call returns. Keep continuations short
// and non-blocking; start a fiber (Async) from a continuation for long work.
// Chains of any length run in constant stack depth.
//
// Thread-safety: a promise and its future may be used from different fibers and
// threads concurrently; each object itself is used by one caller at a time.
// Everything written before SetValue/SetException happens-before the consumer
// sees the value.
#ifndef WEFT_RUNTIME_FUTURE_FUTURE_H_
#define WEFT_RUNTIME_FUTURE_FUTURE_H_

#include <exception>
#include <type_traits>
#include <utility>

#include "runtime/detail/check.h"
#include "runtime/future/detail/shared_state.h"

namespace weft {

template <class T>
class Future;
template <class T>
class SharedFuture;

namespace detail {

// Builds and takes apart futures for the combinators in runtime/future/.
struct FutureAccess {
  template <class T>
  static Future<T> Adopt(SharedState<T>* state) noexcept {
    return Future<T>(state);
  }
  template <class T>
  static SharedState<T>* Release(Future<T>& future) noexcept {
    return std::exchange(future.state_, nullptr);
  }
  // Aborts with a message naming `operation` if `future` is invalid.
  template <class T>
  static SharedState<T>* ReleaseValid(Future<T>& future, const char* operation) {
    WEFT_CHECK(future.state_ != nullptr)
        << operation
        << " was given an invalid future (default-constructed, moved from, or already "
           "consumed by Then, BlockingGet, WhenAll, WhenAny or Share); a future is "
           "consumed once (Share() it for several consumers)";
    return std::exchange(future.state_, nullptr);
  }
};

}  // namespace detail

// The consumer's end: a value of type T (or void), or an exception, that will be
// ready at some point. Move-only; see the file comment for threading.
template <class T>
class Future {
 public:
  using value_type = T;

  // An invalid future: holds no state. Only assignment and destruction are allowed.
  Future() = default;
  Future(Future&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  Future& operator=(Future&& other) noexcept {
    if (this != &other) {
      Reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  // Dropping an unconsumed future is allowed: the value, when it arrives, is
  // destroyed with the shared state.
  ~Future() { Reset(); }

  // Whether this future holds a state (it was not default-constructed, moved
  // from or consumed).
  bool IsValid() const noexcept { return state_ != nullptr; }

  // Whether the value or exception has arrived. Never blocks. False on an
  // invalid future.
  bool IsReady() const noexcept { return state_ != nullptr && state_->IsReady(); }

  // Consumes this future and returns a future of what `f` returns once this one
  // is ready. `f` may take:
  //   - the value (`T`, `T&&` or `const T&`; nothing for Future<void>): it is
  //     called only on success, and an exception in this future passes to the
  //     result without calling `f`;
  //   - the whole `Future<T>` (ready): it is always called and sees failures
  //     (BlockingGet on it returns at once or rethrows).
  // If `f` returns Future<U>, the result is Future<U> (flattened) and becomes
  // ready when that inner future does; otherwise the result is Future<R> for f's
  // return type R (void included). An exception thrown by `f` is stored in the
  // result. See the file comment for where `f` runs. Aborts on an invalid future.
  template <class F>
  auto Then(F&& f);

  // Consumes this future and returns a SharedFuture of the same value, which any
  // number of consumers may copy, attach continuations to and wait for (see
  // runtime/future/shared_future.h). Aborts on an invalid future.
  SharedFuture<T> Share() &&;

 private:
  friend struct detail::FutureAccess;

  explicit Future(detail::SharedState<T>* state) noexcept : state_(state) {}
  void Reset() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->DropReference();
  }

  detail::SharedState<T>* state_ = nullptr;
};

// The producer's end. Satisfied once with SetValue or SetException; destroying an
// unsatisfied promise hands its future a std::future_error with code
// std::future_errc::broken_promise. Move-only; one caller at a time.
template <class T>
class Promise {
 public:
  Promise() : state_(new detail::SharedState<T>(/*references=*/1)) {}
  Promise(Promise&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)),
        future_retrieved_(other.future_retrieved_),
        satisfied_(other.satisfied_) {}
  Promise& operator=(Promise&& other) noexcept {
    if (this != &other) {
      Abandon();
      state_ = std::exchange(other.state_, nullptr);
      future_retrieved_ = other.future_retrieved_;
      satisfied_ = other.satisfied_;
    }
    return *this;
  }
  ~Promise() { Abandon(); }

  // The future of this promise. Call at most once (aborts otherwise).
  Future<T> GetFuture() {
    WEFT_CHECK(!future_retrieved_)
        << "weft::Promise::GetFuture() called twice; a promise has one future (move "
           "it, or use WhenAll/Then to share its result)";
    CheckUsable("GetFuture");
    future_retrieved_ = true;
    state_->AddReference();
    return detail::FutureAccess::Adopt(state_);
  }

  // Makes the future ready with a T constructed from `args` (nothing for void),
  // and runs its continuation, if one is attached, before returning. Aborts if
  // the promise was already satisfied. If constructing T throws, the exception
  // propagates and the promise stays unsatisfied.
  template <class... Args>
  void SetValue(Args&&... args) {
    CheckUnsatisfied("SetValue");
    state_->StoreValue(std::forward<Args>(args)...);
    Satisfy();
  }

  // Makes the future ready with `exception` (not null), which BlockingGet
  // rethrows with its original type. Aborts if the promise was already satisfied.
  void SetException(std::exception_ptr exception) {
    CheckUnsatisfied("SetException");
    WEFT_CHECK(exception != nullptr)
        << "weft::Promise::SetException(nullptr): pass a real exception, e.g. "
           "std::current_exception() inside a catch block or std::make_exception_ptr(e)";
    state_->StoreException(std::move(exception));
    Satisfy();
  }

 private:
  void CheckUsable(const char* operation) const {
    WEFT_CHECK(state_ != nullptr)
        << "weft::Promise::" << operation << "() on a moved-from promise";
  }
  void CheckUnsatisfied(const char* operation) const {
    WEFT_CHECK(!satisfied_) << "weft::Promise::" << operation
                            << "() on a promise that is already satisfied; a promise "
                               "takes one value or one exception";
    CheckUsable(operation);
  }
  // Once the future is out, the promise has no more use for the state: letting
  // go of it now frees the value as soon as the consumer does (a WhenAny's late
  // inputs, a dropped future), not when the promise object goes.
  //
  // Publishing may let a waiter return, and the waiter may destroy this promise
  // at once (as with std::promise): nothing of `*this` is touched after it.
  void Satisfy() noexcept {
    satisfied_ = true;
    detail::SharedState<T>* state = state_;
    const bool release = future_retrieved_;
    if (release) state_ = nullptr;
    detail::FireChain(state->Publish());
    if (release) state->DropReference();
  }
  void Abandon() noexcept {
    if (state_ == nullptr) return;
    if (!satisfied_) {
      state_->StoreException(detail::BrokenPromise());
      Satisfy();
    }
    if (state_ != nullptr) std::exchange(state_, nullptr)->DropReference();
  }

  detail::SharedState<T>* state_;
  bool future_retrieved_ = false;
  bool satisfied_ = false;
};

// A future that is already ready with `value`.
template <class T>
Future<std::decay_t<T>> MakeReadyFuture(T&& value) {
  auto* state = new detail::SharedState<std::decay_t<T>>(/*references=*/1);
  state->StoreValue(std::forward<T>(value));
  (void)state->Publish();  // nothing can be installed yet
  return detail::FutureAccess::Adopt(state);
}

// A Future<void> that is already ready.
inline Future<void> MakeReadyFuture() {
  auto* state = new detail::SharedState<void>(/*references=*/1);
  state->StoreValue();
  (void)state->Publish();
  return detail::FutureAccess::Adopt(state);
}

// A Future<T> that is already ready with `exception` (not null).
template <class T>
Future<T> MakeExceptionalFuture(std::exception_ptr exception) {
  WEFT_CHECK(exception != nullptr)
      << "weft::MakeExceptionalFuture(nullptr): pass a real exception, e.g. "
         "std::make_exception_ptr(e)";
  auto* state = new detail::SharedState<T>(/*references=*/1);
  state->StoreException(std::move(exception));
  (void)state->Publish();
  return detail::FutureAccess::Adopt(state);
}

}  // namespace weft

#include "runtime/future/detail/call_state.h"

namespace weft {

template <class T>
template <class F>
auto Future<T>::Then(F&& f) {
  using Fn = std::decay_t<F>;
  using State = detail::CallState<T, Fn, detail::ChooseInput<T, Fn>()>;
  WEFT_CHECK(state_ != nullptr)
      << "weft::Future::Then on an invalid future (default-constructed, moved from, or "
         "already consumed); a future is consumed once";
  detail::SharedState<T>* input = state_;
  auto* next = new State(input, std::forward<F>(f));
  state_ = nullptr;  // the continuation owns the input's reference now
  auto result = detail::FutureAccess::Adopt<typename State::Result>(next);
  detail::FireChain(input->Install(next));
  return result;
}

}  // namespace weft

#include "runtime/future/shared_future.h"

#endif  // WEFT_RUNTIME_FUTURE_FUTURE_H_
