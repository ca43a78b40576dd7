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
// Every mapped stack has a StackRecord, kept off the stack in a table that only
// grows (records of unmapped stacks are reused, never freed), and the records of
// all mapped stacks form one process-wide list, `weft_debug_stacks`: walking it
// finds every fiber alive, which is what debug/weft.py does in a live process
// or a core file. The list changes only when a stack is mapped or unmapped, which
// the pool makes rare; starting or finishing a fiber writes one pointer. Keeping
// the record off the stack lets a parked fiber's stack pages go back to the
// kernel (hibernation, runtime/scheduling_group/hibernator.h) while the runtime
// and a debugger still find the fiber.
//
// Thread-safe.
#ifndef WEFT_RUNTIME_DETAIL_STACK_POOL_H_
#define WEFT_RUNTIME_DETAIL_STACK_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft::detail {

struct FiberEntity;

struct StackRecord;

struct Stack {
  char* low = nullptr;   // lowest usable byte (just above the guard page)
  std::size_t size = 0;  // bytes mapped above the guard page
  bool guard = false;    // whether a guard page sits below `low`
  StackRecord* record = nullptr;
};

// Where a stack's pages are while a fiber is parked on it (hibernator.h).
enum class StackSleep : std::uint32_t {
  kAwake = 0,        // resident, as the fiber left them
  kHibernating = 1,  // write-protected and being copied out
  kHibernated = 2,   // given back to the kernel; the bytes in use are in `saved`
};

// One mapped stack; see the file comment. Links are changed under the pool's
// registry lock; `fiber` only by the owner of the stack; the rest only by the
// hibernator's thread.
struct StackRecord {
  StackRecord* prev = nullptr;
  StackRecord* next = nullptr;
  std::atomic<FiberEntity*> fiber{nullptr};  // the fiber on it; nullptr while pooled
  char* low = nullptr;                       // Stack::low
  std::size_t size = 0;                      // Stack::size
  bool guard = false;                        // Stack::guard
  // Next in the pool's chain while pooled (the pool's locks or its owner).
  StackRecord* pool_next = nullptr;
  // Registered with the hibernator's userfaultfd, so its pages may be given back.
  std::atomic<bool> hibernatable{false};
  std::atomic<StackSleep> sleep{StackSleep::kAwake};
  // While hibernated: a heap copy of the bytes [saved_from, low + size).
  char* saved = nullptr;
  char* saved_from = nullptr;
  // The hibernator's notes from its last pass: the fiber it saw parked, that
  // fiber's park count then, and when it first saw that park.
  FiberEntity* seen_fiber = nullptr;
  std::uint32_t seen_parks = 0;
  std::int64_t seen_since_ms = 0;
};

// The highest address of a stack: where a fiber's data may start.
inline char* StackTop(const Stack& stack) { return stack.low + stack.size; }
inline StackRecord* RecordOf(const Stack& stack) { return stack.record; }

// Sets the size class that thread caches serve. Called by StartRuntime.
void ConfigureStackPool(std::size_t default_size, bool guard_page);

// The system's page size.
std::size_t PageSize();

// `size` rounded up to whole pages.
std::size_t RoundUpToPages(std::size_t size);

// `p` rounded down to a multiple of `alignment` (a power of two).
inline char* AlignDown(char* p, std::size_t alignment) {
  return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~(alignment - 1));
}

// Gets a stack of `size` usable bytes (0 = the configured default; otherwise
// already rounded to pages). Returns false and sets *error to the mmap/mprotect
// errno when no stack can be mapped.
bool AllocateStack(std::size_t size, Stack* out, int* error);

// Returns a stack to the calling thread's cache or the global pool.
void FreeStack(const Stack& stack);

// Makes stacks mapped from now on get PROT_NONE guard pages (one extra memory
// mapping each) even where MADV_GUARD_INSTALL works: for tests of the fallback.
void UseProtNoneGuardPagesForTesting();

// How many stacks of one size the global pool keeps with their pages resident
// (2^18 by default); stacks handed in past that give their pages back first.
void SetMaxHotPooledStacksForTesting(std::size_t n);

// Unmaps every stack in the global pool and in the calling thread's cache. Not
// while a hibernator runs: it reads the records of stacks in use without a lock.
void ReleasePooledStacks();

// Registers every stack mapped from now on with the userfaultfd `fd` (for
// missing-page and write-protect faults) and maps the kernel's zero page over
// its untouched pages, so that only pages the hibernator gives back ever fault
// to it; -1 stops registering and forgets earlier registrations (closing the
// userfaultfd undoes them). Stacks mapped before stay unregistered.
void SetStackHibernationFd(int fd);

// Maps the kernel's zero page over the missing pages of [low, low + size), part
// of a stack registered with the userfaultfd `fd`, so that touching them is an
// ordinary fault and never goes to the hibernator; wakes any thread waiting on
// them. False if the kernel mapped nothing and the pages are not there.
bool MapZeroPages(int fd, char* low, std::size_t size);

// The record of the registered stack whose usable range holds `address`, or
// nullptr.
StackRecord* FindHibernatableStack(const void* address);

// Every record ever made, in chunks of kRecordsPerChunk. Chunks are never freed,
// so a reader may walk them while stacks come and go; a record's fields are only
// meaningful while its stack is mapped (`size` != 0).
constexpr std::size_t kRecordsPerChunk = 1024;
std::size_t StackRecordChunkCount();
StackRecord* StackRecordChunk(std::size_t index);

struct StackPoolStats {
  std::uint64_t mapped = 0;            // stacks currently mapped (in use or pooled)
  std::uint64_t map_calls = 0;         // mmap calls ever made for stacks
  std::uint64_t unmap_calls = 0;       // munmap calls ever made for stacks
  bool guard_without_mapping = false;  // MADV_GUARD_INSTALL is in use
};
StackPoolStats GetStackPoolStats();

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_STACK_POOL_H_
