#include "runtime/sync/fiber_shared_mutex.h"

namespace weft {

// The waiting bits change only under wait_lock_, together with the queues they
// describe; the reader count and the writer bit also change outside it (fast
// paths), which is why every transition below is a compare-and-swap or an
// atomic or/and.

FiberSharedMutex::~FiberSharedMutex() {
  // An unlock that admitted a waiter may still hold wait_lock_ as that waiter
  // returns and destroys the mutex: taking the lock waits until it is done (a
  // fast-path unlock's one atomic operation is its last access anyway).
  wait_lock_.lock();
  const std::uint32_t state = state_.load(std::memory_order_relaxed);
  wait_lock_.unlock();
  WEFT_CHECK(state == 0) << "a FiberSharedMutex was destroyed while locked or with "
                            "waiters; unlock it and make sure no fiber or thread still "
                            "uses it";
}

std::uint32_t FiberSharedMutex::WaitingBits() const {
  return (writers_.empty() ? 0 : kWriterWaiting) |
         (readers_.empty() ? 0 : kReadersWaiting);
}

void FiberSharedMutex::LockSlow() {
  detail::Waiter waiter;
  wait_lock_.lock();
  // Block new readers; then the reader count can only fall. Acquire: if the
  // mutex is free, this read is what orders us after the last unlock (a fast-path
  // unlock does not take wait_lock_). An acquire operation rather than a fence,
  // which ThreadSanitizer does not model.
  std::uint32_t state =
      state_.fetch_or(kWriterWaiting, std::memory_order_acquire) | kWriterWaiting;
  if ((state & (kReaderMask | kWriter)) == 0 && writers_.empty()) {
    // Free, and no writer queued before us: take it.
    state_.store(kWriter | WaitingBits(), std::memory_order_relaxed);
    wait_lock_.unlock();
    return;
  }
  // The last reader out or the writer's unlock hands the lock to us.
  writers_.Park(&waiter, wait_lock_);
  std::atomic_thread_fence(std::memory_order_acquire);
}

void FiberSharedMutex::UnlockSlow(std::uint32_t state) {
  WEFT_CHECK((state & kWriter) != 0)
      << "FiberSharedMutex::unlock() on a mutex that is not locked for writing";
  wait_lock_.lock();
  if (!readers_.empty()) {
    // Phase-fair: everyone who queued to read while we wrote goes first.
    std::uint32_t admitted = 0;
    detail::Waiter* readers = readers_.PopAll();
    for (detail::Waiter* r = readers; r != nullptr; r = r->next) ++admitted;
    state_.store(admitted | WaitingBits(), std::memory_order_release);
    wait_lock_.unlock();
    detail::WaitQueue::WakeAll(readers);
    return;
  }
  detail::Waiter* writer = writers_.PopFront();
  if (writer != nullptr) {
    state_.store(kWriter | WaitingBits(), std::memory_order_release);
    wait_lock_.unlock();
    detail::WaitQueue::Wake(writer);
    return;
  }
  state_.store(0, std::memory_order_release);
  wait_lock_.unlock();
}

void FiberSharedMutex::LockSharedSlow() {
  detail::Waiter waiter;
  wait_lock_.lock();
  std::uint32_t state = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((state & (kWriter | kWriterWaiting)) == 0) {
      if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        wait_lock_.unlock();
        return;
      }
      continue;
    }
    if (state_.compare_exchange_weak(state, state | kReadersWaiting,
                                     std::memory_order_relaxed)) {
      break;
    }
  }
  // A writer's unlock admits us (counting us in the reader count).
  readers_.Park(&waiter, wait_lock_);
  std::atomic_thread_fence(std::memory_order_acquire);
}

void FiberSharedMutex::UnlockSharedSlow(std::uint32_t before) {
  WEFT_CHECK((before & kReaderMask) != 0)
      << "FiberSharedMutex::unlock_shared() on a mutex that is not locked for reading";
  if ((before & kWriterWaiting) == 0) return;  // last reader out, nobody to admit
  wait_lock_.lock();
  // Acquire: the readers that left before us (each with a release decrement)
  // happen-before the writer we admit.
  const std::uint32_t state = state_.load(std::memory_order_acquire);
  // Still no reader and no writer (no one else admitted a writer meanwhile)?
  if ((state & (kReaderMask | kWriter)) == 0 && !writers_.empty()) {
    detail::Waiter* writer = writers_.PopFront();
    state_.store(kWriter | WaitingBits(), std::memory_order_relaxed);
    wait_lock_.unlock();
    detail::WaitQueue::Wake(writer);
    return;
  }
  wait_lock_.unlock();
}

}  // namespace weft
