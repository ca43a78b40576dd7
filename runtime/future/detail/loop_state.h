// The states behind the loop helpers of runtime/future/loop.h. Internal.
//
// A loop is one object: the shared state of its Future<void> and the
// continuation it installs on each body's future. It iterates in a plain while
// loop for as long as the bodies' futures are ready, and when one is pending it
// installs itself on it and returns; that future's producer fires it later, on
// its own stack, and the loop goes on from there. So a loop runs in constant
// stack depth however many iterations it makes and however they complete.
//
// References: one for the result future, one for the loop in flight, dropped
// when the result is published. Between iterations the loop state is handed from
// one thread to the next through the body future's Install (release) and
// Publish (acquire), so its fields need no lock.
#ifndef WEFT_RUNTIME_FUTURE_DETAIL_LOOP_STATE_H_
#define WEFT_RUNTIME_FUTURE_DETAIL_LOOP_STATE_H_

#include <cstddef>
#include <exception>
#include <functional>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "runtime/future/detail/shared_state.h"
#include "runtime/future/future.h"

namespace weft::detail {

class LoopState : public SharedState<void>, public Continuation {
 public:
  // Runs the loop: iterations whose futures are ready run here, the rest on
  // whoever completes the pending one. Call once, after construction.
  void Start() noexcept { FireChain(Run(nullptr)); }

 protected:
  LoopState() : SharedState<void>(/*references=*/2) {}

  // The state of the future a body returned; the loop owns its reference.
  // Throws std::logic_error for an invalid future, which fails the loop.
  template <class U>
  static SharedStateBase* TakeBodyFuture(Future<U> future) {
    SharedState<U>* state = FutureAccess::Release(future);
    if (state == nullptr) {
      throw std::logic_error(
          "the body of a weft loop (DoWhile, Repeat, DoForEach) returned an invalid "
          "(default-constructed or moved-from) future");
    }
    return state;
  }

 private:
  // Checks the loop's condition and, if it holds, calls the body: returns the
  // state of the body's future, or nullptr when the loop is over. Whatever it
  // throws fails the loop.
  virtual SharedStateBase* Next() = 0;

  // Called once the body's future `done` has succeeded: whether the loop may go
  // on (DoWhile(body) reads the body's bool here).
  virtual bool Again(SharedStateBase& done) noexcept {
    (void)done;
    return true;
  }

  // Destroys the callables and whatever else the loop holds for the user, so
  // that none of it outlives the loop when the result becomes ready.
  virtual void ReleaseCallables() noexcept = 0;

  Continuation* Fire() noexcept final { return Run(std::exchange(pending_, nullptr)); }

  // `done`: the state of the body future just completed (nullptr at the start).
  // Returns the continuation of the result, once published, for the trampoline.
  Continuation* Run(SharedStateBase* done) noexcept {
    for (;;) {
      if (done != nullptr) {
        std::exception_ptr failure = done->exception();
        const bool again = failure == nullptr && Again(*done);
        done->DropReference();
        if (failure != nullptr) return Finish(std::move(failure));
        if (!again) return Finish(nullptr);
      }
      try {
        done = Next();
      } catch (...) {
        return Finish(std::current_exception());
      }
      if (done == nullptr) return Finish(nullptr);
      pending_ = done;
      // Once installed, the loop may resume in Fire() on another thread at once:
      // nothing of `this` is touched after a successful Install.
      if (done->Install(this) == nullptr) return nullptr;
      pending_ = nullptr;  // ready already: go on here
    }
  }

  Continuation* Finish(std::exception_ptr failure) noexcept {
    ReleaseCallables();
    if (failure != nullptr) {
      StoreException(std::move(failure));
    } else {
      StoreValue();
    }
    Continuation* next = Publish();
    DropReference();  // the loop's own; `this` may be gone from here on
    return next;
  }

  SharedStateBase* pending_ = nullptr;
};

// while (cond()) wait for body();
template <class Cond, class Body>
class WhileLoop final : public LoopState {
 public:
  template <class C, class B>
  WhileLoop(C&& cond, B&& body) {
    cond_.emplace(std::forward<C>(cond));
    body_.emplace(std::forward<B>(body));
  }

 private:
  SharedStateBase* Next() override {
    if (!static_cast<bool>(std::invoke(*cond_))) return nullptr;
    return TakeBodyFuture(std::invoke(*body_));
  }
  void ReleaseCallables() noexcept override {
    cond_.reset();
    body_.reset();
  }

  std::optional<Cond> cond_;
  std::optional<Body> body_;
};

// do { more = wait for body(); } while (more);
template <class Body>
class DoWhileLoop final : public LoopState {
 public:
  template <class B>
  explicit DoWhileLoop(B&& body) {
    body_.emplace(std::forward<B>(body));
  }

 private:
  SharedStateBase* Next() override { return TakeBodyFuture(std::invoke(*body_)); }
  bool Again(SharedStateBase& done) noexcept override {
    return static_cast<SharedState<bool>&>(done).value();
  }
  void ReleaseCallables() noexcept override { body_.reset(); }

  std::optional<Body> body_;
};

// for (i = 0; i != count; ++i) wait for body(i) (or body()); forever if
// kCounted is false.
template <class Body, bool kCounted>
class RepeatLoop final : public LoopState {
 public:
  template <class B>
  RepeatLoop(std::size_t count, B&& body) : count_(count) {
    body_.emplace(std::forward<B>(body));
  }

 private:
  SharedStateBase* Next() override {
    if (kCounted && index_ == count_) return nullptr;
    const std::size_t index = index_++;
    if constexpr (std::is_invocable_v<Body&, std::size_t>) {
      return TakeBodyFuture(std::invoke(*body_, index));
    } else {
      return TakeBodyFuture(std::invoke(*body_));
    }
  }
  void ReleaseCallables() noexcept override { body_.reset(); }

  const std::size_t count_;
  std::size_t index_ = 0;
  std::optional<Body> body_;
};

// A begin/end pair seen as a range.
template <class Iterator, class Sentinel>
struct IteratorRange {
  Iterator first;
  Sentinel last;
  Iterator begin() const { return first; }
  Sentinel end() const { return last; }
};

// Walks `Range`: the caller's range when it is a reference type, else a range
// moved into the cursor. Never moved once made (its iterators point into it).
template <class Range>
class RangeCursor {
 public:
  template <class R>
  explicit RangeCursor(R&& range)
      : range_(std::forward<R>(range)),
        next_(std::begin(range_)),
        end_(std::end(range_)) {}
  RangeCursor(const RangeCursor&) = delete;
  RangeCursor& operator=(const RangeCursor&) = delete;

  bool AtEnd() const { return next_ == end_; }
  decltype(auto) Element() { return *next_; }
  void Advance() { ++next_; }

 private:
  Range range_;
  decltype(std::begin(std::declval<Range&>())) next_;
  decltype(std::end(std::declval<Range&>())) end_;
};

// for (element : range) wait for body(element);
template <class Range, class Body>
class ForEachLoop final : public LoopState {
 public:
  template <class R, class B>
  ForEachLoop(R&& range, B&& body) {
    cursor_.emplace(std::forward<R>(range));
    body_.emplace(std::forward<B>(body));
  }

 private:
  // The cursor moves past an element only when the next iteration starts, after
  // the body's future for that element has completed.
  SharedStateBase* Next() override {
    if (started_) {
      cursor_->Advance();
    } else {
      started_ = true;
    }
    if (cursor_->AtEnd()) return nullptr;
    return TakeBodyFuture(std::invoke(*body_, cursor_->Element()));
  }
  void ReleaseCallables() noexcept override {
    body_.reset();
    cursor_.reset();
  }

  std::optional<RangeCursor<Range>> cursor_;
  std::optional<Body> body_;
  bool started_ = false;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_FUTURE_DETAIL_LOOP_STATE_H_
