// The fibers that the fibers running on one worker have made ready (started
// children, woken waiters), newest on top. The worker runs the newest first, so
// a fiber that starts children and joins them runs them depth first: its
// subtree finishes on a few warm stacks instead of every fiber of a wide tree
// being alive at once. Idle workers of the group take the oldest, which in such
// a tree are the roots of the largest subtrees.
//
// A spinlock guards it: the owner's push and pop take it uncontended (about the
// cost of the atomic exchange a single slot would need), and only idle workers
// ever contend for it. size() and generation() may be read without it. It grows
// as needed (a fiber may start any number of children before it blocks) and
// keeps its capacity until the runtime stops.
//
// Thread-safe.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_LOCAL_RUN_STACK_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_LOCAL_RUN_STACK_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "runtime/detail/mutex.h"
#include "runtime/detail/spinlock.h"

namespace weft::detail {

template <class T>
class LocalRunStack {
 public:
  LocalRunStack() : ring_(kInitialCapacity) {}
  LocalRunStack(const LocalRunStack&) = delete;
  LocalRunStack& operator=(const LocalRunStack&) = delete;

  void Push(T* item) {
    LockGuard<Spinlock> lock(lock_);
    if (count_ == ring_.size()) Grow();
    ring_[(head_ + count_) & (ring_.size() - 1)] = item;
    ++count_;
    Publish();
    generation_.store(generation_.load(std::memory_order_relaxed) + 1,
                      std::memory_order_relaxed);
  }

  // The newest item, or nullptr.
  T* PopNewest() {
    LockGuard<Spinlock> lock(lock_);
    if (count_ == 0) return nullptr;
    --count_;
    Publish();
    return ring_[(head_ + count_) & (ring_.size() - 1)];
  }

  // The oldest item if at least `at_least` items are held and `take(item)`
  // says so (called under the stack's lock), or nullptr.
  template <class Predicate>
  T* PopOldestIf(std::size_t at_least, Predicate take) {
    LockGuard<Spinlock> lock(lock_);
    if (count_ == 0 || count_ < at_least || !take(ring_[head_])) return nullptr;
    T* item = ring_[head_];
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
    Publish();
    return item;
  }

  // The oldest item, or nullptr; only if at least `at_least` items are held.
  T* PopOldest(std::size_t at_least = 1) {
    LockGuard<Spinlock> lock(lock_);
    if (count_ == 0 || count_ < at_least) return nullptr;
    T* item = ring_[head_];
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
    Publish();
    return item;
  }

  // Approximate unless called by the only thread that pushes and pops.
  std::size_t size() const { return size_.load(std::memory_order_relaxed); }
  // Bumped by every Push(), for thieves that give the owner time to run an item.
  std::uint64_t generation() const { return generation_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::size_t kInitialCapacity = 64;

  void Publish() WEFT_REQUIRES(lock_) { size_.store(count_, std::memory_order_relaxed); }

  // Doubles the capacity, keeping the order; under lock_.
  void Grow() WEFT_REQUIRES(lock_) {
    std::vector<T*> bigger(ring_.size() * 2);
    for (std::size_t i = 0; i < count_; ++i) {
      bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    }
    ring_.swap(bigger);
    head_ = 0;
  }

  Spinlock lock_;
  std::vector<T*> ring_ WEFT_GUARDED_BY(lock_);  // a power of two in size
  std::size_t head_ WEFT_GUARDED_BY(lock_) = 0;  // index of the oldest item
  std::size_t count_ WEFT_GUARDED_BY(lock_) = 0;
  std::atomic<std::size_t> size_{0};
  std::atomic<std::uint64_t> generation_{0};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_LOCAL_RUN_STACK_H_
