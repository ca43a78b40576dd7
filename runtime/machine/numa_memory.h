// Memory that prefers one NUMA node: what a scheduling group's workers touch on
// every scheduling decision (the run queue's ring, the group and worker state)
// lives on the node whose CPUs those workers run on.
#ifndef WEFT_RUNTIME_MACHINE_NUMA_MEMORY_H_
#define WEFT_RUNTIME_MACHINE_NUMA_MEMORY_H_

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace weft::detail {

// Maps `bytes` (rounded up to whole pages, zero-filled) whose pages are placed on
// NUMA node `node` when they are first touched, or on the nearest node with free
// memory (a preference, not a binding, so a full node never fails the
// allocation). `node` < 0 means no preference (the kernel's default policy).
// Throws std::bad_alloc when the mapping fails.
void* AllocateOnNumaNode(std::size_t bytes, int node);
void FreeOnNumaNode(void* memory, std::size_t bytes);

template <class T>
struct NumaNodeDelete {
  void operator()(T* object) const {
    object->~T();
    FreeOnNumaNode(object, sizeof(T));
  }
};

template <class T>
using NumaNodePtr = std::unique_ptr<T, NumaNodeDelete<T>>;

// Constructs a T in memory that prefers `node` (see AllocateOnNumaNode).
template <class T, class... Args>
NumaNodePtr<T> MakeOnNumaNode(int node, Args&&... args) {
  void* memory = AllocateOnNumaNode(sizeof(T), node);
  try {
    return NumaNodePtr<T>(new (memory) T(std::forward<Args>(args)...));
  } catch (...) {
    FreeOnNumaNode(memory, sizeof(T));
    throw;
  }
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_MACHINE_NUMA_MEMORY_H_
