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

#include <chrono>
#include <cstdint>

#include "runtime/detail/deadline.h"
#include "runtime/sync/detail/recursive_ownership.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_timed_mutex.h"
#include "runtime/thread_annotations.h"

namespace weft {

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
