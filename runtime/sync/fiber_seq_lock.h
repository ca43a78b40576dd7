// A sequence lock: writers exclude each other, readers never block writers and
// retry when a write overlapped their read.
//
//   // writer                         // reader
//   std::lock_guard g(seq_lock);      std::uint64_t seq;
//   x.store(1, relaxed);              do {
//   y.store(2, relaxed);                seq = seq_lock.ReadBegin();
//                                       a = x.load(relaxed); b = y.load(relaxed);
//                                     } while (seq_lock.ReadRetry(seq));
//
// Thread-safe; fibers and plain threads alike. Data read inside a read section
// must be std::atomic (relaxed loads suffice): a reader may run concurrently
// with a writer, and only ReadRetry() tells it to discard what it read. A
// successful read section (ReadRetry() false) sees everything the writers
// before it wrote, and nothing of a later writer.
//
// Writers are serialized by a FiberMutex (so a waiting writer fiber is
// suspended); a reader that finds a write in progress yields (in a fiber) or
// spins briefly (on a thread) until it ends.
#ifndef WEFT_RUNTIME_SYNC_FIBER_SEQ_LOCK_H_
#define WEFT_RUNTIME_SYNC_FIBER_SEQ_LOCK_H_

#include <atomic>
#include <cstdint>

#include "runtime/sync/fiber_mutex.h"
#include "runtime/thread_annotations.h"

namespace weft {

// A capability for its writers (lock/unlock); readers hold nothing.
class WEFT_CAPABILITY("mutex") FiberSeqLock {
 public:
  FiberSeqLock() = default;
  // A reader may destroy the lock as soon as its read section succeeded, while
  // the writer whose unlock() ended the wait is still releasing writers_:
  // taking writers_ waits for that.
  ~FiberSeqLock() WEFT_NO_THREAD_SAFETY_ANALYSIS {
    writers_.lock();
    writers_.unlock();
  }
  FiberSeqLock(const FiberSeqLock&) = delete;
  FiberSeqLock& operator=(const FiberSeqLock&) = delete;

  void lock() WEFT_ACQUIRE() WEFT_NO_THREAD_SAFETY_ANALYSIS {
    writers_.lock();
    const std::uint64_t seq = seq_.load(std::memory_order_relaxed);
    seq_.store(seq + 1, std::memory_order_relaxed);  // odd: a write is in progress
    // The odd value is visible before any of the writer's data stores.
    std::atomic_thread_fence(std::memory_order_release);
  }
  void unlock() WEFT_RELEASE() WEFT_NO_THREAD_SAFETY_ANALYSIS {
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
    writers_.unlock();
  }

  // Starts a read section; returns the sequence to pass to ReadRetry(). Waits
  // while a write is in progress.
  std::uint64_t ReadBegin() const {
    std::uint64_t seq = seq_.load(std::memory_order_acquire);
    for (unsigned waits = 0; seq & 1; ++waits) {
      WaitForWriter(waits);
      seq = seq_.load(std::memory_order_acquire);
    }
    return seq;
  }
  // True if a write overlapped the read section begun with `seq`: discard what
  // was read and start again.
  bool ReadRetry(std::uint64_t seq) const {
    std::atomic_thread_fence(std::memory_order_acquire);
    return seq_.load(std::memory_order_relaxed) != seq;
  }

 private:
  // The `waits`-th wait for one write to end.
  static void WaitForWriter(unsigned waits);

  std::atomic<std::uint64_t> seq_{0};
  FiberMutex writers_;
};

}  // namespace weft

#endif  // WEFT_RUNTIME_SYNC_FIBER_SEQ_LOCK_H_
