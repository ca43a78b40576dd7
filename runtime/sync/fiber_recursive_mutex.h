// Recursive mutexes for fibers and plain threads, like std::recursive_mutex
// and std::recursive_timed_mutex: the owner may lock again, and must unlock as
// many times as it locked.
//
//   weft::FiberRecursiveMutex mutex;
//   void Add(Item item) {
//     std::lock_guard<weft::FiberRecursiveMutex> lock(mutex);
//     if (item.has_children()) for (auto& child : item.children()) Add(child);
//     ...
//   }
//
// Thread-safe; owners may be fibers or plain threads in any mix. Ownership
// belongs to the fiber (not the worker thread it runs on), so a fiber that
// locks, blocks and resumes on another worker still owns the mutex and may lock
// it again; fibers sharing a worker thread never share ownership. A plain
// thread owns it as a thread.
//
// Waiting, fairness, memory order and costs are FiberMutex's (a recursive
// lock by the owner is a compare and an increment).
//
// Misuse aborts with a message: unlock() by a fiber or thread that does not
// own the mutex, destroying a mutex that is locked or has waiters.
#ifndef WEFT_RUNTIME_SYNC_FIBER_RECURSIVE_MUTEX_H_
#define WEFT_RUNTIME_SYNC_FIBER_RECURSIVE_MUTEX_H_

#include <atomic>
#include <chrono>
#include <cstdint>

#include "runtime/detail/check.h"
#include "runtime/detail/deadline.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_timed_mutex.h"
#include "runtime/thread_annotations.h"

namespace weft {

namespace detail {

// Who is calling: the running fiber's id in a fiber, otherwise an id of the
// calling plain thread (never equal to a fiber's). Never 0.
std::uint64_t CurrentOwnerId();

// Recursion bookkeeping over a non-recursive Lockable.
template <class Mutex>
class RecursiveOwnership {
 public:
  RecursiveOwnership() = default;
  RecursiveOwnership(const RecursiveOwnership&) = delete;
  RecursiveOwnership& operator=(const RecursiveOwnership&) = delete;

  // Not analysed: the inner mutex stays held across calls by design.
  void lock() WEFT_NO_THREAD_SAFETY_ANALYSIS {
    const std::uint64_t me = CurrentOwnerId();
    if (Relock(me)) return;
    mutex_.lock();
    Own(me);
  }
  bool try_lock() WEFT_NO_THREAD_SAFETY_ANALYSIS {
    const std::uint64_t me = CurrentOwnerId();
    if (Relock(me)) return true;
    if (!mutex_.try_lock()) return false;
    Own(me);
    return true;
  }
  void unlock() WEFT_NO_THREAD_SAFETY_ANALYSIS {
    WEFT_CHECK(owner_.load(std::memory_order_relaxed) == CurrentOwnerId())
        << "unlock() of a recursive fiber mutex by a fiber or thread that does not own "
           "it; only the owner unlocks, once per lock()";
    if (--depth_ != 0) return;
    owner_.store(0, std::memory_order_relaxed);
    mutex_.unlock();
  }

 protected:
  // Only the owner ever finds its own id in owner_, so a relaxed read that
  // matches is the owner's own earlier write.
  bool Relock(std::uint64_t me) {
    if (owner_.load(std::memory_order_relaxed) != me) return false;
    ++depth_;
    return true;
  }
  void Own(std::uint64_t me) {
    owner_.store(me, std::memory_order_relaxed);
    depth_ = 1;
  }

  Mutex mutex_;

 private:
  std::atomic<std::uint64_t> owner_{0};
  std::uint64_t depth_ = 0;  // written by the owner only
};

}  // namespace detail

// A recursive FiberMutex (Lockable). See the file comment.
class FiberRecursiveMutex : public detail::RecursiveOwnership<FiberMutex> {};

// A recursive FiberTimedMutex (TimedLockable): adds try_lock_for and
// try_lock_until, which succeed at once for the owner. Zero, negative and past
// timeouts try once; max() waits as long as it takes.
class FiberRecursiveTimedMutex : public detail::RecursiveOwnership<FiberTimedMutex> {
 public:
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& timeout) {
    return TryLockUntilSteady(detail::DeadlineAfter(timeout));
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return TryLockUntilSteady(detail::ToSteadyDeadline(deadline));
  }

 private:
  bool TryLockUntilSteady(detail::SteadyTime deadline) WEFT_NO_THREAD_SAFETY_ANALYSIS {
    const std::uint64_t me = detail::CurrentOwnerId();
    if (Relock(me)) return true;
    if (!mutex_.try_lock_until(deadline)) return false;
    Own(me);
    return true;
  }
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_RECURSIVE_MUTEX_H_
