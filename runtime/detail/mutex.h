// The runtime's internal blocking lock and a scoped guard for it and for
// Spinlock, both visible to clang's thread-safety analysis (libstdc++'s
// std::mutex and std::lock_guard are not annotated). For locks that guard
// slow paths only (registries, overflow lists, the runtime's lifecycle); a
// thread that waits for one blocks, so a fiber must not hold one across a
// switch.
#ifndef WEFT_RUNTIME_DETAIL_MUTEX_H_
#define WEFT_RUNTIME_DETAIL_MUTEX_H_

#include <mutex>

#include "runtime/thread_annotations.h"

namespace weft::detail {

class WEFT_CAPABILITY("mutex") Mutex {
 public:
  void lock() WEFT_ACQUIRE() { mutex_.lock(); }
  bool try_lock() WEFT_TRY_ACQUIRE(true) { return mutex_.try_lock(); }
  void unlock() WEFT_RELEASE() { mutex_.unlock(); }

 private:
  std::mutex mutex_;
};

// Holds `lock` (a Mutex, a Spinlock, any annotated Lockable) for its scope.
template <class Lockable>
class WEFT_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(Lockable& lock) WEFT_ACQUIRE(lock) : lock_(lock) { lock_.lock(); }
  ~LockGuard() WEFT_RELEASE() { lock_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  Lockable& lock_;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_MUTEX_H_
