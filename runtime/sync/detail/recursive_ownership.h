// Recursion bookkeeping behind FiberRecursiveMutex and FiberRecursiveTimedMutex
// (runtime/sync/fiber_recursive_mutex.h). Internal.
#ifndef WEFT_RUNTIME_SYNC_DETAIL_RECURSIVE_OWNERSHIP_H_
#define WEFT_RUNTIME_SYNC_DETAIL_RECURSIVE_OWNERSHIP_H_

#include <atomic>
#include <cstdint>

#include "runtime/detail/check.h"
#include "runtime/thread_annotations.h"

namespace weft::detail {

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

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SYNC_DETAIL_RECURSIVE_OWNERSHIP_H_
