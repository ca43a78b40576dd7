#include "runtime/scheduling_group/descriptor_table.h"

#include <cstddef>

#include "runtime/detail/check.h"

namespace weft::detail {
namespace {

// Three levels of 2^11, 2^10 and 2^10 entries cover every non-negative int.
// A level is allocated when a descriptor in its range is first used and never
// freed, so a lookup is three dependent loads and never takes a lock.
constexpr int kLeafBits = 10;
constexpr int kMiddleBits = 10;
constexpr std::size_t kLeafSize = std::size_t{1} << kLeafBits;
constexpr std::size_t kMiddleSize = std::size_t{1} << kMiddleBits;
constexpr std::size_t kTopSize = std::size_t{1} << (31 - kLeafBits - kMiddleBits);

struct Leaf {
  DescriptorState slots[kLeafSize];
};
struct Middle {
  std::atomic<Leaf*> leaves[kMiddleSize] = {};
};

std::atomic<Middle*> top[kTopSize];

template <class T>
T* GetOrCreate(std::atomic<T*>& entry) {
  T* existing = entry.load(std::memory_order_acquire);
  if (existing != nullptr) return existing;
  T* fresh = new T();
  if (entry.compare_exchange_strong(existing, fresh, std::memory_order_acq_rel,
                                    std::memory_order_acquire)) {
    return fresh;
  }
  delete fresh;  // another thread installed one first
  return existing;
}

}  // namespace

DescriptorState& DescriptorSlot(int fd) {
  WEFT_CHECK(fd >= 0) << "DescriptorSlot(" << fd << ")";
  const auto n = static_cast<std::size_t>(fd);
  Middle* middle = GetOrCreate(top[n >> (kLeafBits + kMiddleBits)]);
  Leaf* leaf = GetOrCreate(middle->leaves[(n >> kLeafBits) & (kMiddleSize - 1)]);
  return leaf->slots[n & (kLeafSize - 1)];
}

DescriptorState* FindDescriptorSlot(int fd) {
  if (fd < 0) return nullptr;
  const auto n = static_cast<std::size_t>(fd);
  Middle* middle = top[n >> (kLeafBits + kMiddleBits)].load(std::memory_order_acquire);
  if (middle == nullptr) return nullptr;
  Leaf* leaf =
      middle->leaves[(n >> kLeafBits) & (kMiddleSize - 1)].load(std::memory_order_acquire);
  if (leaf == nullptr) return nullptr;
  return &leaf->slots[n & (kLeafSize - 1)];
}

std::size_t WaitersOn(int fd) {
  DescriptorState* slot = FindDescriptorSlot(fd);
  if (slot == nullptr) return 0;
  std::size_t count = 0;
  slot->lock.lock();
  for (const WaitQueue& queue : slot->waiters) {
    for (const Waiter* w = queue.front(); w != nullptr; w = w->next) ++count;
  }
  for (const RingRequest* request : slot->ring_requests) count += request != nullptr;
  slot->lock.unlock();
  return count;
}

void ForEachDescriptorSlot(void (*visit)(int fd, DescriptorState& slot, void* context),
                           void* context) {
  for (std::size_t t = 0; t != kTopSize; ++t) {
    Middle* middle = top[t].load(std::memory_order_acquire);
    if (middle == nullptr) continue;
    for (std::size_t m = 0; m != kMiddleSize; ++m) {
      Leaf* leaf = middle->leaves[m].load(std::memory_order_acquire);
      if (leaf == nullptr) continue;
      const std::size_t base = ((t << kMiddleBits) | m) << kLeafBits;
      for (std::size_t i = 0; i != kLeafSize; ++i) {
        visit(static_cast<int>(base | i), leaf->slots[i], context);
      }
    }
  }
}

}  // namespace weft::detail
