// The state a Promise and its Future share, and the continuations that run when
// it becomes ready. Internal: use runtime/future/future.h.
//
// A state moves through three phases, each change one atomic operation:
//
//   kPending --(consumer installs a continuation)--> kWaiting
//   kPending or kWaiting --(producer publishes a value or an exception)--> kReady
//   kWaiting --(consumer takes its continuation back, a timed-out wait)--> kPending
//
// The producer writes the outcome before publishing (release) and the consumer
// reads it only after seeing kReady (acquire), so the outcome itself needs no
// lock. The continuation pointer is written before the consumer's
// compare-and-swap to kWaiting and read only by a producer that saw kWaiting.
//
// Continuations are fired by a trampoline (FireChain): a continuation that makes
// another state ready returns that state's continuation instead of calling it, so
// a chain of any length completes in constant stack depth. This matters on a
// fiber's fixed-size stack, where recursing through a 10k-step Then chain would
// overflow it.
#ifndef WEFT_RUNTIME_FUTURE_DETAIL_SHARED_STATE_H_
#define WEFT_RUNTIME_FUTURE_DETAIL_SHARED_STATE_H_

#include <atomic>
#include <cstdint>
#include <exception>
#include <future>
#include <new>
#include <type_traits>
#include <utility>

#include "runtime/detail/check.h"

namespace weft {

template <class T>
class Future;

namespace detail {

// What a Future<void> stores: nothing, but as a value, so that the templates
// below need no void cases.
struct Unit {};

template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, Unit, T>;

template <class T>
struct IsFuture : std::false_type {};
template <class T>
struct IsFuture<Future<T>> : std::true_type {};

// Future<T> -> T; any other type unchanged. The value type of a future whose
// producer returns R (a callable returning a future is flattened).
template <class R>
struct UnwrapFuture {
  using type = R;
};
template <class T>
struct UnwrapFuture<Future<T>> {
  using type = T;
};

// A step to take when a shared state becomes ready.
class Continuation {
 public:
  // Takes the step. Returns the continuation of a state this step made ready (for
  // the caller to fire next), or nullptr. Never throws.
  virtual Continuation* Fire() noexcept = 0;

 protected:
  ~Continuation() = default;
};

// Fires `next` and every continuation it hands on, without recursion.
inline void FireChain(Continuation* next) noexcept {
  while (next != nullptr) next = next->Fire();
}

class SharedStateBase {
 public:
  SharedStateBase(const SharedStateBase&) = delete;
  SharedStateBase& operator=(const SharedStateBase&) = delete;

  void AddReference() noexcept { references_.fetch_add(1, std::memory_order_relaxed); }
  void DropReference() noexcept {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  bool IsReady() const noexcept {
    return phase_.load(std::memory_order_acquire) == kReady;
  }

  // Consumer side. Arranges for `continuation` to fire when the state becomes
  // ready. Returns nullptr if it will, or `continuation` itself if the state is
  // already ready (the caller fires it). At most one continuation per state.
  Continuation* Install(Continuation* continuation) noexcept {
    continuation_ = continuation;
    std::uint8_t expected = kPending;
    if (phase_.compare_exchange_strong(expected, kWaiting, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
      return nullptr;
    }
    return continuation;
  }

  // Consumer side. Takes an installed continuation back before it fires. Returns
  // false if the producer has already published: the continuation fires (or has
  // fired) and the caller must let it.
  bool Uninstall() noexcept {
    std::uint8_t expected = kWaiting;
    return phase_.compare_exchange_strong(expected, kPending, std::memory_order_acq_rel,
                                          std::memory_order_acquire);
  }

  // Producer side, after storing the outcome. Returns the continuation to fire
  // (the caller passes it to FireChain), or nullptr if none is installed.
  [[nodiscard]] Continuation* Publish() noexcept {
    WEFT_DCHECK(phase_.load(std::memory_order_relaxed) != kReady)
        << "a future's shared state was made ready twice";
    return phase_.exchange(kReady, std::memory_order_acq_rel) == kWaiting ? continuation_
                                                                          : nullptr;
  }

  // Producer side, before Publish().
  void StoreException(std::exception_ptr exception) noexcept {
    exception_ = std::move(exception);
  }

  // After IsReady(): the stored exception, or null if the state holds a value.
  const std::exception_ptr& exception() const noexcept { return exception_; }

 protected:
  explicit SharedStateBase(std::uint32_t references) : references_(references) {}
  virtual ~SharedStateBase() = default;

 private:
  enum Phase : std::uint8_t { kPending, kWaiting, kReady };

  std::atomic<std::uint32_t> references_;
  std::atomic<std::uint8_t> phase_{kPending};
  Continuation* continuation_ = nullptr;
  std::exception_ptr exception_;
};

// The shared state of a Future<T>: a value or an exception, once.
template <class T>
class SharedState : public SharedStateBase {
 public:
  using Value = Stored<T>;
  static_assert(!std::is_reference_v<T>, "Future<T&> is not supported; use a pointer");

  // The state starts with `references` owners (a promise, a future, a fiber...).
  explicit SharedState(std::uint32_t references) : SharedStateBase(references) {}
  ~SharedState() override {
    if (has_value_) value_.~Value();
  }

  // Producer side, before Publish().
  template <class... Args>
  void StoreValue(Args&&... args) {
    ::new (static_cast<void*>(&value_)) Value(std::forward<Args>(args)...);
    has_value_ = true;
  }

  // Moves the outcome of `source` (ready) into this state, which is not yet
  // published.
  void StoreOutcomeOf(SharedState& source) noexcept {
    if (source.exception()) {
      StoreException(source.exception());
      return;
    }
    try {
      StoreValue(std::move(source.value_));
    } catch (...) {
      StoreException(std::current_exception());
    }
  }

  // Consumer side, after IsReady(): rethrows the stored exception (the original
  // object and type), or moves the value out.
  Value TakeValue() {
    if (exception()) std::rethrow_exception(exception());
    return std::move(value_);
  }

  // Consumer side, after IsReady() on a state that holds a value.
  Value& value() noexcept { return value_; }

 private:
  union {
    Value value_;
  };
  bool has_value_ = false;
};

// Stores the outcome of calling `produce` (which returns Value) in `state`: its
// value, or the exception it threw.
template <class T, class Produce>
void StoreResultOf(SharedState<T>& state, Produce&& produce) noexcept {
  try {
    if constexpr (std::is_void_v<T>) {
      std::forward<Produce>(produce)();
      state.StoreValue();
    } else {
      state.StoreValue(std::forward<Produce>(produce)());
    }
  } catch (...) {
    state.StoreException(std::current_exception());
  }
}

// The exception a future receives when its promise is destroyed unsatisfied.
inline std::exception_ptr BrokenPromise() {
  return std::make_exception_ptr(std::future_error(std::future_errc::broken_promise));
}

}  // namespace detail
}  // namespace weft

#endif  // WEFT_RUNTIME_FUTURE_DETAIL_SHARED_STATE_H_
