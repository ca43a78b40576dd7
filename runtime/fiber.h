// Starting fibers: detached (fire and forget) or joinable like std::thread.
//
//   weft::StartFiberDetached([] { HandleRequest(); });
//   weft::Fiber f([](int x) { Work(x); }, 42);
//   f.Join();
//
// Everything here may be called from fibers and from plain threads.
#ifndef WEFT_RUNTIME_FIBER_H_
#define WEFT_RUNTIME_FIBER_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "runtime/fiber_attributes.h"
#include "runtime/scheduling_group/fiber_launch.h"

namespace weft {

// Starts a fiber running `f` (a copyable or move-only callable taking no
// arguments). Returns false, having started nothing, when the fiber cannot be
// created: the runtime is not running, or no stack can be had (see Fiber's
// constructor for the reasons).
template <class F>
bool StartFiberDetached(const FiberAttributes& attrs, F&& f) {
  int error = 0;
  detail::FiberEntity* fiber = detail::PrepareFiber(attrs, std::forward<F>(f), &error);
  if (fiber == nullptr) return false;
  detail::LaunchFiber(fiber, attrs, /*joinable=*/false);
  return true;
}

template <class F>
bool StartFiberDetached(F&& f) {
  return StartFiberDetached(FiberAttributes{}, std::forward<F>(f));
}

// Starts every callable as a detached fiber, or none: returns false, having
// started nothing, when any of them cannot be created.
bool BatchStartFiberDetached(std::vector<std::function<void()>> fns,
                             const FiberAttributes& attrs = FiberAttributes{});

// A joinable fiber, used like std::thread. Not thread-safe: one Fiber object is
// used by one caller at a time; Join() may be called from a fiber or a thread.
// Destroying or assigning over a joinable Fiber aborts with a message.
class Fiber {
 public:
  Fiber() noexcept = default;

  // Runs std::invoke(decay-copy(f), decay-copy(args)...) in a new fiber.
  // Throws std::system_error when the fiber cannot be created: the runtime is not
  // running (errc::operation_not_permitted), or no stack could be mapped
  // (errc::not_enough_memory; the message names vm.max_map_count and the
  // weft_fiber_stack_enable_guard_page flag).
  template <class F, class... Args,
            class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Fiber> &&
                                     !std::is_same_v<std::decay_t<F>, FiberAttributes>>>
  explicit Fiber(F&& f, Args&&... args)
      : Fiber(FiberAttributes{}, std::forward<F>(f), std::forward<Args>(args)...) {}

  template <class F, class... Args>
  Fiber(const FiberAttributes& attrs, F&& f, Args&&... args) {
    int error = 0;
    fiber_ = detail::PrepareFiber(
        attrs,
        [fn = std::forward<F>(f),
         bound = std::make_tuple(std::forward<Args>(args)...)]() mutable {
          std::apply(std::move(fn), std::move(bound));
        },
        &error);
    if (fiber_ == nullptr) detail::ThrowFiberCreationError(error);
    detail::LaunchFiber(fiber_, attrs, /*joinable=*/true);
  }

  ~Fiber() {
    if (fiber_ != nullptr) detail::AbortJoinableFiberDestroyed();
  }

  Fiber(Fiber&& other) noexcept : fiber_(std::exchange(other.fiber_, nullptr)) {}
  Fiber& operator=(Fiber&& other) noexcept {
    if (fiber_ != nullptr) detail::AbortJoinableFiberDestroyed();
    fiber_ = std::exchange(other.fiber_, nullptr);
    return *this;
  }
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // Waits until the fiber has finished. Suspends a calling fiber; blocks a
  // calling thread. Aborts with a message if not Joinable() or if a fiber joins
  // itself.
  void Join();
  // Lets the fiber run on its own; its resources are freed when it finishes.
  // Aborts with a message if not Joinable().
  void Detach();
  bool Joinable() const noexcept { return fiber_ != nullptr; }
  // The id the fiber's own this_fiber::GetId() returns (like
  // std::thread::get_id()); 0 for a handle that is not joinable.
  std::uint64_t GetId() const noexcept {
    return fiber_ == nullptr ? 0 : detail::FiberIdOf(fiber_);
  }

 private:
  detail::FiberEntity* fiber_ = nullptr;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_FIBER_H_
