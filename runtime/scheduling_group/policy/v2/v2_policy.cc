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
    : group_(group),
      memory_node_(memory_node),
      queue_(run_queue_size, memory_node),
      idle_(group) {}

V2Policy::~V2Policy() = default;

void V2Policy::Start() {
  const std::size_t n = group_->worker_count();
  idle_.Start();
  may_steal_ = group_->may_steal();
  for (std::size_t i = 0; i < n; ++i) {
    workers_.push_back(MakeOnNumaNode<WorkerState>(memory_node_));
    workers_.back()->thief = GroupThief(i);
    workers_.back()->victim_cursor = i + 1;
    group_->worker(i)->set_policy_data(workers_.back().get());
  }
}

void V2Policy::WakeAllToStop() { idle_.WakeAll(); }

void V2Policy::Push(FiberEntity* fiber) {
  queue_.Push(fiber);
  // Pairs with AnnounceSleep's fence and the spinners' seq_cst count: either
  // we see a spinner or a sleeper, or they see the fiber.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForQueuedWork();
}

void V2Policy::PushBatch(FiberEntity* const* fibers, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) queue_.Push(fibers[i]);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForBatch<V2Policy>(idle_, *group_, may_steal_, count);
}

void V2Policy::Requeue(FiberWorker*, FiberEntity* fiber) {
  // Behind everything queued, so that a yielder never pins itself. Its worker
  // comes back to the global queue when its current fiber blocks, so the
  // wake-up is best effort, without a fence.
  queue_.Push(fiber);
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
  // a nudge so that a current fiber that never blocks does not hold it back.
  // The fence pairs with AnnounceSleep's and the spinners' seq_cst count, as in
  // Push: without it this check could miss a worker that was going to sleep
  // without seeing the fiber, and the fiber would wait for the current one to
  // block (the wake stress test's fiber-spawned shape caught it).
  std::atomic_thread_fence(std::memory_order_seq_cst);
  idle_.WakeIfIdleWorkerSleeps();
}

void V2Policy::PushAvoiding(FiberEntity* fiber, std::size_t avoid) {
  queue_.Push(fiber);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  idle_.WakeOneSleeper(std::uint64_t{1} << avoid);
}

FiberEntity* V2Policy::PopGlobal(FiberWorker* worker) {
  FiberEntity* fiber = queue_.Pop();
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

FiberEntity* V2Policy::WaitForWork(FiberWorker* worker) {
  for (;;) {
    FiberEntity* fiber = LookInGroup(worker);
    if (fiber == nullptr) fiber = TrySteal(worker);
    if (fiber == nullptr && idle_.TryStartSpinning()) {
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
  const bool was_last = idle_.StopSpinning();
  if (found != nullptr && was_last) {
    // Producers that saw us searching woke no one: hand a wake-up on, so that
    // someone searches for what they queued (Taskflow's last thief notifies).
    // Pairs with AnnounceSleep's fence.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!idle_.WakeOneSleeper() && may_steal_ && !LooksEmpty()) WakeIdlePeers<V2Policy>(*group_, 1);
  }
  // Found nothing: WaitForWork goes on to Sleep(), whose re-check after the
  // announcement takes what producers that saw us spinning queued.
  return found;
}

FiberEntity* V2Policy::Sleep(FiberWorker* worker) {
  // The eventcount's prepare / re-check / commit, with Block as the commit.
  const std::uint32_t generation = worker->wake_generation();
  idle_.AnnounceSleep(worker->index());
  FiberEntity* fiber = LookInGroup(worker);
  if (fiber == nullptr) fiber = TrySteal(worker, /*before_sleep=*/true);
  if (fiber == nullptr && !group_->stopping()) fiber = worker->Block(generation);
  // Normally a waker cleared our bit; after a cancel, or a late wake-up, it is
  // still set, and an awake worker must not look asleep.
  idle_.WithdrawSleep(worker->index());
  return fiber;
}

FiberEntity* V2Policy::SecondLook(FiberWorker* worker) {
  // Still announced: a producer may claim us meanwhile; WithdrawSleep sorts
  // that out.
  return LookInGroup(worker);
}

// Fibers waiting in other workers' deques count too: spawned by a fiber, they
// are pushed there with at most one wake-up between them, and each worker
// that finds one must wake the next, or the rest wait until their worker's
// current fiber blocks.
void V2Policy::PassOnWakeUp() {
  bool work_left = !LooksEmpty();
  for (std::size_t i = 0; !work_left && i < workers_.size(); ++i) {
    work_left = !workers_[i]->deque.LooksEmpty();
  }
  if (!work_left) return;
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForQueuedWork();
}

FiberEntity* V2Policy::PopForThief() {
  return queue_.PopForThief([this](FiberEntity* fiber) { Push(fiber); });
}

void V2Policy::CollectStats(SchedulingGroupStats* out) const {
  std::size_t depth = queue_.ApproxSize();
  for (const auto& worker : workers_) depth += worker->deque.Size();
  out->fibers_stolen_away = queue_.stolen_away();
  out->run_queue_depth = depth;
  out->run_queue_overflows = queue_.overflows();
}

}  // namespace weft::detail
