#include "runtime/scheduling_group/policy/v2/v2_policy.h"

#include <chrono>
#include <optional>

#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft::detail {
namespace {

// How long an idle worker searches before it sleeps: long enough to catch work
// that arrives in bursts without a futex round trip, short enough that an idle
// runtime burns next to no CPU.
constexpr std::chrono::microseconds kSpinBudget{30};
// Search rounds between clock reads, polls and deadline checks.
constexpr int kSpinCheckInterval = 64;
// Every this many picks the global queue and the oldest fiber of the own deque
// come before the newest.
constexpr std::uint32_t kFairnessInterval = 16;
// Steal attempts on one victim that lost a race before moving on.
constexpr int kStealRetries = 4;

}  // namespace

V2Policy::V2Policy(SchedulingGroup* group, std::size_t run_queue_size, int memory_node)
    : group_(group), memory_node_(memory_node), queue_(run_queue_size, memory_node) {}

V2Policy::~V2Policy() = default;

void V2Policy::Start() {
  const std::size_t n = group_->worker_count();
  all_workers_mask_ = n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
  may_steal_ = group_->may_steal();
  for (std::size_t i = 0; i < n; ++i) {
    workers_.push_back(MakeOnNumaNode<WorkerState>(memory_node_));
    workers_.back()->steal_cursor = i;
    workers_.back()->victim_cursor = i + 1;
  }
}

void V2Policy::WakeAllToStop() {
  for (std::size_t i = 0; i < group_->worker_count(); ++i) group_->worker(i)->Wake();
}

V2Policy::WorkerState& V2Policy::state(const FiberWorker* worker) const {
  return *workers_[worker->index()];
}

void V2Policy::Push(FiberEntity* fiber) {
  Enqueue(fiber);
  // Pairs with AnnounceSleep's fence and the spinners' seq_cst count: either
  // we see a spinner or a sleeper, or they see the fiber.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForQueuedWork();
}

void V2Policy::PushBatch(FiberEntity* const* fibers, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) Enqueue(fibers[i]);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (spinners_.load(std::memory_order_relaxed) > 0) return;
  std::size_t woken = 0;
  while (woken < count && woken < group_->worker_count() && WakeOneSleeper()) ++woken;
  if (woken < count && may_steal_) WakeIdlePeers(count - woken);
}

void V2Policy::Requeue(FiberWorker*, FiberEntity* fiber) {
  // Behind everything queued, so that a yielder never pins itself. Its worker
  // comes back to the global queue when its current fiber blocks, so the
  // wake-up is best effort, without a fence.
  Enqueue(fiber);
  WakeForQueuedWork();
}

void V2Policy::ReadyLocal(FiberWorker* worker, FiberEntity* fiber) {
  if (WEFT_UNLIKELY(worker->chaos())) {
    Push(fiber);
    return;
  }
  state(worker).deque.Push(fiber);
  // Taskflow's local push: a searching worker steals it by itself, and this
  // worker runs it once its current fiber blocks; only a sleeping group needs
  // a (best-effort) nudge so that a long-running current fiber does not hold
  // it back.
  WakeIfIdleWorkerSleeps();
}

void V2Policy::PushAvoiding(FiberEntity* fiber, std::size_t avoid) {
  Enqueue(fiber);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeOneSleeper(std::uint64_t{1} << avoid);
}

FiberEntity* V2Policy::PopGlobal(FiberWorker* worker) {
  FiberEntity* fiber = Pop();
  if (WEFT_UNLIKELY(worker->chaos()) && fiber != nullptr) fiber = worker->ChaosTake(fiber);
  return fiber;
}

FiberEntity* V2Policy::PopOwn(FiberWorker* worker) {
  WorkStealingDeque<FiberEntity*>& deque = state(worker).deque;
  if (deque.LooksEmpty()) return nullptr;
  std::optional<FiberEntity*> fiber = deque.Pop();
  return fiber ? *fiber : nullptr;
}

FiberEntity* V2Policy::PickNext(FiberWorker* worker) {
  WorkerState& my = state(worker);
  if (WEFT_UNLIKELY(++my.picks % kFairnessInterval == 0)) {
    if (FiberEntity* fiber = PopGlobal(worker)) return fiber;
    // The owner may steal from itself: takes the oldest.
    if (!my.deque.LooksEmpty()) {
      StealResult<FiberEntity*> stolen = my.deque.Steal();
      if (stolen) return *stolen;
    }
  }
  if (FiberEntity* fiber = PopOwn(worker)) return fiber;
  if (FiberEntity* fiber = PopGlobal(worker)) return fiber;
  // Nothing of our own: take the oldest fiber of another worker's deque now,
  // as the idle loop would. A fiber that keeps yielding thereby rescues fibers
  // stranded behind a worker whose current fiber never blocks.
  return StealFromWorkers(worker);
}

bool V2Policy::HasReadyWork(const FiberWorker* worker) const {
  return !state(worker).deque.LooksEmpty() || !LooksEmpty();
}

FiberEntity* V2Policy::StealFromWorkers(FiberWorker* worker) {
  const std::size_t n = group_->worker_count();
  if (n < 2) return nullptr;
  WorkerState& my = state(worker);
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t victim = my.victim_cursor++ % n;
    if (victim == worker->index()) continue;
    WorkStealingDeque<FiberEntity*>& deque = workers_[victim]->deque;
    for (int attempt = 0; attempt < kStealRetries && !deque.LooksEmpty(); ++attempt) {
      StealResult<FiberEntity*> stolen = deque.Steal();
      if (stolen) return *stolen;
      if (stolen.empty()) break;
    }
  }
  return nullptr;
}

FiberEntity* V2Policy::LookInGroup(FiberWorker* worker) {
  if (FiberEntity* fiber = PopOwn(worker)) return fiber;
  if (FiberEntity* fiber = PopGlobal(worker)) return fiber;
  return StealFromWorkers(worker);
}

FiberEntity* V2Policy::TrySteal(FiberWorker* worker, bool before_sleep) {
  if (!may_steal_) return nullptr;
  const StealPeers& peers = group_->steal_peers();
  WorkerCounters& counters = worker->counters();
  ++state(worker).steal_clock;
  if (FiberEntity* fiber = StealIfDue(worker, peers.same_node, peers.same_node_ratio,
                                      before_sleep, &counters.steals_within_numa_node)) {
    return fiber;
  }
  return StealIfDue(worker, peers.other_nodes, peers.other_nodes_ratio, before_sleep,
                    &counters.steals_across_numa_nodes);
}

FiberEntity* V2Policy::StealIfDue(FiberWorker* worker,
                                  const std::vector<SchedulingGroup*>& victims,
                                  std::size_t ratio, bool before_sleep, OwnerCounter* steals) {
  WorkerState& my = state(worker);
  if (victims.empty() || (!before_sleep && my.steal_clock % ratio != 0)) return nullptr;
  const std::size_t start = my.steal_cursor++;
  for (std::size_t i = 0; i < victims.size(); ++i) {
    SchedulingGroup* victim = victims[(start + i) % victims.size()];
    if (FiberEntity* fiber = victim->policy().PopForThief()) {
      // We own it now: no one else reads its group until it is queued or run.
      fiber->group = group_;
      steals->Add();
      return fiber;
    }
  }
  return nullptr;
}

FiberEntity* V2Policy::WaitForWork(FiberWorker* worker) {
  for (;;) {
    FiberEntity* fiber = LookInGroup(worker);
    if (fiber == nullptr) fiber = TrySteal(worker);
    if (fiber == nullptr && TryStartSpinning()) {
      worker->counters().spins.Add();
      // A spinner passes the wake-up on itself.
      if (FiberEntity* spun = Spin(worker)) return spun;
    }
    if (fiber == nullptr && worker->FireDueTimers() != 0) continue;
    if (fiber == nullptr) fiber = Sleep(worker);
    if (fiber != nullptr) {
      PassOnWakeUp();
      return fiber;
    }
    if (group_->stopping() && LooksEmpty() && state(worker).deque.LooksEmpty()) {
      return nullptr;
    }
  }
}

FiberEntity* V2Policy::Spin(FiberWorker* worker) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinBudget;
  FiberEntity* found = nullptr;
  for (int i = 1;; ++i) {
    if ((found = LookInGroup(worker)) != nullptr) break;
    if ((found = TrySteal(worker)) != nullptr) break;
    if (i % kSpinCheckInterval == 0) {
      if ((found = worker->PollWithoutWaiting()) != nullptr) break;
      if (worker->FireDueTimers() != 0 && (found = LookInGroup(worker)) != nullptr) break;
      if (group_->stopping() || std::chrono::steady_clock::now() >= deadline) break;
    }
    CpuRelax();
  }
  const bool was_last = StopSpinning();
  if (found != nullptr && was_last) {
    // Producers that saw us searching woke no one: hand a wake-up on, so that
    // someone searches for what they queued (Taskflow's last thief notifies).
    // Pairs with AnnounceSleep's fence.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!WakeOneSleeper() && may_steal_ && !LooksEmpty()) WakeIdlePeers(1);
  }
  // Found nothing: WaitForWork goes on to Sleep(), whose re-check after the
  // announcement takes what producers that saw us spinning queued.
  return found;
}

FiberEntity* V2Policy::Sleep(FiberWorker* worker) {
  // The eventcount's prepare / re-check / commit, with Block as the commit.
  const std::uint32_t generation = worker->wake_generation();
  AnnounceSleep(worker->index());
  FiberEntity* fiber = LookInGroup(worker);
  if (fiber == nullptr) fiber = TrySteal(worker, /*before_sleep=*/true);
  if (fiber == nullptr && !group_->stopping()) fiber = worker->Block(generation);
  // Normally a waker cleared our bit; after a cancel, or a late wake-up, it is
  // still set, and an awake worker must not look asleep.
  WithdrawSleep(worker->index());
  return fiber;
}

FiberEntity* V2Policy::SecondLook(FiberWorker* worker) {
  // Still announced: a producer may claim us meanwhile; WithdrawSleep sorts
  // that out.
  return LookInGroup(worker);
}

void V2Policy::PassOnWakeUp() {
  if (LooksEmpty()) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForQueuedWork();
}

std::size_t V2Policy::WakeIdlePeers(std::size_t wanted) {
  thread_local std::size_t cursor = 0;
  const std::size_t start = cursor++;
  std::size_t woken = 0;
  const StealPeers& peers = group_->steal_peers();
  for (const auto* list : {&peers.same_node, &peers.other_nodes}) {
    for (std::size_t i = 0; i < list->size() && woken < wanted; ++i) {
      // Every group of a runtime runs the same policy.
      auto& peer = static_cast<V2Policy&>((*list)[(start + i) % list->size()]->policy());
      if (peer.spinners_.load(std::memory_order_relaxed) != 0) return woken;
      if (peer.WakeOneSleeper()) ++woken;
    }
  }
  return woken;
}

FiberEntity* V2Policy::PopForThief() {
  // Bounded, so that a queue of group-local fibers costs a thief little.
  constexpr int kMaxLocalSkips = 4;
  FiberEntity* first_skipped = nullptr;
  for (int skipped = 0; skipped <= kMaxLocalSkips && !LooksEmpty(); ++skipped) {
    FiberEntity* fiber = Pop();
    if (fiber == nullptr) return nullptr;
    if (!fiber->scheduling_group_local) {
      stolen_away_.fetch_add(1, std::memory_order_relaxed);
      return fiber;
    }
    // Behind the others; Push, since this group's workers may all sleep now.
    Push(fiber);
    if (fiber == first_skipped) break;
    if (first_skipped == nullptr) first_skipped = fiber;
  }
  return nullptr;
}

void V2Policy::PushOverflow(FiberEntity* fiber) {
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

FiberEntity* V2Policy::PopWithOverflow(FiberEntity* popped) {
  if (!overflow_mutex_.try_lock()) {
    if (popped != nullptr) return popped;
    overflow_mutex_.lock();
  }
  // Refill the ring in FIFO order, so overflowed fibers run before anything
  // pushed later finds a free slot.
  std::size_t moved = 0;
  while (overflow_head_ != nullptr && queue_.Push(overflow_head_)) {
    overflow_head_ = overflow_head_->next;
    ++moved;
  }
  if (popped == nullptr && overflow_head_ != nullptr) {
    popped = overflow_head_;
    overflow_head_ = overflow_head_->next;
    ++moved;
  }
  if (overflow_head_ == nullptr) overflow_tail_ = nullptr;
  overflow_size_.fetch_sub(moved, std::memory_order_relaxed);
  overflow_mutex_.unlock();
  if (popped == nullptr) popped = queue_.Pop();
  return popped;
}

bool V2Policy::WakeOneSleeper(std::uint64_t exclude) {
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

bool V2Policy::TryStartSpinning() {
  int n = spinners_.load(std::memory_order_relaxed);
  while (n < kMaxSpinners) {
    if (spinners_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

bool V2Policy::StopSpinning() {
  return spinners_.fetch_sub(1, std::memory_order_seq_cst) == 1;
}

void V2Policy::AnnounceSleep(std::size_t i) {
  sleeping_mask_.fetch_or(std::uint64_t{1} << i, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

void V2Policy::WithdrawSleep(std::size_t i) {
  sleeping_mask_.fetch_and(~(std::uint64_t{1} << i), std::memory_order_acq_rel);
}

void V2Policy::CollectStats(SchedulingGroupStats* out) const {
  std::size_t depth = queue_.ApproxSize() + overflow_size_.load(std::memory_order_relaxed);
  for (const auto& worker : workers_) depth += worker->deque.Size();
  out->fibers_stolen_away = stolen_away_.load(std::memory_order_relaxed);
  out->run_queue_depth = depth;
  out->run_queue_overflows = overflows_.load(std::memory_order_relaxed);
}

}  // namespace weft::detail
