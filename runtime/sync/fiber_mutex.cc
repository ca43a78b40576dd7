#include "runtime/sync/fiber_mutex.h"

#include "runtime/scheduling_group/fiber_worker.h"

namespace weft {
namespace {

using Clock = std::chrono::steady_clock;

// Spin iterations before a contended lock parks: about the length of a short
// critical section on another worker.
constexpr int kSpinBeforePark = 128;

// Spinning pays only when the caller has nothing better to do. A fiber whose
// worker has other fibers ready parks at once: they run meanwhile, and fibers
// contending for one mutex end up queued behind its holder instead of bouncing
// its cache line between CPUs. Plain threads, whose parking costs a system
// call, always spin first.
bool ShouldSpin() {
  detail::FiberWorker* worker = detail::CurrentWorker();
  return !detail::InFiber(worker) || !worker->HasReadyWork();
}
// A waiter parked longer than this gets the lock handed to it directly.
constexpr std::chrono::milliseconds kStarvationThreshold{1};

struct MutexWaiter : detail::Waiter {
  Clock::time_point parked_at;
  bool handed_over = false;  // set by the unlocker under wait_lock_
};

}  // namespace

FiberMutex::~FiberMutex() {
  const bool waiters = !waiters_.EmptyUnder(wait_lock_);
  WEFT_CHECK(state_.load(std::memory_order_relaxed) == kUnlocked && !waiters)
      << "a FiberMutex was destroyed while locked" << (waiters ? " with waiters" : "")
      << "; unlock it and make sure no fiber or thread still uses it";
}

bool FiberMutex::LockSlow(const Clock::time_point* deadline) {
  const int spins = ShouldSpin() ? kSpinBeforePark : 0;
  for (int i = 0; i < spins; ++i) {
    std::uint32_t state = state_.load(std::memory_order_relaxed);
    if (state == kUnlocked &&
        state_.compare_exchange_weak(state, kLocked, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
    detail::CpuRelax();
  }
  // Drepper's futex mutex: whoever sets kContended may have parked waiters
  // behind it, so the unlock of a kContended mutex always looks at the queue.
  // Since the first park: a waiter that keeps losing to newcomers after being
  // woken still reaches the hand-over threshold.
  Clock::time_point first_parked{};
  while (state_.exchange(kContended, std::memory_order_acquire) != kUnlocked) {
    MutexWaiter waiter;
    wait_lock_.lock();
    // Re-checked under wait_lock_: an unlock that released the mutex after our
    // exchange takes wait_lock_ before it looks for waiters, so either we see
    // the release here or it finds us queued.
    if (state_.load(std::memory_order_relaxed) != kContended) {
      wait_lock_.unlock();
      continue;
    }
    if (first_parked == Clock::time_point{}) first_parked = Clock::now();
    waiter.parked_at = first_parked;
    bool woken;
    if (deadline == nullptr) {
      waiters_.Park(&waiter, wait_lock_);
      woken = true;
    } else {
      woken = waiters_.ParkUntil(&waiter, wait_lock_, *deadline);
    }
    if (!woken) return false;  // kContended stays set: harmless, unlock looks
    if (waiter.handed_over) return true;
    woken_.store(false, std::memory_order_relaxed);
  }
  return true;
}

void FiberMutex::UnlockSlow(std::uint32_t state) {
  WEFT_CHECK(state != kUnlocked) << "FiberMutex::unlock() on a mutex that is not locked";
  // state is kContended.
  wait_lock_.lock();
  auto* front = static_cast<MutexWaiter*>(waiters_.front());
  if (front != nullptr && Clock::now() - front->parked_at >= kStarvationThreshold) {
    // Hand over: the mutex stays locked (kContended) for the waiter.
    waiters_.PopFront();
    front->handed_over = true;
    wait_lock_.unlock();
    detail::WaitQueue::Wake(front);
    return;
  }
  state_.store(kUnlocked, std::memory_order_release);
  // While an earlier woken waiter is on its way back, waking another would only
  // add a contender. Nothing is lost: that waiter either takes the mutex (and,
  // as it leaves kContended set, its unlock wakes the next) or parks again with
  // kContended set, for the holder's unlock to see.
  detail::Waiter* next = nullptr;
  if (!woken_.load(std::memory_order_relaxed)) {
    next = waiters_.PopFront();
    if (next != nullptr) woken_.store(true, std::memory_order_relaxed);
  }
  wait_lock_.unlock();
  if (next != nullptr) detail::WaitQueue::Wake(next);
}

}  // namespace weft
