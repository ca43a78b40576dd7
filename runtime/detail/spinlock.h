// A test-and-test-and-set spinlock for critical sections of a few instructions
// (wait-queue links). Lockable, so std::unique_lock works. Thread-safe; never
// sleeps in the kernel (a long wait yields the CPU now and then), so it may be
// held across a fiber switch and released by the context that runs next.
#ifndef WEFT_RUNTIME_DETAIL_SPINLOCK_H_
#define WEFT_RUNTIME_DETAIL_SPINLOCK_H_

#include <sched.h>

#include <atomic>

#include "runtime/thread_annotations.h"

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
    if (__builtin_expect(!locked_.exchange(true, std::memory_order_acquire), 1)) return;
    LockContended();
  }
  bool try_lock() WEFT_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() WEFT_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  // Critical sections are a few dozen instructions, but the holder's thread can
  // be preempted inside one (a worker holds a waiter's lock until its fiber has
  // switched away): after a while the spinner yields its CPU, which on a small
  // machine is often the one the holder needs.
  static constexpr int kSpinsBeforeYield = 1024;

  __attribute__((noinline)) void LockContended() {
    int spins = 0;
    do {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < kSpinsBeforeYield) {
          CpuRelax();
        } else {
          spins = 0;
          sched_yield();
        }
      }
    } while (locked_.exchange(true, std::memory_order_acquire));
  }

  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_SPINLOCK_H_
