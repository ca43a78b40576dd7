// SharedFuture<T>: a future that any number of consumers read. Include
// runtime/future/future.h, which includes this header.
//
//   weft::SharedFuture<Config> config = LoadConfig().Share();   // consumes the Future
//   auto port = config.Then([](const Config& c) { return c.port; });
//   auto name = config.Then([](const Config& c) { return c.name; });
//   const Config& c = weft::BlockingGet(config);                // blocking_get.h
//
// Future<T>::Share() consumes a future and returns its shared form. Copies of a
// SharedFuture all refer to one value, which stays where the producer put it
// (nothing is copied or moved, so T may be move-only) and is destroyed with the
// last copy (or the last pending Then). Each consumer reads it as `const T&`.
//
// Then attaches a continuation without consuming anything; any number may be
// attached to one shared future or its copies, and each runs exactly once: on the
// fiber or thread that makes the value ready (those attached before it arrives,
// in the order they were attached), or inline inside Then if the value is
// already there (as for Future::Then).
//
// Thread-safety: the const members (IsValid, IsReady, Then, and BlockingGet on
// it) may be called concurrently on one object and on its copies, from fibers
// and plain threads. Assigning to, or destroying, one object while another
// caller uses that same object is a data race, as for std::shared_future; give
// each fiber or thread its own copy for that.
//
// Memory order: everything the producer wrote before SetValue/SetException
// happens-before every continuation runs and every BlockingGet returns.
#ifndef WEFT_RUNTIME_FUTURE_SHARED_FUTURE_H_
#define WEFT_RUNTIME_FUTURE_SHARED_FUTURE_H_

#include <type_traits>
#include <utility>

#include "runtime/detail/check.h"
#include "runtime/future/detail/call_state.h"
#include "runtime/future/detail/shared_future_state.h"
#include "runtime/future/future.h"

namespace weft {

namespace detail {

// Builds and takes apart shared futures for the rest of runtime/future/.
struct SharedFutureAccess {
  // Takes over one reference to `state`.
  template <class T>
  static SharedFuture<T> Adopt(SharedFutureState<T>* state) noexcept {
    return SharedFuture<T>(state);
  }
  // Aborts with a message naming `operation` if `future` is invalid.
  template <class T>
  static SharedFutureState<T>& StateOf(const SharedFuture<T>& future,
                                       const char* operation) {
    WEFT_CHECK(future.state_ != nullptr)
        << operation
        << " was given an invalid SharedFuture (default-constructed or moved from); "
           "obtain one from Future::Share() and copy it for each consumer";
    return *future.state_;
  }
};

// How a CallState reads a SharedFuture input: the value stays in place for the
// other consumers, so the callable gets `const T&`; the whole-future form hands
// over a SharedFuture copy.
template <class T>
struct SharedFutureInput {
  using State = SharedFutureState<T>;
  using Whole = SharedFuture<T>;
  using ValueArg = std::add_lvalue_reference_t<const T>;  // const T&; unused for void
  using Listener = SharedListener;

  static const Stored<T>& Value(State& state) noexcept { return state.value(); }
  static Whole Adopt(State* state) noexcept { return SharedFutureAccess::Adopt(state); }
};

}  // namespace detail

// Any number of consumers' view of one value of type T (or void), or one
// exception. Copyable and movable; see the file comment for threading.
template <class T>
class SharedFuture {
 public:
  using value_type = T;

  // An invalid shared future: holds no state. Only assignment and destruction
  // are allowed.
  SharedFuture() = default;
  SharedFuture(const SharedFuture& other) noexcept : state_(other.state_) {
    if (state_ != nullptr) state_->AddReference();
  }
  SharedFuture(SharedFuture&& other) noexcept
      : state_(std::exchange(other.state_, nullptr)) {}
  SharedFuture& operator=(const SharedFuture& other) noexcept {
    detail::SharedFutureState<T>* state = other.state_;  // `other` may be `*this`
    if (state != nullptr) state->AddReference();
    Reset();
    state_ = state;
    return *this;
  }
  SharedFuture& operator=(SharedFuture&& other) noexcept {
    if (this != &other) {
      Reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  // The value is destroyed with the last copy once no Then waits to read it.
  ~SharedFuture() { Reset(); }

  // Whether this object holds a state (it was not default-constructed or moved
  // from).
  bool IsValid() const noexcept { return state_ != nullptr; }

  // Whether the value or exception has arrived. Never blocks. False on an
  // invalid shared future.
  bool IsReady() const noexcept { return state_ != nullptr && state_->IsReady(); }

  // Returns a future of what `f` returns once this shared future is ready,
  // consuming nothing. `f` may take, chosen as for Future::Then:
  //   - the value as `const T&` (a by-value T parameter copies it; nothing for
  //     SharedFuture<void>): called only on success; an exception passes to the
  //     result without calling `f`;
  //   - the whole SharedFuture<T> (a ready copy of this one): always called, and
  //     sees failures (BlockingGet on it returns at once or rethrows).
  // A returned Future<U> is flattened into Future<U>; an exception thrown by `f`
  // is stored in the result. `f` runs once, when the value arrives (on the fiber
  // or thread that makes it ready) or inline here if it already has. Aborts on an
  // invalid shared future.
  template <class F>
  auto Then(F&& f) const;

 private:
  friend struct detail::SharedFutureAccess;

  explicit SharedFuture(detail::SharedFutureState<T>* state) noexcept : state_(state) {}
  void Reset() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->DropReference();
  }

  detail::SharedFutureState<T>* state_ = nullptr;
};

template <class T>
SharedFuture<T> Future<T>::Share() && {
  detail::SharedState<T>* input =
      detail::FutureAccess::ReleaseValid(*this, "weft::Future::Share");
  auto* state = new detail::SharedFutureState<T>(input);
  auto shared = detail::SharedFutureAccess::Adopt(state);
  state->Start();
  return shared;
}

template <class T>
template <class F>
auto SharedFuture<T>::Then(F&& f) const {
  using Fn = std::decay_t<F>;
  using Access = detail::SharedFutureInput<T>;
  using State = detail::CallState<T, Fn, detail::ChooseInput<T, Fn, Access>(), Access>;
  detail::SharedFutureState<T>& input =
      detail::SharedFutureAccess::StateOf(*this, "weft::SharedFuture::Then");
  auto* next = new State(&input, std::forward<F>(f));
  input.AddReference();  // the continuation's, until it has read the value
  auto result = detail::FutureAccess::Adopt<typename State::Result>(next);
  detail::FireChain(input.Attach(next));
  return result;
}

}  // namespace weft

#endif  // WEFT_RUNTIME_FUTURE_SHARED_FUTURE_H_
