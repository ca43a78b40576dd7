// The one waiting mechanism behind every blocking primitive: a FIFO of parked
// waiters, each either a fiber (suspended; its worker runs other fibers) or a
// plain thread (blocked on a futex).
//
// A WaitQueue is not synchronized by itself: its owner guards it with a Spinlock
// and decides, under that lock, whether to wait. Every WaitQueue member in weft
// is declared WEFT_GUARDED_BY(that lock), so clang's thread-safety analysis
// (the thread-safety build) rejects a call on one without the lock held; Park
// and ParkUntil take the lock and release it (WEFT_RELEASE). Park() releases the lock
// only after the caller can no longer miss a Wake(): a fiber's context is saved before
// the next context releases the lock; a thread re-checks its futex word.
//
// Waiter objects live on the waiter's stack for exactly as long as it is queued.
//
// Timed waits (ParkUntil) are the timed-wait core of every primitive: the
// timeout and a Wake() race under the owner's lock, and exactly one wins. The
// waker wins by unlinking the waiter (PopFront / PopAll); the timeout wins by
// unlinking it first (under the same lock), after which no Wake() can reach it.
// A fiber's timeout is served by its scheduling group's TimerWorker; a plain
// thread waits on its futex with the deadline itself.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_WAIT_QUEUE_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_WAIT_QUEUE_H_

#include <atomic>
#include <chrono>
#include <cstdint>

#include "runtime/detail/spinlock.h"

namespace weft::detail {

struct FiberEntity;

struct Waiter {
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  FiberEntity* fiber = nullptr;         // null when the waiter is a plain thread
  std::atomic<std::uint32_t> woken{0};  // plain thread: set to 1 by Wake()
  // The epoch of the queue it was linked in, 0 once unlinked; guarded by the
  // queue's lock. See WaitQueue::Holds.
  std::uint32_t queued_in = 0;
  bool timed_out = false;               // a fiber's timeout unlinked it
};

class WaitQueue {
 public:
  WaitQueue() = default;
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  bool empty() const { return head_ == nullptr; }
  // Whether no one waits, read under `lock` (the lock guarding this queue), so
  // that a waker still inside its critical section is done with the queue:
  // what the destructors of the primitives check.
  bool EmptyUnder(Spinlock& lock) const {
    lock.lock();
    const bool empty = head_ == nullptr;
    lock.unlock();
    return empty;
  }
  // The oldest waiter, still queued; nullptr if none. Call with the lock held.
  Waiter* front() const { return head_; }

  // Whether `waiter`, linked in this queue by Park or ParkUntil, is still
  // linked. Call with the lock held. PopAll unlinks every waiter at once by
  // starting a new epoch, without walking them: a waker must not touch N
  // waiters' stacks under the lock (a hibernated fiber's stack comes back
  // on the first touch, hibernator.h).
  bool Holds(const Waiter* waiter) const { return waiter->queued_in == epoch_; }

  // Appends the caller as `waiter` and suspends it until Wake(waiter). `lock`
  // must be held and guard this queue; it is released by the time Park returns
  // (Park never re-acquires it).
  void Park(Waiter* waiter, Spinlock& lock) WEFT_RELEASE(lock);

  // Park() that gives up at `deadline`. Returns true when woken by Wake(),
  // false when the deadline passed first (the waiter is then unlinked, and no
  // Wake() will ever reach it). A deadline already past returns false at once
  // without queueing; kNoDeadline (deadline.h) is Park(). `lock` is released
  // by the time it returns, either way.
  bool ParkUntil(Waiter* waiter, Spinlock& lock,
                 std::chrono::steady_clock::time_point deadline) WEFT_RELEASE(lock);

  // Unlinks and returns the oldest waiter, or nullptr. Call with the lock held,
  // then Wake() the result (preferably after releasing the lock).
  Waiter* PopFront();

  // Unlinks every waiter and returns them as a list linked through `next`.
  Waiter* PopAll();

  // Unlinks `waiter`, which must be queued here. Call with the lock held.
  void Remove(Waiter* waiter);

  // Resumes an unlinked waiter: readies its fiber or unblocks its thread. The
  // waiter's memory may be gone as soon as this returns.
  static void Wake(Waiter* waiter);

  // Wakes every waiter of a list returned by PopAll().
  static void WakeAll(Waiter* list);

 private:
  void Link(Waiter* waiter);

  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::uint32_t epoch_ = 1;  // never 0
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_WAIT_QUEUE_H_
