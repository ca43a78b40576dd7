#include "runtime/scheduling_group/policy/weft/weft_policy.h"

#include <chrono>
#include <utility>

#include "runtime/detail/spinlock.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft::detail {
namespace {

// How long an idle worker spins before it sleeps: long enough to catch work
// that arrives in bursts without a futex round trip, short enough that an idle
// runtime burns next to no CPU.
constexpr std::chrono::microseconds kSpinBudget{30};
// Spin iterations between clock reads and scans of the local run stacks.
constexpr int kSpinCheckInterval = 64;
// How long a fiber that has not run yet may stay at the bottom of the local
// run stack, under newer fibers, before it goes to the shared queue. In a tree
// of fibers that is the shallowest waiting node, and starting it early starts a
// whole subtree: breadth first, with every fiber of it alive at once. Long
// enough for a tree to unfold depth first, short enough that fibers handing
// work back and forth on top cannot starve it. (A fiber that ran before, a
// woken waiter, moves at once: that creates no work, and lets the group's
// other workers share the wake-ups.)
constexpr std::chrono::milliseconds kLocalPatience{2};
// RescueStranded: how long a worker must have gone without a switch
// (kRescueInterval: how often a running worker looks).
constexpr std::chrono::microseconds kStrandedAfter{50};

}  // namespace

WeftPolicy::WeftPolicy(SchedulingGroup* group, std::size_t run_queue_size, int memory_node,
                       Mode mode)
    : group_(group),
      memory_node_(memory_node),
      local_run_stacks_(mode == kLocalRunStacks),
      queue_(run_queue_size, memory_node),
      idle_(group) {}

WeftPolicy::~WeftPolicy() = default;

void WeftPolicy::Start() {
  const std::size_t n = group_->worker_count();
  idle_.Start();
  may_steal_ = group_->may_steal();
  for (std::size_t i = 0; i < n; ++i) {
    workers_.push_back(MakeOnNumaNode<WorkerState>(memory_node_, n));
    // Workers of a group start their steal rounds at different victims.
    workers_.back()->thief = GroupThief(i);
    group_->worker(i)->set_policy_data(workers_.back().get());
  }
}

void WeftPolicy::WakeAllToStop() { idle_.WakeAll(); }


void WeftPolicy::Push(FiberEntity* fiber) {
  queue_.Push(fiber);
  // Pairs with the fences in the spin and sleep paths: either we see their
  // spinner / sleeper state, or they see the fiber we just published.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForQueuedWork();
}

void WeftPolicy::PushBatch(FiberEntity* const* fibers, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) queue_.Push(fibers[i]);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForBatch<WeftPolicy>(idle_, *group_, may_steal_, count);
}

void WeftPolicy::Requeue(FiberWorker*, FiberEntity* fiber) { RequeueFast(fiber); }

void WeftPolicy::ReadyLocal(FiberWorker* worker, FiberEntity* fiber) {
  ReadyLocalFast(worker, fiber);
}

void WeftPolicy::PushAvoiding(FiberEntity* fiber, std::size_t avoid) {
  queue_.Push(fiber);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  idle_.WakeOneSleeper(std::uint64_t{1} << avoid);
}

FiberEntity* WeftPolicy::PickNext(FiberWorker* worker) { return PickNextFast(worker); }

__attribute__((noinline)) FiberEntity* WeftPolicy::PickWithFairness(FiberWorker* worker,
                                                                   WorkerState& my) {
  // The oldest local fiber goes behind the queue's fibers (unless it is the
  // only fiber ready; a fiber that never ran only once it has sat at the
  // bottom for kLocalPatience, as seen at these looks), and the queue is
  // served first.
  my.local_streak = 0;
  FiberEntity* moved = my.local.PopOldestIf(LooksEmpty() ? 2 : 1, [&my](FiberEntity* oldest) {
    if (oldest->last_worker != nullptr) return true;
    const auto now = std::chrono::steady_clock::now();
    if (oldest != my.oldest_local) {
      my.oldest_local = oldest;
      my.oldest_local_since = now;
      return false;
    }
    return now - my.oldest_local_since >= kLocalPatience;
  });
  if (moved != nullptr) {
    my.oldest_local = nullptr;
    Push(moved);
  }
  if (FiberEntity* fiber = PopQueue(worker)) return fiber;
  return my.local.PopNewest();
}

bool WeftPolicy::HasReadyWork(const FiberWorker* worker) const {
  return state(worker).local.size() != 0 || !LooksEmpty();
}

FiberEntity* WeftPolicy::StealLocal(FiberWorker* worker, std::size_t other, bool patient) {
  LocalRunStack<FiberEntity>& stack = workers_[other]->local;
  const std::size_t size = stack.size();
  std::uint64_t& seen = state(worker).seen_local[other];
  if (size == 0) {
    seen = ~std::uint64_t{0};
    return nullptr;
  }
  if (patient && size == 1) {
    const std::uint64_t generation = stack.generation();
    if (seen != generation) {
      seen = generation;  // give its owner until our next scan to run it
      return nullptr;
    }
  }
  return stack.PopOldest();
}

FiberEntity* WeftPolicy::StealAnyLocal(FiberWorker* worker, bool patient) {
  const std::size_t n = group_->worker_count();
  for (std::size_t i = 1; i < n; ++i) {
    if (FiberEntity* fiber = StealLocal(worker, (worker->index() + i) % n, patient)) {
      return fiber;
    }
  }
  return nullptr;
}

__attribute__((noinline)) FiberEntity* WeftPolicy::RescueStranded(FiberWorker* worker) {
  const std::size_t n = group_->worker_count();
  if (n < 2 || worker->chaos()) return nullptr;
  WorkerState& my = state(worker);
  my.rescue_cursor = (my.rescue_cursor + 1) % n;
  if (my.rescue_cursor == worker->index()) my.rescue_cursor = (my.rescue_cursor + 1) % n;
  LocalRunStack<FiberEntity>& stack = workers_[my.rescue_cursor]->local;
  WorkerState::PeerProgress& seen = my.peer_progress[my.rescue_cursor];
  if (stack.size() == 0) {
    seen.stalled_since = {};
    return nullptr;
  }
  const std::uint64_t switches = group_->worker(my.rescue_cursor)->counters().switches.Get();
  const auto now = std::chrono::steady_clock::now();
  if (seen.stalled_since == std::chrono::steady_clock::time_point{} ||
      switches != seen.switches) {
    seen.switches = switches;
    seen.stalled_since = now;
    return nullptr;
  }
  if (now - seen.stalled_since < kStrandedAfter) return nullptr;
  seen.stalled_since = {};
  FiberEntity* fiber = stack.PopOldest();
  if (fiber != nullptr) worker->counters().stranded_rescues.Add();
  return fiber;
}

FiberEntity* WeftPolicy::WaitForWork(FiberWorker* worker) {
  for (;;) {
    FiberEntity* fiber = PopQueue(worker);
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
    if (group_->stopping() && LooksEmpty()) return nullptr;
  }
}

FiberEntity* WeftPolicy::Spin(FiberWorker* worker) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinBudget;
  FiberEntity* found = nullptr;
  for (int i = 1;; ++i) {
    if ((found = PopQueue(worker)) != nullptr) break;
    if ((found = TrySteal(worker)) != nullptr) break;
    if (i % kSpinCheckInterval == 0) {
      if ((found = StealAnyLocal(worker, /*patient=*/true)) != nullptr) break;
      if ((found = worker->PollWithoutWaiting()) != nullptr) break;
      if (worker->FireDueTimers() != 0 && (found = PopQueue(worker)) != nullptr) break;
      if (group_->stopping() || std::chrono::steady_clock::now() >= deadline) break;
    }
    CpuRelax();
  }
  const bool was_last = idle_.StopSpinning();
  if (found != nullptr) {
    if (was_last) {
      // Producers that saw us spinning woke no one: whatever they queued is
      // ours to hand on. Keep a spinner around for the producers' sake (the
      // one we wake pays the syscall's latency, not them); with every worker
      // of the group busy and work still queued, an idle peer group may help.
      // The fence pairs with AnnounceSleep's: either we see a sleeper's bit
      // or it sees the queued work.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!idle_.WakeOneSleeper() && may_steal_ && !LooksEmpty()) {
        WakeIdlePeers<WeftPolicy>(*group_, 1);
      }
    }
    return found;
  }
  // A producer that saw us spinning woke no one, so its fibers may be queued
  // now. WaitForWork goes on to Sleep(), whose look at the queue after
  // announcing the sleep takes them and passes the wake-up on for the rest.
  // (Taking one here and returning it, as this once did, stranded the others
  // of a burst while every other worker slept.)
  return nullptr;
}

FiberEntity* WeftPolicy::Sleep(FiberWorker* worker) {
  const std::uint32_t generation = worker->wake_generation();
  idle_.AnnounceSleep(worker->index());
  FiberEntity* fiber = PopQueue(worker);
  if (fiber == nullptr) fiber = StealAnyLocal(worker, /*patient=*/false);
  if (fiber == nullptr) fiber = TrySteal(worker, /*before_sleep=*/true);
  if (fiber == nullptr && !group_->stopping()) fiber = worker->Block(generation);
  // If a producer had claimed us meanwhile, its wake-up is passed on with the
  // rest (WaitForWork's PassOnWakeUp). Normally the waker cleared our bit;
  // after a late wake-up from an earlier round it is still set, and an awake
  // worker must not look asleep.
  idle_.WithdrawSleep(worker->index());
  return fiber;
}

FiberEntity* WeftPolicy::SecondLook(FiberWorker* worker) {
  // Still announced, so a producer may claim us meanwhile; WithdrawSleep
  // sorts that out.
  FiberEntity* fiber = PopQueue(worker);
  if (fiber == nullptr) fiber = StealAnyLocal(worker, /*patient=*/false);
  return fiber;
}

void WeftPolicy::PassOnWakeUp() {
  if (LooksEmpty()) return;
  // Pairs with the fence in AnnounceSleep: either we see a worker's sleeper
  // bit, or that worker sees the queued fibers before it sleeps.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForQueuedWork();
}

FiberEntity* WeftPolicy::PopForThief() {
  return queue_.PopForThief([this](FiberEntity* fiber) { Push(fiber); });
}

void WeftPolicy::CollectStats(SchedulingGroupStats* out) const {
  out->fibers_stolen_away = queue_.stolen_away();
  out->run_queue_depth =
      queue_.ApproxSize();
  out->run_queue_overflows = queue_.overflows();
}

}  // namespace weft::detail
