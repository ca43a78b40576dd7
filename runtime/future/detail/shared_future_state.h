// The state behind every copy of a SharedFuture: it consumes the Future's shared
// state once, keeps the value there, and hands the moment it arrives to any
// number of listeners (SharedFuture::Then) and waiters (BlockingGet). Internal:
// use runtime/future/future.h.
//
// A Future's state takes one continuation; this state is that continuation and
// fans it out. Listeners and parked waiters are kept in lists under a spinlock:
// whoever finds the state not yet fired queues itself, and the firing takes both
// lists whole under the same lock, so each listener fires exactly once, either
// from the firing or inline at attach time.
//
// References: one per SharedFuture copy, one per attached listener that has not
// yet read the value, and one while the state waits for its input (dropped by
// the firing). The input's reference, and with it the value, goes with the last.
#ifndef WEFT_RUNTIME_FUTURE_DETAIL_SHARED_FUTURE_STATE_H_
#define WEFT_RUNTIME_FUTURE_DETAIL_SHARED_FUTURE_STATE_H_

#include <atomic>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "runtime/detail/spinlock.h"
#include "runtime/future/detail/shared_state.h"
#include "runtime/scheduling_group/wait_queue.h"

namespace weft::detail {

// A continuation that can be queued on a SharedFutureStateBase.
class SharedListener : public Continuation {
 protected:
  ~SharedListener() = default;

 private:
  friend class SharedFutureStateBase;
  SharedListener* next_listener_ = nullptr;
};

class SharedFutureStateBase : public Continuation {
 public:
  SharedFutureStateBase(const SharedFutureStateBase&) = delete;
  SharedFutureStateBase& operator=(const SharedFutureStateBase&) = delete;

  void AddReference() noexcept { references_.fetch_add(1, std::memory_order_relaxed); }
  void DropReference() noexcept {
    if (references_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Whether the input's outcome has arrived (it may still be firing listeners).
  bool IsReady() const noexcept { return input_base_->IsReady(); }

  // After IsReady(): the stored exception, or null if the input holds a value.
  const std::exception_ptr& exception() const noexcept {
    return input_base_->exception();
  }

  // Arranges for `listener` to fire once the value has arrived. Returns nullptr
  // if it will, or `listener` itself if the state has already fired (the caller
  // fires it). Listeners queued before the firing fire in the order they were
  // attached.
  Continuation* Attach(SharedListener* listener) noexcept {
    lock_.lock();
    if (fired_) {
      lock_.unlock();
      return listener;
    }
    listener->next_listener_ = nullptr;
    (last_listener_ == nullptr ? first_listener_ : last_listener_->next_listener_) =
        listener;
    last_listener_ = listener;
    lock_.unlock();
    return nullptr;
  }

  // Parks the calling fiber or thread until the value has arrived. The caller
  // holds a reference for the duration.
  void Wait() {
    if (IsReady()) return;
    lock_.lock();
    if (fired_) {
      lock_.unlock();
      return;
    }
    Waiter waiter;
    waiters_.Park(&waiter, lock_);
  }

  // The input is ready: wakes every waiter and fires every listener; the last
  // listener is returned for the caller's trampoline, so that a chain of
  // single-listener shared futures fires in constant stack depth.
  //
  // Waking a waiter may let it return and drop the last reference at once, and
  // the nodes of both lists live in the waiters and listeners themselves: after
  // the lists are taken, nothing of `*this` is touched, and each node's link is
  // read before that node is woken or fired.
  Continuation* Fire() noexcept override {
    lock_.lock();
    fired_ = true;
    SharedListener* listener = std::exchange(first_listener_, nullptr);
    last_listener_ = nullptr;
    Waiter* waiters = waiters_.PopAll();
    lock_.unlock();
    DropReference();  // the one held for the input; `this` may be gone from here on
    WaitQueue::WakeAll(waiters);
    while (listener != nullptr) {
      SharedListener* next = listener->next_listener_;
      if (next == nullptr) return listener;
      FireChain(listener->Fire());
      listener = next;
    }
    return nullptr;
  }

 protected:
  // Starts with `references` owners; `input` stays referenced until destruction.
  SharedFutureStateBase(std::uint32_t references, SharedStateBase* input) noexcept
      : references_(references), input_base_(input) {}
  virtual ~SharedFutureStateBase() { input_base_->DropReference(); }

 private:
  std::atomic<std::uint32_t> references_;
  SharedStateBase* const input_base_;
  Spinlock lock_;
  bool fired_ WEFT_GUARDED_BY(lock_) = false;
  SharedListener* first_listener_ WEFT_GUARDED_BY(lock_) = nullptr;
  SharedListener* last_listener_ WEFT_GUARDED_BY(lock_) = nullptr;
  WaitQueue waiters_ WEFT_GUARDED_BY(lock_);
};

// The state of a SharedFuture<T>: the Future<T>'s state, which keeps the value.
template <class T>
class SharedFutureState final : public SharedFutureStateBase {
 public:
  // Takes over `input`'s reference. References: one for the first SharedFuture,
  // one until the input has fired. Call Start() next.
  explicit SharedFutureState(SharedState<T>* input) noexcept
      : SharedFutureStateBase(/*references=*/2, input), input_(input) {}

  // Watches the input; fires at once if it is ready.
  void Start() noexcept { FireChain(input_->Install(this)); }

  // After IsReady() on a state without exception: the value, which stays in
  // place until the last reference goes.
  const Stored<T>& value() const noexcept { return input_->value(); }

 private:
  SharedState<T>* const input_;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_FUTURE_DETAIL_SHARED_FUTURE_STATE_H_
