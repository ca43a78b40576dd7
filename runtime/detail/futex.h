// Thin wrappers over the Linux futex syscall on a 32-bit atomic word.
#ifndef WEFT_RUNTIME_DETAIL_FUTEX_H_
#define WEFT_RUNTIME_DETAIL_FUTEX_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace weft::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

// Sleeps while *word == expected (checked atomically by the kernel). May return
// spuriously; callers re-check their condition.
inline void FutexWait(std::atomic<std::uint32_t>* word, std::uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
          nullptr, nullptr, 0);
}

// Like FutexWait, but gives up after `timeout_ns` nanoseconds.
inline void FutexWaitFor(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                         long timeout_ns) {
  struct timespec timeout = {timeout_ns / 1000000000, timeout_ns % 1000000000};
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected,
          &timeout, nullptr, 0);
}

// Wakes up to `count` threads sleeping on `word`.
inline void FutexWake(std::atomic<std::uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count,
          nullptr, nullptr, 0);
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_FUTEX_H_
