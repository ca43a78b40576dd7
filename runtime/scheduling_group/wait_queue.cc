#include "runtime/scheduling_group/wait_queue.h"

#include "runtime/detail/deadline.h"
#include "runtime/detail/futex.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/scheduling_group.h"
#include "runtime/scheduling_group/timer_worker.h"

namespace weft::detail {
namespace {

// The timeout of a fiber parked by ParkUntil. Heap-allocated, since the timer
// thread may hold it after the fiber returned; one reference belongs to the
// fiber, one to the timer thread (released by OnDue or OnDrop).
struct ParkTimeout {
  enum State : std::uint32_t { kPending, kFiring, kFired, kCancelled };

  TimerEntry entry;  // first member: the TimerEntry* is the ParkTimeout*
  std::atomic<std::uint32_t> state{kPending};
  std::atomic<int> references{2};
  WaitQueue* queue;
  Spinlock* lock;
  Waiter* waiter;

  static void OnDue(TimerEntry* entry) {
    auto* self = reinterpret_cast<ParkTimeout*>(entry);
    std::uint32_t expected = kPending;
    if (!self->state.compare_exchange_strong(expected, kFiring,
                                             std::memory_order_acq_rel)) {
      Release(self);  // the fiber was woken and withdrew its timeout
      return;
    }
    Waiter* waiter = self->waiter;
    self->lock->lock();
    const bool won = self->queue->Holds(waiter);
    if (won) {
      self->queue->Remove(waiter);
      waiter->timed_out = true;
    }
    self->lock->unlock();
    // Until kFired, a fiber woken by someone else waits before it lets its
    // Waiter (on its stack) go; after Wake(), a timed-out fiber may be gone.
    self->state.store(kFired, std::memory_order_release);
    if (won) WaitQueue::Wake(waiter);
    Release(self);
  }

  static void Release(ParkTimeout* self) {
    if (self->references.fetch_sub(1, std::memory_order_acq_rel) == 1) delete self;
  }
  static void OnDrop(TimerEntry* entry) {
    Release(reinterpret_cast<ParkTimeout*>(entry));
  }
};

// Switches the calling fiber away; the context that runs next releases `lock`
// once the fiber's registers are saved (AfterSwitch::kUnlock), so no waker can
// resume it before then. The release happens in that other context, which the
// analysis cannot follow.
void SwitchAwayReleasing(FiberWorker* worker, Spinlock& lock)
    WEFT_RELEASE(lock) WEFT_NO_THREAD_SAFETY_ANALYSIS {
  worker->SwitchAway(AfterSwitch::kUnlock, &lock);
}

}  // namespace

void WaitQueue::Link(Waiter* waiter) {
  waiter->next = nullptr;
  waiter->prev = tail_;
  waiter->queued_in = epoch_;
  if (tail_ == nullptr) {
    head_ = waiter;
  } else {
    tail_->next = waiter;
  }
  tail_ = waiter;
}

void WaitQueue::Park(Waiter* waiter, Spinlock& lock) {
  FiberWorker* worker = CurrentWorker();
  waiter->fiber = worker != nullptr ? worker->current_fiber() : nullptr;
  Link(waiter);
  if (waiter->fiber != nullptr) {
    SwitchAwayReleasing(worker, lock);
    return;
  }
  lock.unlock();
  while (waiter->woken.load(std::memory_order_acquire) == 0) {
    FutexWait(&waiter->woken, 0);
  }
}

bool WaitQueue::ParkUntil(Waiter* waiter, Spinlock& lock,
                          std::chrono::steady_clock::time_point deadline) {
  if (deadline == kNoDeadline) {
    Park(waiter, lock);
    return true;
  }
  if (deadline <= std::chrono::steady_clock::now()) {
    lock.unlock();
    return false;
  }
  FiberWorker* worker = CurrentWorker();
  waiter->fiber = worker != nullptr ? worker->current_fiber() : nullptr;
  waiter->timed_out = false;
  Link(waiter);

  if (waiter->fiber == nullptr) {
    lock.unlock();
    while (waiter->woken.load(std::memory_order_acquire) == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        lock.lock();
        if (Holds(waiter)) {
          Remove(waiter);
          lock.unlock();
          return false;
        }
        lock.unlock();
        // A waker unlinked us first and is about to Wake(): it won.
        while (waiter->woken.load(std::memory_order_acquire) == 0) {
          FutexWait(&waiter->woken, 0);
        }
        return true;
      }
      FutexWaitUntil(&waiter->woken, 0, deadline);
    }
    return true;
  }

  auto* timeout = new ParkTimeout;
  timeout->entry.deadline = deadline;
  timeout->entry.on_due = &ParkTimeout::OnDue;
  timeout->entry.on_drop = &ParkTimeout::OnDrop;
  timeout->queue = this;
  timeout->lock = &lock;
  timeout->waiter = waiter;
  TimerWorker& timers = worker->group()->timer_worker();
  // The timer thread takes `lock` before it touches the waiter, so it cannot
  // act before this fiber is fully parked.
  timers.Submit(&timeout->entry);
  SwitchAwayReleasing(worker, lock);

  if (waiter->timed_out) {
    ParkTimeout::Release(timeout);
    return false;
  }
  std::uint32_t expected = ParkTimeout::kPending;
  if (timeout->state.compare_exchange_strong(expected, ParkTimeout::kCancelled,
                                             std::memory_order_acq_rel)) {
    timers.Cancel(&timeout->entry);
  } else {
    // The timer thread is looking at our waiter (and will find it unlinked).
    while (timeout->state.load(std::memory_order_acquire) != ParkTimeout::kFired) {
      CpuRelax();
    }
  }
  ParkTimeout::Release(timeout);
  return true;
}

Waiter* WaitQueue::PopFront() {
  Waiter* waiter = head_;
  if (waiter != nullptr) Remove(waiter);
  return waiter;
}

Waiter* WaitQueue::PopAll() {
  Waiter* list = head_;
  head_ = tail_ = nullptr;
  if (++epoch_ == 0) epoch_ = 1;
  return list;
}

void WaitQueue::Remove(Waiter* waiter) {
  if (waiter->prev == nullptr) {
    head_ = waiter->next;
  } else {
    waiter->prev->next = waiter->next;
  }
  if (waiter->next == nullptr) {
    tail_ = waiter->prev;
  } else {
    waiter->next->prev = waiter->prev;
  }
  waiter->next = waiter->prev = nullptr;
  waiter->queued_in = 0;
}

void WaitQueue::Wake(Waiter* waiter) {
  if (FiberEntity* fiber = waiter->fiber) {
    ReadyFiber(fiber);
    return;
  }
  waiter->woken.store(1, std::memory_order_release);
  // The thread may already have returned and reused the memory; a futex wake on
  // it is then at worst a spurious wake-up for whoever waits there, and every
  // futex user re-checks its condition.
  FutexWake(&waiter->woken, 1);
}

void WaitQueue::WakeAll(Waiter* list) {
  while (list != nullptr) {
    Waiter* next = list->next;  // read before the waiter may vanish
    Wake(list);
    list = next;
  }
}

}  // namespace weft::detail
