#include "runtime/scheduling_group/policy/group_queue.h"

#include "runtime/scheduling_group/fiber_worker.h"

namespace weft::detail {

void SharedRunQueue::PushOverflow(FiberEntity* fiber) {
  LockGuard<Mutex> lock(overflow_mutex_);
  fiber->next = nullptr;
  if (overflow_tail_ == nullptr) {
    overflow_head_ = fiber;
  } else {
    overflow_tail_->next = fiber;
  }
  overflow_tail_ = fiber;
  overflow_size_.fetch_add(1, std::memory_order_relaxed);
  overflows_.fetch_add(1, std::memory_order_relaxed);
}

FiberEntity* SharedRunQueue::PopWithOverflow(FiberEntity* popped) {
  if (!overflow_mutex_.try_lock()) {
    if (popped != nullptr) return popped;  // another worker is draining
    overflow_mutex_.lock();
  }
  // Refill the ring in FIFO order as far as it has room, so overflowed fibers
  // run before anything pushed later finds a free slot.
  std::size_t moved = 0;
  while (overflow_head_ != nullptr) {
    // Read before the push: once in the ring, the fiber may run, end and have
    // its stack (which holds it) reused by a new fiber on another worker.
    FiberEntity* next = overflow_head_->next;
    if (!ring_.Push(overflow_head_)) break;
    overflow_head_ = next;
    ++moved;
  }
  if (popped == nullptr && overflow_head_ != nullptr) {
    // The ring is full of other fibers' turns yet we found it empty a moment
    // ago: take the oldest overflowed fiber directly.
    popped = overflow_head_;
    overflow_head_ = overflow_head_->next;
    ++moved;
  }
  if (overflow_head_ == nullptr) overflow_tail_ = nullptr;
  overflow_size_.fetch_sub(moved, std::memory_order_relaxed);
  overflow_mutex_.unlock();
  if (popped == nullptr) popped = ring_.Pop();
  return popped;
}

bool IdleWorkers::WakeOneSleeper(std::uint64_t exclude) {
  std::uint64_t mask = sleeping_mask_.load(std::memory_order_relaxed);
  while ((mask & ~exclude) != 0) {
    const std::uint64_t candidates = mask & ~exclude;
    const std::uint64_t bit = candidates & (~candidates + 1);
    if (sleeping_mask_.compare_exchange_weak(mask, mask & ~bit, std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
      group_->worker(__builtin_ctzll(bit))->Wake();
      return true;
    }
  }
  return false;
}

void IdleWorkers::WakeAll() {
  for (std::size_t i = 0; i < group_->worker_count(); ++i) group_->worker(i)->Wake();
}

bool IdleWorkers::TryStartSpinning() {
  int n = spinners_.load(std::memory_order_relaxed);
  while (n < kMaxSpinners) {
    if (spinners_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

FiberEntity* GroupThief::TrySteal(FiberWorker* worker, bool before_sleep) {
  SchedulingGroup* group = worker->group();
  const StealPeers& peers = group->steal_peers();
  WorkerCounters& counters = worker->counters();
  ++clock_;
  if (FiberEntity* fiber = StealIfDue(group, peers.same_node, peers.same_node_ratio,
                                      before_sleep, &counters.steals_within_numa_node)) {
    return fiber;
  }
  return StealIfDue(group, peers.other_nodes, peers.other_nodes_ratio, before_sleep,
                    &counters.steals_across_numa_nodes);
}

FiberEntity* GroupThief::StealIfDue(SchedulingGroup* group,
                                    const std::vector<SchedulingGroup*>& victims,
                                    std::size_t ratio, bool before_sleep,
                                    OwnerCounter* steals) {
  if (victims.empty() || (!before_sleep && clock_ % ratio != 0)) return nullptr;
  const std::size_t start = cursor_++;
  for (std::size_t i = 0; i < victims.size(); ++i) {
    SchedulingGroup* victim = victims[(start + i) % victims.size()];
    if (FiberEntity* fiber = victim->policy().PopForThief()) {
      // We own it now: no one else reads its group until it is queued or run.
      fiber->group = group;
      steals->Add();
      return fiber;
    }
  }
  return nullptr;
}

}  // namespace weft::detail
