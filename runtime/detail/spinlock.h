// A test-and-test-and-set spinlock for critical sections of a few instructions
// (wait-queue links). Lockable, so std::unique_lock works. Thread-safe; never
// blocks in the kernel, so it may be held across a fiber switch and released by
// the context that runs next.
#ifndef WEFT_RUNTIME_DETAIL_SPINLOCK_H_
#define WEFT_RUNTIME_DETAIL_SPINLOCK_H_

#include <atomic>

#include "runtime/detail/thread_annotations.h"

namespace weft::detail {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

class WEFT_CAPABILITY("mutex") Spinlock {
 public:
  void lock() WEFT_ACQUIRE() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) CpuRelax();
    }
  }
  bool try_lock() WEFT_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() WEFT_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_SPINLOCK_H_
