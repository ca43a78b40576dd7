// Asynchronous loops: run a body that returns a future again and again, each
// iteration starting only once the previous body's future has completed.
//
//   // Call until a call succeeds, at most 3 times.
//   auto attempts = std::make_shared<int>(0);
//   weft::Future<void> done = weft::DoWhile([=] {
//     return Call(request).Then([=](weft::Future<Reply> f) {
//       try {
//         Use(weft::BlockingGet(std::move(f)));   // ready: no wait
//         return false;                           // done
//       } catch (const Timeout&) {
//         if (++*attempts == 3) throw;            // fails the loop
//         return true;                            // again
//       }
//     });
//   });
//
// Every helper returns a Future<void> and takes callables by value (decayed
// copies or moves). A body returns a Future<U> of any U (its value is ignored,
// except DoWhile(body)'s bool); the loop consumes that future.
//
// Failure: the loop stops at the first failure and its future holds that exact
// exception object — a body's future failing, or cond or body (or the range's
// iterators) throwing; nothing throws out of the call that starts the loop
// except the allocation of the loop itself (std::bad_alloc) or copying the
// callables. A body returning an invalid future fails the loop with
// std::logic_error. Once the loop is over, its callables (and a range moved into
// DoForEach) are destroyed, before its future becomes ready.
//
// Where iterations run: like continuations (see future.h). The first iterations
// run inside the call that starts the loop, for as long as the bodies return
// futures that are already ready; each later one runs on the fiber or thread that
// completes the previous body's future (inside its SetValue, or at the end of the
// Async fiber), before that call returns. Any number of iterations, ready or not,
// run in constant stack depth. A loop whose bodies always return ready futures
// therefore runs to its end inside the starting call.
//
// Thread-safety: iterations never overlap; each happens-after the previous
// body's future completed, so the callables need no synchronization of their
// own even when iterations run on different threads. Everything an iteration
// did happens-before the loop's future is seen ready.
//
// Allocation: one object per loop (its state, holding the callables), besides
// whatever the bodies allocate.
#ifndef WEFT_RUNTIME_FUTURE_LOOP_H_
#define WEFT_RUNTIME_FUTURE_LOOP_H_

#include <cstddef>
#include <iterator>
#include <type_traits>
#include <utility>

#include "runtime/future/detail/loop_state.h"
#include "runtime/future/future.h"

namespace weft {

namespace detail {

template <class State, class... Args>
Future<void> StartLoop(Args&&... args) {
  auto* state = new State(std::forward<Args>(args)...);
  Future<void> result = FutureAccess::Adopt<void>(state);
  state->Start();
  return result;
}

template <class Body, class... Args>
constexpr bool kReturnsFuture = IsFuture<std::invoke_result_t<Body&, Args...>>::value;

}  // namespace detail

// Like `while (cond()) wait for body();`. `cond` (returning bool) is called before
// every iteration, the first included; while it returns true, `body` is called
// and the next check waits until the Future<U> it returned has completed. The
// result becomes ready when `cond` returns false (at once if it does the first
// time, with `body` never called), or fails as soon as a body's future fails or
// `cond` or `body` throws; no further iteration runs then.
template <class Cond, class Body>
Future<void> DoWhile(Cond&& cond, Body&& body) {
  using C = std::decay_t<Cond>;
  using B = std::decay_t<Body>;
  static_assert(std::is_invocable_r_v<bool, C&>,
                "weft::DoWhile(cond, body): cond must be callable with no arguments "
                "and return bool");
  static_assert(std::is_invocable_v<B&>,
                "weft::DoWhile(cond, body): body must be callable with no arguments");
  static_assert(detail::kReturnsFuture<B>,
                "weft::DoWhile(cond, body): body must return a weft::Future");
  return detail::StartLoop<detail::WhileLoop<C, B>>(std::forward<Cond>(cond),
                                                    std::forward<Body>(body));
}

// Like `do { more = wait for body(); } while (more);`: `body` returns a
// Future<bool>, runs at least once, and runs again after its future completes
// with true. The result becomes ready after a body's future completes with
// false, or fails with the first failure (a body's future failing, or `body`
// throwing).
template <class Body>
Future<void> DoWhile(Body&& body) {
  using B = std::decay_t<Body>;
  static_assert(std::is_invocable_v<B&>,
                "weft::DoWhile(body): body must be callable with no arguments");
  static_assert(std::is_same_v<std::invoke_result_t<B&>, Future<bool>>,
                "weft::DoWhile(body): body must return weft::Future<bool> (whether to "
                "go on); for a condition checked before each iteration use "
                "DoWhile(cond, body)");
  return detail::StartLoop<detail::DoWhileLoop<B>>(std::forward<Body>(body));
}

// Runs `body` forever, one iteration after another, each once the previous
// body's future has completed. The result never becomes ready with a value: it
// fails with the first failure (a body's future failing, or `body` throwing),
// which is the only way the loop ends. `body` may take the iteration index
// (std::size_t, from 0) or nothing. A body that always returns ready futures
// never lets the call return: give it futures that complete later (Async, a
// promise set elsewhere) to keep the loop in the background.
template <class Body>
Future<void> Repeat(Body&& body) {
  using B = std::decay_t<Body>;
  static_assert(std::is_invocable_v<B&, std::size_t> || std::is_invocable_v<B&>,
                "weft::Repeat(body): body must be callable with the iteration index "
                "(std::size_t) or with no arguments");
  if constexpr (std::is_invocable_v<B&, std::size_t>) {
    static_assert(detail::kReturnsFuture<B, std::size_t>,
                  "weft::Repeat(body): body must return a weft::Future");
  } else {
    static_assert(detail::kReturnsFuture<B>,
                  "weft::Repeat(body): body must return a weft::Future");
  }
  return detail::StartLoop<detail::RepeatLoop<B, /*kCounted=*/false>>(
      std::size_t{0}, std::forward<Body>(body));
}

// Runs `body` `count` times in sequence, each iteration once the previous body's
// future has completed. `body` may take the iteration index (std::size_t, 0 to
// count - 1) or nothing. The result becomes ready after the count-th body's future
// completes (at once for count == 0), or fails with the first failure (no
// further iteration runs).
template <class Body>
Future<void> Repeat(std::size_t count, Body&& body) {
  using B = std::decay_t<Body>;
  static_assert(std::is_invocable_v<B&, std::size_t> || std::is_invocable_v<B&>,
                "weft::Repeat(count, body): body must be callable with the iteration "
                "index (std::size_t) or with no arguments");
  if constexpr (std::is_invocable_v<B&, std::size_t>) {
    static_assert(detail::kReturnsFuture<B, std::size_t>,
                  "weft::Repeat(count, body): body must return a weft::Future");
  } else {
    static_assert(detail::kReturnsFuture<B>,
                  "weft::Repeat(count, body): body must return a weft::Future");
  }
  return detail::StartLoop<detail::RepeatLoop<B, /*kCounted=*/true>>(
      count, std::forward<Body>(body));
}

// Calls `body(*it)` for each `it` in [begin, end), in order, one at a time: the
// iterator is advanced, and the next body called, only once the previous body's
// future has completed. The result becomes ready after the last one completes (at
// once for an empty range), or fails with the first failure (a body's future
// failing, or `body` or the iterators throwing). The iterators are copied into the
// loop; what they refer to must outlive the loop, i.e. stay valid until its
// future is ready.
template <class Iterator, class Sentinel, class Body>
Future<void> DoForEach(Iterator begin, Sentinel end, Body&& body) {
  using B = std::decay_t<Body>;
  using Range = detail::IteratorRange<Iterator, Sentinel>;
  static_assert(std::is_invocable_v<B&, decltype(*begin)>,
                "weft::DoForEach: body must be callable with an element");
  static_assert(detail::kReturnsFuture<B, decltype(*begin)>,
                "weft::DoForEach: body must return a weft::Future");
  return detail::StartLoop<detail::ForEachLoop<Range, B>>(
      Range{std::move(begin), std::move(end)}, std::forward<Body>(body));
}

// DoForEach over a container or any range that std::begin / std::end accept. An
// lvalue range is referenced, not copied: it must outlive the loop (stay valid,
// and not be modified so as to invalidate its iterators, until the loop's future
// is ready). An rvalue range (a temporary, std::move(v)) is moved into the loop,
// which owns it and destroys it when the loop ends. `body` receives each element
// as the range's iterator yields it (a reference into the range, for containers).
template <class Range, class Body>
Future<void> DoForEach(Range&& range, Body&& body) {
  using B = std::decay_t<Body>;
  using Element = decltype(*std::begin(std::declval<Range&>()));
  static_assert(std::is_invocable_v<B&, Element>,
                "weft::DoForEach: body must be callable with an element of the range");
  static_assert(detail::kReturnsFuture<B, Element>,
                "weft::DoForEach: body must return a weft::Future");
  // Range is `R&` for an lvalue (kept as a reference) and `R` for an rvalue.
  return detail::StartLoop<detail::ForEachLoop<Range, B>>(std::forward<Range>(range),
                                                          std::forward<Body>(body));
}

}  // namespace weft

#endif  // WEFT_RUNTIME_FUTURE_LOOP_H_
