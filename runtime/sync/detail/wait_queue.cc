#include "runtime/sync/detail/wait_queue.h"

#include "runtime/detail/fiber_entity.h"
#include "runtime/detail/futex.h"
#include "runtime/scheduling_group/fiber_worker.h"

namespace weft::detail {

void WaitQueue::Park(Waiter* waiter, Spinlock& lock) {
  waiter->next = nullptr;
  FiberWorker* worker = CurrentWorker();
  waiter->fiber = worker != nullptr ? worker->current_fiber() : nullptr;
  if (tail_ == nullptr) {
    head_ = waiter;
  } else {
    tail_->next = waiter;
  }
  tail_ = waiter;

  if (waiter->fiber != nullptr) {
    worker->SwitchAway(AfterSwitch::kUnlock, &lock);
    return;
  }
  lock.unlock();
  while (waiter->woken.load(std::memory_order_acquire) == 0) {
    FutexWait(&waiter->woken, 0);
  }
}

Waiter* WaitQueue::PopFront() {
  Waiter* waiter = head_;
  if (waiter != nullptr) {
    head_ = waiter->next;
    if (head_ == nullptr) tail_ = nullptr;
  }
  return waiter;
}

Waiter* WaitQueue::PopAll() {
  Waiter* list = head_;
  head_ = tail_ = nullptr;
  return list;
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
