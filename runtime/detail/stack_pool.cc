#include "runtime/detail/mutex.h"
#include "runtime/detail/stack_pool.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <vector>

#include "debug/debug_layout.h"
#include "runtime/detail/check.h"
#include "runtime/detail/sanitizers.h"

#ifdef WEFT_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

namespace weft::detail {
namespace {

constexpr std::size_t kCacheCapacity = 64;
constexpr std::size_t kTransferBatch = 32;

// Pooled stacks are chained through their records (StackRecord::pool_next),
// off the stacks, so that pooling needs no allocation and touches no stack.
Stack StackOf(StackRecord* record) {
  return Stack{record->low, record->size, record->guard, record};
}

// The most stacks the global pool keeps with their pages resident, per size
// class: past that, stacks handed in give their pages back first. Pooled stacks
// stay hot so that starting a fiber faults in nothing (a first touch costs
// ~14 µs here); 2^18 covers every workload of the showcase (W2b starts 100k
// fibers at once), while ten million parked fibers that all finish would
// otherwise leave 40 GB resident.
std::atomic<std::size_t> max_hot_pooled_stacks{std::size_t{1} << 18};

// 0: not probed yet, 1: MADV_GUARD_INSTALL works, 2: use mprotect.
std::atomic<int> guard_mode{0};
std::atomic<std::uint64_t> mapped_count{0};
std::atomic<std::uint64_t> map_calls{0};
std::atomic<std::uint64_t> unmap_calls{0};

struct SizeClass {
  std::size_t size;
  bool guard;
  bool operator==(const SizeClass& o) const { return size == o.size && guard == o.guard; }
};

std::atomic<std::size_t> default_size{0};
std::atomic<bool> default_guard{true};

SizeClass DefaultClass() {
  return SizeClass{default_size.load(std::memory_order_relaxed),
                   default_guard.load(std::memory_order_relaxed)};
}

// Guards the links of the list of mapped stacks, the record table's free list
// and the index of registered stacks.
Mutex& RegistryMutex() {
  static Mutex* mutex = new Mutex;  // never destroyed, like the pool
  return *mutex;
}

// The userfaultfd new stacks are registered with, or -1.
std::atomic<int> hibernation_fd{-1};

// Records in chunks that are never freed (see stack_pool.h). Written under the
// registry lock; `chunk_count` is published with release so that readers
// without the lock see initialised chunks.
constexpr std::size_t kMaxRecordChunks = std::size_t{1} << 16;
std::atomic<StackRecord*> record_chunks[kMaxRecordChunks];
std::atomic<std::size_t> record_chunk_count{0};
StackRecord* free_records = nullptr;  // linked through `next`

StackRecord* NewRecordLocked() {
  if (free_records == nullptr) {
    const std::size_t n = record_chunk_count.load(std::memory_order_relaxed);
    WEFT_CHECK(n < kMaxRecordChunks)
        << "more than " << kMaxRecordChunks * kRecordsPerChunk << " fiber stacks mapped";
    auto* chunk = new StackRecord[kRecordsPerChunk];
    for (std::size_t i = kRecordsPerChunk; i-- > 0;) {
      chunk[i].next = free_records;
      free_records = &chunk[i];
    }
    record_chunks[n].store(chunk, std::memory_order_relaxed);
    record_chunk_count.store(n + 1, std::memory_order_release);
  }
  StackRecord* record = free_records;
  free_records = record->next;
  return record;
}

// Registered stacks by the address just above them, for FindHibernatableStack.
std::map<const char*, StackRecord*>& HibernatableStacks() {
  static auto* stacks = new std::map<const char*, StackRecord*>;
  return *stacks;
}

// Registers a new stack mapping with the hibernator's userfaultfd, before
// anything touches it: a mapping never touched has no anon_vma yet, so the
// kernel merges it with its registered neighbour, and a million stacks stay a
// handful of mappings (vm.max_map_count is 65530). Registered later, each
// stack would stay a mapping of its own. Best effort: an unregistered stack is
// simply never hibernated.
bool RegisterForHibernation(int fd, char* base, std::size_t length) {
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<std::uintptr_t>(base);
  reg.range.len = length;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP;
  return ioctl(fd, UFFDIO_REGISTER, &reg) == 0;
}

}  // namespace

std::size_t PageSize() {
  static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

bool MapZeroPages(int fd, char* low, std::size_t size) {
  uffdio_zeropage zero{};
  zero.range.start = reinterpret_cast<std::uintptr_t>(low);
  zero.range.len = size;
  if (ioctl(fd, UFFDIO_ZEROPAGE, &zero) == 0) return true;
  const bool present = errno == EEXIST;
  // A thread that faulted on these pages waits until told: it goes on, and
  // faults again if a page is still missing.
  ioctl(fd, UFFDIO_WAKE, &zero.range);
  return present;
}

}  // namespace weft::detail

// The sentinel of the list of every mapped stack (see stack_pool.h). A plain C
// symbol, so that a debugger finds it without knowing C++ name mangling.
// `weft_debug_layout_anchor` keeps the table that describes these records
// (debug/debug_layout.h) in every program that maps a stack: in a static
// library, nothing else would pull it in.
extern "C" {
__attribute__((used)) const void* const weft_debug_layout_anchor = &weft_debug_layout;
__attribute__((used)) weft::detail::StackRecord weft_debug_stacks = {
    &weft_debug_stacks, &weft_debug_stacks, nullptr};
}

namespace weft::detail {
namespace {

// Gives a pooled stack's pages back to the kernel. A stack registered for
// hibernation gets the zero page mapped over it again, so that its next first
// touch stays an ordinary fault.
void GiveBackPages(StackRecord* record) {
#ifdef WEFT_ASAN
  __asan_unpoison_memory_region(record->low, record->size);
#endif
  madvise(record->low, record->size, MADV_DONTNEED);
  const int fd = hibernation_fd.load(std::memory_order_acquire);
  if (fd >= 0 && record->hibernatable.load(std::memory_order_relaxed)) {
    MapZeroPages(fd, record->low, record->size);
  }
}

void RegisterStack(Stack* stack, bool hibernatable) {
  LockGuard<Mutex> lock(RegistryMutex());
  StackRecord* record = NewRecordLocked();
  stack->record = record;
  record->fiber.store(nullptr, std::memory_order_relaxed);
  record->low = stack->low;
  record->size = stack->size;
  record->guard = stack->guard;
  record->pool_next = nullptr;
  record->hibernatable.store(hibernatable, std::memory_order_release);
  record->sleep.store(StackSleep::kAwake, std::memory_order_relaxed);
  record->saved = nullptr;
  record->saved_from = nullptr;
  record->seen_fiber = nullptr;
  if (hibernatable) HibernatableStacks()[stack->low + stack->size] = record;
  record->prev = &weft_debug_stacks;
  record->next = weft_debug_stacks.next;
  weft_debug_stacks.next->prev = record;
  weft_debug_stacks.next = record;
}

bool MapStack(SizeClass cls, Stack* out, int* error) {
  const std::size_t page = PageSize();
  const std::size_t total = cls.size + (cls.guard ? page : 0);
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (p == MAP_FAILED) {
    *error = errno;
    return false;
  }
  map_calls.fetch_add(1, std::memory_order_relaxed);
  char* base = static_cast<char*>(p);
  const int fd = hibernation_fd.load(std::memory_order_acquire);
  bool hibernatable = fd >= 0 && RegisterForHibernation(fd, base, total);
  if (cls.guard) {
    int mode = guard_mode.load(std::memory_order_relaxed);
    bool installed = false;
    if (mode != 2) {
      installed = madvise(base, page, MADV_GUARD_INSTALL) == 0;
      if (mode == 0) guard_mode.store(installed ? 1 : 2, std::memory_order_relaxed);
    }
    if (!installed && mprotect(base, page, PROT_NONE) != 0) {
      *error = errno;
      munmap(base, total);
      return false;
    }
  }
  mapped_count.fetch_add(1, std::memory_order_relaxed);
  *out = Stack{base + (cls.guard ? page : 0), cls.size, cls.guard, nullptr};
  if (hibernatable && !MapZeroPages(fd, out->low, out->size)) {
    uffdio_range range{reinterpret_cast<std::uintptr_t>(base), total};
    ioctl(fd, UFFDIO_UNREGISTER, &range);
    hibernatable = false;
  }
  RegisterStack(out, hibernatable);
  return true;
}

// Unmaps `stacks`, one munmap per run of adjacent stacks: each munmap costs a
// TLB shootdown on every CPU, and stacks mapped one after another usually sit
// next to each other.
void UnmapStacks(std::vector<Stack>* stacks) {
  {
    LockGuard<Mutex> lock(RegistryMutex());
    for (const Stack& stack : *stacks) {
      StackRecord* record = RecordOf(stack);
      record->prev->next = record->next;
      record->next->prev = record->prev;
      if (record->hibernatable.load(std::memory_order_relaxed)) {
        HibernatableStacks().erase(stack.low + stack.size);
      }
      record->hibernatable.store(false, std::memory_order_relaxed);
      record->size = 0;
      record->next = free_records;
      free_records = record;
    }
  }
  const std::size_t page = PageSize();
  auto begin = [page](const Stack& s) { return s.low - (s.guard ? page : 0); };
  std::sort(stacks->begin(), stacks->end(),
            [&](const Stack& a, const Stack& b) { return begin(a) < begin(b); });
  std::size_t i = 0;
  while (i < stacks->size()) {
    char* range_begin = begin((*stacks)[i]);
    char* range_end = (*stacks)[i].low + (*stacks)[i].size;
    std::size_t j = i + 1;
    while (j < stacks->size() && begin((*stacks)[j]) == range_end) {
      range_end = (*stacks)[j].low + (*stacks)[j].size;
      ++j;
    }
#ifdef WEFT_ASAN
    // Frames that ran on these stacks left redzones in ASan's shadow, which
    // munmap does not clear: memory mapped here later would inherit them.
    __asan_unpoison_memory_region(range_begin,
                                  static_cast<std::size_t>(range_end - range_begin));
#endif
    munmap(range_begin, static_cast<std::size_t>(range_end - range_begin));
    unmap_calls.fetch_add(1, std::memory_order_relaxed);
    mapped_count.fetch_sub(j - i, std::memory_order_relaxed);
    i = j;
  }
}

// Stacks nobody uses, by size class. Never destroyed: thread caches flush into it
// from thread_local destructors that may run at any point of process exit.
class GlobalPool {
 public:
  static GlobalPool& Instance() {
    static GlobalPool* pool = new GlobalPool;
    return *pool;
  }

  // Pops one batch of stacks of `cls` (a chain linked through
  // StackRecord::pool_next and ending in nullptr) and stores its length in
  // `*taken`, or returns nullptr. With `one`, takes a single stack and leaves
  // the rest of its batch.
  //
  // Batches are kept whole, as thread caches hand them in, so that taking one
  // walks none of its records under the pool's mutex.
  StackRecord* Take(SizeClass cls, bool one, std::size_t* taken) {
    LockGuard<Mutex> lock(mu_);
    Class& c = ClassFor(cls);
    if (c.batches.empty()) {
      *taken = 0;
      return nullptr;
    }
    Batch batch = c.batches.back();
    c.batches.pop_back();
    if (one && batch.count > 1) {
      c.batches.push_back(Batch{batch.head->pool_next, batch.count - 1, batch.hot});
      batch.head->pool_next = nullptr;
      batch.count = 1;
    }
    if (batch.hot) c.hot -= batch.count;
    *taken = batch.count;
    return batch.head;
  }

  // Adds a chain of `n` stacks of `cls` (linked through StackRecord::pool_next,
  // ending in nullptr) as one batch, giving their pages back first when the
  // pool holds max_hot_pooled_stacks resident ones already.
  void Put(SizeClass cls, StackRecord* head, std::size_t n) {
    {
      LockGuard<Mutex> lock(mu_);
      Class& c = ClassFor(cls);
      if (c.hot + n <= max_hot_pooled_stacks.load(std::memory_order_relaxed)) {
        c.hot += n;
        c.batches.push_back(Batch{head, n, true});
        return;
      }
    }
    for (StackRecord* record = head; record != nullptr; record = record->pool_next) {
      GiveBackPages(record);
    }
    LockGuard<Mutex> lock(mu_);
    ClassFor(cls).batches.push_back(Batch{head, n, false});
  }

  void ReleaseAll() {
    std::vector<Class> classes;
    {
      LockGuard<Mutex> lock(mu_);
      classes.swap(classes_);
    }
    std::vector<Stack> stacks;
    for (Class& c : classes) {
      for (const Batch& batch : c.batches) {
        for (StackRecord* record = batch.head; record != nullptr;
             record = record->pool_next) {
          stacks.push_back(StackOf(record));
        }
      }
    }
    UnmapStacks(&stacks);
  }

 private:
  struct Batch {
    StackRecord* head;
    std::size_t count;
    bool hot;  // pages resident (as their last fiber left them)
  };
  struct Class {
    SizeClass cls;
    std::vector<Batch> batches;
    std::size_t hot = 0;  // stacks in hot batches
  };

  Class& ClassFor(SizeClass cls) {
    for (Class& c : classes_) {
      if (c.cls == cls) return c;
    }
    classes_.push_back(Class{cls, {}, 0});
    return classes_.back();
  }

  Mutex mu_;
  std::vector<Class> classes_;  // a handful of size classes at most
};

void RegisterThreadCacheFlush();

// Per-thread cache of stacks of one size class (the default when it was filled).
class ThreadCache {
 public:
  bool Allocate(SizeClass cls, Stack* out, int* error) {
    Adopt(cls);
    if (head_ == nullptr) {
      head_ = GlobalPool::Instance().Take(cls, /*one=*/false, &count_);
      if (head_ == nullptr) return MapStack(cls, out, error);
    }
    StackRecord* record = head_;
    head_ = record->pool_next;
    --count_;
    *out = StackOf(record);
    return true;
  }

  // Returns false if `stack` is not of this cache's class.
  bool Free(const Stack& stack) {
    Adopt(DefaultClass());
    if (!(cls_ == SizeClass{stack.size, stack.guard})) return false;
    StackRecord* record = RecordOf(stack);
    record->pool_next = head_;
    head_ = record;
    if (++count_ > kCacheCapacity) Spill(kTransferBatch);
    return true;
  }

  void Flush() { Spill(count_); }

 private:
  // Serves `cls` from now on; a runtime restarted with another default stack
  // size hands the old stacks back to the global pool.
  void Adopt(SizeClass cls) {
    if (cls_ == cls) return;
    if (cls_.size == 0) RegisterThreadCacheFlush();  // first use on this thread
    Flush();
    cls_ = cls;
  }

  void Spill(std::size_t n) {
    if (n == 0) return;
    StackRecord* head = head_;
    StackRecord* tail = head;
    for (std::size_t i = 1; i < n; ++i) tail = tail->pool_next;
    head_ = tail->pool_next;
    tail->pool_next = nullptr;
    count_ -= n;
    GlobalPool::Instance().Put(cls_, head, n);
  }

  SizeClass cls_{0, false};
  StackRecord* head_ = nullptr;
  std::size_t count_ = 0;
};

// The cache is a plain thread_local without a destructor, so accesses need no
// initialization guard; a second, guarded thread_local flushes it when the
// thread exits, and is touched once per thread.
thread_local ThreadCache thread_cache;

struct ThreadCacheFlusher {
  ~ThreadCacheFlusher() { thread_cache.Flush(); }
};

void RegisterThreadCacheFlush() {
  thread_local ThreadCacheFlusher flusher;
  (void)flusher;
}

}  // namespace

void ConfigureStackPool(std::size_t size, bool guard_page) {
  default_size.store(RoundUpToPages(size), std::memory_order_relaxed);
  default_guard.store(guard_page, std::memory_order_relaxed);
}

std::size_t RoundUpToPages(std::size_t size) {
  const std::size_t page = PageSize();
  return (size + page - 1) / page * page;
}

// A pooled stack may still carry ASan poison (redzones) from the frames of the
// fiber that used it before; the next fiber's control block, callable and frames
// may lie anywhere in it.
void UnpoisonForReuse([[maybe_unused]] const Stack& stack) {
#ifdef WEFT_ASAN
  __asan_unpoison_memory_region(stack.low, stack.size);
#endif
}

bool AllocateStack(std::size_t size, Stack* out, int* error) {
  SizeClass cls = DefaultClass();
  if (size != 0 && size != cls.size) {
    SizeClass other{size, cls.guard};
    std::size_t taken = 0;
    StackRecord* record = GlobalPool::Instance().Take(other, /*one=*/true, &taken);
    if (record == nullptr) return MapStack(other, out, error);
    *out = StackOf(record);
    UnpoisonForReuse(*out);
    return true;
  }
  if (!thread_cache.Allocate(cls, out, error)) return false;
  UnpoisonForReuse(*out);
  return true;
}

void FreeStack(const Stack& stack) {
  if (thread_cache.Free(stack)) return;
  StackRecord* record = RecordOf(stack);
  record->pool_next = nullptr;
  GlobalPool::Instance().Put(SizeClass{stack.size, stack.guard}, record, 1);
}

void SetStackHibernationFd(int fd) {
  hibernation_fd.store(fd, std::memory_order_release);
  if (fd >= 0) return;
  LockGuard<Mutex> lock(RegistryMutex());
  for (auto& [end, record] : HibernatableStacks()) {
    record->hibernatable.store(false, std::memory_order_relaxed);
  }
  HibernatableStacks().clear();
}

StackRecord* FindHibernatableStack(const void* address) {
  const char* p = static_cast<const char*>(address);
  LockGuard<Mutex> lock(RegistryMutex());
  auto it = HibernatableStacks().upper_bound(p);
  if (it == HibernatableStacks().end() || p < it->second->low) return nullptr;
  return it->second;
}

std::size_t StackRecordChunkCount() {
  return record_chunk_count.load(std::memory_order_acquire);
}

StackRecord* StackRecordChunk(std::size_t index) {
  return record_chunks[index].load(std::memory_order_relaxed);
}

void SetMaxHotPooledStacksForTesting(std::size_t n) {
  max_hot_pooled_stacks.store(n, std::memory_order_relaxed);
}

void UseProtNoneGuardPagesForTesting() { guard_mode.store(2, std::memory_order_relaxed); }

void ReleasePooledStacks() {
  thread_cache.Flush();
  GlobalPool::Instance().ReleaseAll();
}

StackPoolStats GetStackPoolStats() {
  StackPoolStats stats;
  stats.mapped = mapped_count.load(std::memory_order_relaxed);
  stats.map_calls = map_calls.load(std::memory_order_relaxed);
  stats.unmap_calls = unmap_calls.load(std::memory_order_relaxed);
  stats.guard_without_mapping = guard_mode.load(std::memory_order_relaxed) == 1;
  return stats;
}

}  // namespace weft::detail
