// Fiber stacks: mmapped, optionally with a guard page below, and pooled so that
// the steady-state spawn path makes no mmap/munmap call and touches no fresh page.
//
// Each thread keeps a small cache of stacks of the default size; caches refill
// from and spill to a global pool in batches. Stacks of other sizes go straight
// to the global pool. Pooled stacks stay mapped (and their touched pages stay
// resident) until ReleasePooledStacks(); returning hot stacks to the kernel would
// make the next fiber pay for fresh page faults.
//
// Guard pages are installed with MADV_GUARD_INSTALL where the kernel has it
// (Linux >= 6.13), which creates no extra memory mapping, so the number of fibers
// is not limited by vm.max_map_count; elsewhere with mprotect(PROT_NONE).
//
// Every mapped stack carries a StackRecord in its top 64 bytes, and the records
// of all mapped stacks form one process-wide list, `weft_debug_stacks`: walking it
// finds every fiber alive, which is what debug/weft.py does in a live process
// or a core file. The list changes only when a stack is mapped or unmapped, which
// the pool makes rare; starting or finishing a fiber writes one pointer.
//
// Thread-safe.
#ifndef WEFT_RUNTIME_DETAIL_STACK_POOL_H_
#define WEFT_RUNTIME_DETAIL_STACK_POOL_H_

#include <cstddef>
#include <cstdint>

namespace weft::detail {

struct FiberEntity;

struct Stack {
  char* low = nullptr;   // lowest usable byte (just above the guard page)
  std::size_t size = 0;  // bytes mapped above the guard page, StackRecord included
  bool guard = false;    // whether a guard page sits below `low`
};

// The top of a mapped stack; see the file comment. Links are changed under the
// pool's registry lock; `fiber` only by the owner of the stack.
struct alignas(64) StackRecord {
  StackRecord* prev;
  StackRecord* next;
  FiberEntity* fiber;  // the fiber using the stack, or nullptr while pooled
};

// The highest address below the stack's record: where a fiber's data may start.
inline char* StackTop(const Stack& stack) {
  return stack.low + stack.size - sizeof(StackRecord);
}
inline StackRecord* RecordOf(const Stack& stack) {
  return reinterpret_cast<StackRecord*>(StackTop(stack));
}

// Sets the size class that thread caches serve. Called by StartRuntime.
void ConfigureStackPool(std::size_t default_size, bool guard_page);

// `size` rounded up to whole pages.
std::size_t RoundUpToPages(std::size_t size);

// Gets a stack of `size` usable bytes (0 = the configured default; otherwise
// already rounded to pages). Returns false and sets *error to the mmap/mprotect
// errno when no stack can be mapped.
bool AllocateStack(std::size_t size, Stack* out, int* error);

// Returns a stack to the calling thread's cache or the global pool.
void FreeStack(const Stack& stack);

// Makes stacks mapped from now on get PROT_NONE guard pages (one extra memory
// mapping each) even where MADV_GUARD_INSTALL works: for tests of the fallback.
void UseProtNoneGuardPagesForTesting();

// Unmaps every stack in the global pool and in the calling thread's cache.
void ReleasePooledStacks();

struct StackPoolStats {
  std::uint64_t mapped = 0;            // stacks currently mapped (in use or pooled)
  std::uint64_t map_calls = 0;         // mmap calls ever made for stacks
  std::uint64_t unmap_calls = 0;       // munmap calls ever made for stacks
  bool guard_without_mapping = false;  // MADV_GUARD_INSTALL is in use
};
StackPoolStats GetStackPoolStats();

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_STACK_POOL_H_
