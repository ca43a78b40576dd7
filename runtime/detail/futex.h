// Thin wrappers over the Linux futex syscall on a 32-bit atomic word.
#ifndef WEFT_RUNTIME_DETAIL_FUTEX_H_
#define WEFT_RUNTIME_DETAIL_FUTEX_H_

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
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

// Like FutexWait, but gives up at `deadline` (steady_clock, which is
// CLOCK_MONOTONIC: the clock FUTEX_WAIT_BITSET measures absolute timeouts in).
inline void FutexWaitUntil(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                           std::chrono::steady_clock::time_point deadline) {
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch())
          .count();
  if (ns <= 0) return;
  struct timespec at = {static_cast<time_t>(ns / 1000000000),
                        static_cast<long>(ns % 1000000000)};
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word),
          FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, &at, nullptr,
          FUTEX_BITSET_MATCH_ANY);
}

// Wakes up to `count` threads sleeping on `word`.
inline void FutexWake(std::atomic<std::uint32_t>* word, int count) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count,
          nullptr, nullptr, 0);
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_FUTEX_H_
