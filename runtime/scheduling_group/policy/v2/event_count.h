// An eventcount: lets a worker that found no work go to sleep without losing a
// notification that arrives between its last look at the queues and its sleep,
// while a notifier that finds nobody waiting pays one seq_cst fence and one load
// (no store to shared memory, no system call). This is the notifier of the v2
// scheduling policy, after the design Dmitry Vyukov described and Taskflow's
// executor uses; sleeping is a futex wait on a word of the waiter's own.
//
// Protocol, for a waiter w (one of the `capacity` waiters made at construction):
//
//   event_count.PrepareWait(w);
//   if (<work is available>) {           // re-check every queue
//     event_count.CancelWait(w);
//   } else {
//     event_count.CommitWait(w);         // sleeps unless notified since Prepare
//   }
//
// and for a notifier: make work available (a push, any memory order), then call
// NotifyOne() or NotifyAll().
//
// Why no wake-up is lost: PrepareWait counts w as a pre-waiter with a seq_cst
// read-modify-write followed by a seq_cst fence, and every notify starts with a
// seq_cst fence before it reads the state. The two fences are Dekker's pattern:
// whichever comes first in the single total order of seq_cst fences, either w's
// re-check sees the work, or the notifier's read sees w counted (as a pre-waiter,
// or on the stack of committed sleepers). In the second case the notifier
//   - grants a signal to the pre-waiters: whichever of them commits first takes
//     it and returns without sleeping, having acquired the notifier's release
//     read-modify-write, so its re-check sees the work;
//   - or pops a committed sleeper and wakes it, with the same acquire/release
//     pairing through the state and the sleeper's futex word;
//   - or sees that every pre-waiter already holds a signal: none of them will
//     sleep, and before one can sleep again it passes PrepareWait's fence, whose
//     pre-wait count lands after the state the notifier read; by the fence
//     argument again its re-check then sees the work.
// So while work that was notified remains, some thread that was waiting for it
// is, or stays, awake. The notifier's fence is what makes its fast path (a load,
// nothing written) safe; without it the load could be satisfied before the push
// became visible (a store-load reordering that x86 does perform).
// ThreadSanitizer does not model fences; under WEFT_TSAN a notify reads the state
// with a read-modify-write (acq_rel) instead, which PrepareWait's read-modify-
// write either follows (and acquires the work from) or precedes (and is seen),
// the same guarantee in terms TSan checks.
//
// Thread-safety: thread-safe. Waiters are plain threads (a fiber must not call
// CommitWait: it would block its worker). Each Waiter belongs to one thread at a
// time and goes through Prepare -> Cancel | Commit; misuse that the state can
// reveal (Cancel or Commit without Prepare, a Waiter prepared twice, a foreign
// Waiter) aborts with a message. Notify* may be called from any thread, fiber or
// not, and never blocks. Wake-ups are not spurious from the caller's view:
// CommitWait returns only after a notify (or a signal granted by one). A waiter
// may receive a notification meant for work another thread has taken, so callers
// always re-check their queues after CommitWait returns.
//
// The EventCount must outlive every call on it; destroying it while a thread is
// inside CommitWait is undefined.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_EVENT_COUNT_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_EVENT_COUNT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "runtime/detail/check.h"
#include "runtime/detail/futex.h"
#include "runtime/detail/sanitizers.h"

namespace weft::detail {

class EventCount {
 public:
  // One sleeping thread's slot. Obtained from EventCount::waiter(i).
  class alignas(64) Waiter {
   public:
    Waiter(const Waiter&) = delete;
    Waiter& operator=(const Waiter&) = delete;

   private:
    friend class EventCount;
    Waiter() = default;

    // The index of the committed sleeper below this one on the stack (kNoWaiter
    // at the bottom); written by the waiter before it pushes itself, read by the
    // notifier that pops it.
    std::atomic<std::uint64_t> next{0};
    // 0 while the waiter sleeps, 1 once a notifier popped it: the futex word.
    std::atomic<std::uint32_t> woken{0};
    // Owner thread only: catches Prepare/Cancel/Commit out of order.
    bool prepared = false;
  };

  // The largest number of waiters an EventCount supports.
  static constexpr std::size_t kMaxWaiters = 1024;

  // Makes `capacity` waiters, 1 <= capacity <= kMaxWaiters (aborts otherwise).
  explicit EventCount(std::size_t capacity)
      : capacity_(CheckedCapacity(capacity)), waiters_(new Waiter[capacity]) {}

  EventCount(const EventCount&) = delete;
  EventCount& operator=(const EventCount&) = delete;

  std::size_t capacity() const { return capacity_; }

  // Waiter `index` < capacity(); the same object for the EventCount's lifetime.
  Waiter* waiter(std::size_t index) {
    WEFT_CHECK(index < capacity_) << "EventCount::waiter(" << index
                                  << ") out of range: " << capacity_ << " waiters";
    return &waiters_[index];
  }

  // Announces that `w`'s thread is about to sleep. From here until CancelWait or
  // CommitWait, every notify counts `w` as a waiter. Must be followed by a
  // re-check of the condition being waited for.
  void PrepareWait(Waiter* w) {
    CheckOwn(w);
    WEFT_CHECK(!w->prepared) << "EventCount::PrepareWait twice without Cancel/Commit";
    w->prepared = true;
    state_.fetch_add(kPrewaiterOne, std::memory_order_seq_cst);
#if !defined(WEFT_TSAN)
    std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
  }

  // Withdraws a PrepareWait because the re-check found work. If a notify had
  // already signalled every pre-waiter, the signal is taken away with `w` (its
  // thread is awake and about to work, which is what the signal asked for).
  void CancelWait(Waiter* w) {
    EndPrepared(w);
    std::uint64_t state = state_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint64_t next = state - kPrewaiterOne;
      if (Signals(state) == Prewaiters(state)) next -= kSignalOne;
      if (state_.compare_exchange_weak(state, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        return;
      }
    }
  }

  // Blocks the calling thread until a notify wakes `w`; returns at once if a
  // notify since PrepareWait left a signal for the pre-waiters. Re-check the
  // queues after it returns.
  void CommitWait(Waiter* w) {
    EndPrepared(w);
    const std::uint64_t self = static_cast<std::uint64_t>(w - waiters_.get());
    std::uint64_t state = state_.load(std::memory_order_relaxed);
    for (;;) {
      std::uint64_t next;
      const bool signalled = Signals(state) != 0;
      if (signalled) {
        next = state - kPrewaiterOne - kSignalOne;
      } else {
        // Move from the pre-waiters onto the stack of sleepers; the tag makes a
        // notifier's pop fail if the stack changed since it read `next`.
        w->next.store(Top(state), std::memory_order_relaxed);
        w->woken.store(0, std::memory_order_relaxed);
        next = ((state & ~kTopMask) - kPrewaiterOne + kTagOne) | self;
      }
      if (state_.compare_exchange_weak(state, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
        if (signalled) return;
        break;
      }
    }
    // The futex re-checks `woken` in the kernel, so a wake between our load and
    // the sleep is not lost; returns without a notify are retried.
    while (w->woken.load(std::memory_order_acquire) == 0) {
      FutexWait(&w->woken, 0);
    }
  }

  // Wakes one waiter, if any: a pre-waiter is signalled (it will not sleep) in
  // preference to waking a sleeper. Costs one fence and one load when nobody
  // waits or every pre-waiter already holds a signal.
  void NotifyOne() { Notify(false); }

  // Wakes every waiter: signals every pre-waiter and wakes every sleeper.
  void NotifyAll() { Notify(true); }

  // Hints for tests and stats; stale as soon as they return.
  std::size_t SleepersHint() const {
    std::size_t count = 0;
    for (std::uint64_t i = Top(state_.load(std::memory_order_acquire)); i != kNoWaiter;
         i = waiters_[i].next.load(std::memory_order_relaxed)) {
      if (++count > capacity_) break;  // Raced with a change; the hint is stale anyway.
    }
    return count;
  }
  std::size_t PrewaitersHint() const {
    return static_cast<std::size_t>(Prewaiters(state_.load(std::memory_order_relaxed)));
  }

 private:
  // state_: [0, 11) the index of the top sleeper (kNoWaiter: none); [11, 22) the
  // number of pre-waiters; [22, 33) the signals granted to pre-waiters (never
  // more than the pre-waiters); [33, 64) a tag bumped by every push onto the
  // stack and every pop, against ABA on the stack. 11 bits hold 0..2047, enough
  // for kMaxWaiters and its sentinel.
  static constexpr int kFieldBits = 11;
  static constexpr std::uint64_t kFieldMask = (std::uint64_t{1} << kFieldBits) - 1;
  static constexpr std::uint64_t kNoWaiter = kFieldMask;
  static constexpr std::uint64_t kTopMask = kFieldMask;
  static constexpr std::uint64_t kPrewaiterOne = std::uint64_t{1} << kFieldBits;
  static constexpr std::uint64_t kSignalOne = std::uint64_t{1} << (2 * kFieldBits);
  static constexpr std::uint64_t kTagOne = std::uint64_t{1} << (3 * kFieldBits);
  static_assert(kMaxWaiters < kNoWaiter, "a waiter index must differ from kNoWaiter");

  static std::uint64_t Top(std::uint64_t s) { return s & kTopMask; }
  static std::uint64_t Prewaiters(std::uint64_t s) {
    return (s >> kFieldBits) & kFieldMask;
  }
  static std::uint64_t Signals(std::uint64_t s) {
    return (s >> (2 * kFieldBits)) & kFieldMask;
  }

  static std::size_t CheckedCapacity(std::size_t capacity) {
    WEFT_CHECK(capacity >= 1 && capacity <= kMaxWaiters)
        << "EventCount capacity must be in [1, " << kMaxWaiters << "], got " << capacity;
    return capacity;
  }

  void CheckOwn(Waiter* w) const {
    WEFT_CHECK(w >= waiters_.get() && w < waiters_.get() + capacity_)
        << "EventCount: a Waiter of another EventCount";
  }

  // Checks that `w` was prepared and marks its Prepare as ended.
  void EndPrepared(Waiter* w) const {
    CheckOwn(w);
    WEFT_CHECK(w->prepared) << "EventCount: CancelWait/CommitWait without PrepareWait";
    w->prepared = false;
  }

  void Notify(bool all) {
#if defined(WEFT_TSAN)
    std::uint64_t state = state_.fetch_add(0, std::memory_order_acq_rel);
#else
    std::atomic_thread_fence(std::memory_order_seq_cst);
    std::uint64_t state = state_.load(std::memory_order_acquire);
#endif
    for (;;) {
      const std::uint64_t prewaiters = Prewaiters(state);
      const std::uint64_t signals = Signals(state);
      if (Top(state) == kNoWaiter && signals == prewaiters) return;
      std::uint64_t next;
      if (all) {
        // Every pre-waiter gets a signal; the whole stack is taken.
        next = (state & ~(kTopMask | (kFieldMask << (2 * kFieldBits)))) |
               (prewaiters << (2 * kFieldBits)) | kNoWaiter;
        if (Top(state) != kNoWaiter) next += kTagOne;
      } else if (signals < prewaiters) {
        next = state + kSignalOne;
      } else {
        const std::uint64_t below =
            waiters_[Top(state)].next.load(std::memory_order_relaxed);
        next = ((state & ~kTopMask) + kTagOne) | below;
      }
      if (state_.compare_exchange_weak(state, next, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        break;
      }
    }
    if (!all && Signals(state) < Prewaiters(state)) return;  // Granted a signal.
    // Wake what we popped: one sleeper, or for NotifyAll the whole chain. Read
    // each `next` before waking its waiter, which may then push itself again.
    std::uint64_t index = Top(state);
    while (index != kNoWaiter) {
      Waiter& w = waiters_[index];
      index = all ? w.next.load(std::memory_order_relaxed) : kNoWaiter;
      w.woken.store(1, std::memory_order_release);
      FutexWake(&w.woken, 1);
    }
  }

  const std::size_t capacity_;
  const std::unique_ptr<Waiter[]> waiters_;
  alignas(64) std::atomic<std::uint64_t> state_{kNoWaiter};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_V2_EVENT_COUNT_H_
