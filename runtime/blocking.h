// RunBlocking: calls code that blocks its thread (a C library without a
// non-blocking API, a database driver, a file system call, a long computation)
// from a fiber, without stalling the worker the fiber runs on.
//
//   std::string text = weft::RunBlocking([&] { return ReadWholeFile(path); });
//   weft::RunBlocking([&] { legacy_client.Flush(); });   // void works too
//
// The callable runs on the blocking pool, a set of plain threads shared by the
// process, while the calling fiber is parked; its worker runs other fibers
// meanwhile. The pool starts a thread when a call comes and none is idle, up
// to RuntimeOptions::blocking_pool_max_threads (--weft_blocking_pool_max_threads,
// 64 by default); further calls wait their turn in FIFO order. A thread idle for
// RuntimeOptions::blocking_pool_idle_timeout_ms (10 s by default) exits.
// GetRuntimeStats().blocking_pool shows the threads, the idle ones and the
// queue. docs/blocking.md says when to use this rather than weft::io.
#ifndef WEFT_RUNTIME_BLOCKING_H_
#define WEFT_RUNTIME_BLOCKING_H_

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "runtime/detail/blocking_pool.h"
#include "runtime/sync/fiber_event.h"

namespace weft {

namespace detail {

// Whether the caller is a fiber (not a plain thread, not a pool thread).
bool CallerIsFiber();

// A RunBlocking call in flight, on the calling fiber's stack. The pool thread
// writes the outcome, then sets `done`; the fiber reads it after `done`.
template <class F, class R>
class BlockingCall : public BlockingTask {
 public:
  explicit BlockingCall(F& f) : f_(f) { run = &BlockingCall::Run; }

  // Runs the call on the pool and parks the fiber until it has returned. When
  // the pool cannot take it (see BlockingPool::Submit), runs it right here.
  void RunAndWait() {
    if (BlockingPool::Global().Submit(this)) {
      done_.Wait();
    } else {
      Run(this);
    }
  }

  // f's value, or its exception rethrown. Once.
  R Take() {
    if (error_) std::rethrow_exception(error_);
    if constexpr (std::is_void_v<R>) {
      return;
    } else if constexpr (std::is_reference_v<R>) {
      return static_cast<R>(*value_);
    } else {
      return std::move(*value_);
    }
  }

 private:
  static void Run(BlockingTask* task) {
    auto* self = static_cast<BlockingCall*>(task);
    try {
      if constexpr (std::is_void_v<R>) {
        self->f_();
      } else if constexpr (std::is_reference_v<R>) {
        R&& result = self->f_();
        self->value_ = std::addressof(result);
      } else {
        self->value_.emplace(self->f_());
      }
    } catch (...) {
      self->error_ = std::current_exception();
    }
    // The fiber may resume and end this object's life as soon as this is set.
    self->done_.Set();
  }

  using Stored =
      std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*,
                         std::optional<std::conditional_t<std::is_void_v<R>, char, R>>>;

  F& f_;
  Stored value_{};
  std::exception_ptr error_;
  FiberEvent done_;
};

}  // namespace detail

// Runs `f()` on the blocking pool and parks the calling fiber until it returns;
// returns what it returned (a value, which must be move-constructible, a
// reference, or nothing) or rethrows the exception it threw, in the calling
// fiber. Everything the fiber did before the call happens-before f runs, and
// everything f did happens-before RunBlocking returns.
//
// Called from a plain thread (not a fiber), or from code already running on
// the pool, it simply calls f() on that thread.
//
// `f` runs on another thread: it must not use the fiber's thread-local state
// or FiberLocal values, nor wait for weft primitives that only the parked
// fiber would release. It may use weft's primitives, fibers and weft::io as a
// plain thread does (blocking its pool thread). A call that never returns
// holds a pool thread for good, and TerminateRuntime() waits for it, as it
// waits for the fiber.
//
// If the system refuses to start a pool thread while none runs, f runs on the
// worker itself (blocking it), rather than failing.
template <class F>
auto RunBlocking(F&& f) -> decltype(f()) {
  using R = decltype(f());
  if (!detail::CallerIsFiber()) return f();
  detail::BlockingCall<std::remove_reference_t<F>, R> call(f);
  call.RunAndWait();
  return call.Take();
}

}  // namespace weft

#endif  // WEFT_RUNTIME_BLOCKING_H_
