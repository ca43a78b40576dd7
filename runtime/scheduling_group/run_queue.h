// A bounded lock-free multi-producer multi-consumer FIFO of pointers: the run
// queue that all FiberWorkers of a scheduling group share.
//
// Each slot carries a sequence number that says whose turn it is (the next
// producer's or the next consumer's), so producers and consumers only contend on
// one head or tail counter each and never block one another: a push or pop is one
// compare-and-swap plus one store in the common case. Thread-safe.
//
// Push fails when the queue is full and Pop when it is empty; the scheduling
// group turns a failed push into an overflow list, so nothing is lost.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_RUN_QUEUE_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_RUN_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <new>

#include "runtime/detail/check.h"
#include "runtime/machine/numa_memory.h"

namespace weft::detail {

template <class T>
class RunQueue {
 public:
  // `capacity` must be a power of two, at least 2. The slots prefer NUMA node
  // `numa_node` (< 0: no preference).
  explicit RunQueue(std::size_t capacity, int numa_node = -1)
      : mask_(capacity - 1), slots_(AllocateSlots(capacity, numa_node)) {
    for (std::size_t i = 0; i < capacity; ++i) {
      new (&slots_[i]) Slot{{i}, nullptr};
    }
  }
  ~RunQueue() { FreeOnNumaNode(slots_, sizeof(Slot) * capacity()); }

  RunQueue(const RunQueue&) = delete;
  RunQueue& operator=(const RunQueue&) = delete;

  // Appends `value` (non-null). Returns false, changing nothing, when full.
  bool Push(T* value) {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      std::size_t turn = slot.turn.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(turn - pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          slot.value = value;
          slot.turn.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // The consumer of the previous lap has not freed this slot.
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // Removes the oldest value; nullptr when empty (or when the oldest push has
  // claimed its slot but not yet stored into it).
  T* Pop() {
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      std::size_t turn = slot.turn.load(std::memory_order_acquire);
      auto diff = static_cast<std::ptrdiff_t>(turn - (pos + 1));
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          T* value = slot.value;
          slot.turn.store(pos + mask_ + 1, std::memory_order_release);
          return value;
        }
      } else if (diff < 0) {
        return nullptr;
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  // Cheap emptiness hint: may be stale by the time the caller acts on it.
  bool LooksEmpty() const {
    return head_.load(std::memory_order_relaxed) == tail_.load(std::memory_order_relaxed);
  }

  // Approximate number of queued values.
  std::size_t ApproxSize() const {
    std::size_t head = head_.load(std::memory_order_relaxed);
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    return tail >= head ? tail - head : 0;
  }

  std::size_t capacity() const { return mask_ + 1; }

 private:
  struct Slot {
    std::atomic<std::size_t> turn;
    T* value;
  };

  static Slot* AllocateSlots(std::size_t capacity, int numa_node) {
    WEFT_CHECK(capacity >= 2 && (capacity & (capacity - 1)) == 0)
        << "run queue capacity must be a power of two >= 2, got " << capacity;
    return static_cast<Slot*>(AllocateOnNumaNode(sizeof(Slot) * capacity, numa_node));
  }

  const std::size_t mask_;
  Slot* const slots_;
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_RUN_QUEUE_H_
