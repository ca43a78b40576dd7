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
      queue_(run_queue_size, memory_node) {}

WeftPolicy::~WeftPolicy() = default;

void WeftPolicy::Start() {
  const std::size_t n = group_->worker_count();
  all_workers_mask_ = n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
  may_steal_ = group_->may_steal();
  for (std::size_t i = 0; i < n; ++i) {
    workers_.push_back(MakeOnNumaNode<WorkerState>(memory_node_, n));
    // Workers of a group start their steal rounds at different victims.
    workers_.back()->steal_cursor = i;
    group_->worker(i)->set_policy_data(workers_.back().get());
  }
}

void WeftPolicy::WakeAllToStop() {
  for (std::size_t i = 0; i < group_->worker_count(); ++i) group_->worker(i)->Wake();
}


void WeftPolicy::Push(FiberEntity* fiber) {
  Enqueue(fiber);
  // Pairs with the fences in the spin and sleep paths: either we see their
  // spinner / sleeper state, or they see the fiber we just published.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeForQueuedWork();
}

void WeftPolicy::PushBatch(FiberEntity* const* fibers, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) Enqueue(fibers[i]);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (spinners_.load(std::memory_order_relaxed) > 0) return;
  // Each woken worker that finds more work passes a wake-up on, but waking a
  // few at once gets a large batch going sooner.
  std::size_t woken = 0;
  while (woken < count && woken < group_->worker_count() && WakeOneSleeper()) ++woken;
  if (woken < count && may_steal_) WakeIdlePeers(count - woken);
}

void WeftPolicy::Requeue(FiberWorker*, FiberEntity* fiber) { RequeueFast(fiber); }

void WeftPolicy::ReadyLocal(FiberWorker* worker, FiberEntity* fiber) {
  ReadyLocalFast(worker, fiber);
}

void WeftPolicy::PushAvoiding(FiberEntity* fiber, std::size_t avoid) {
  Enqueue(fiber);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  WakeOneSleeper(std::uint64_t{1} << avoid);
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

FiberEntity* WeftPolicy::TrySteal(FiberWorker* worker, bool before_sleep) {
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

FiberEntity* WeftPolicy::StealIfDue(FiberWorker* worker,
                                    const std::vector<SchedulingGroup*>& victims,
                                    std::size_t ratio, bool before_sleep,
                                    OwnerCounter* steals) {
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

FiberEntity* WeftPolicy::WaitForWork(FiberWorker* worker) {
  for (;;) {
    FiberEntity* fiber = PopQueue(worker);
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
  const bool was_last = StopSpinning();
  if (found != nullptr) {
    if (was_last) {
      // Producers that saw us spinning woke no one: whatever they queued is
      // ours to hand on. Keep a spinner around for the producers' sake (the
      // one we wake pays the syscall's latency, not them); with every worker
      // of the group busy and work still queued, an idle peer group may help.
      // The fence pairs with AnnounceSleep's: either we see a sleeper's bit
      // or it sees the queued work.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!WakeOneSleeper() && may_steal_ && !LooksEmpty()) WakeIdlePeers(1);
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
  AnnounceSleep(worker->index());
  FiberEntity* fiber = PopQueue(worker);
  if (fiber == nullptr) fiber = StealAnyLocal(worker, /*patient=*/false);
  if (fiber == nullptr) fiber = TrySteal(worker, /*before_sleep=*/true);
  if (fiber == nullptr && !group_->stopping()) fiber = worker->Block(generation);
  // If a producer had claimed us meanwhile, its wake-up is passed on with the
  // rest (WaitForWork's PassOnWakeUp). Normally the waker cleared our bit;
  // after a late wake-up from an earlier round it is still set, and an awake
  // worker must not look asleep.
  WithdrawSleep(worker->index());
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

std::size_t WeftPolicy::WakeIdlePeers(std::size_t wanted) {
  // Where to start among the peers, so that busy groups spread their wake-ups.
  thread_local std::size_t cursor = 0;
  const std::size_t start = cursor++;
  std::size_t woken = 0;
  const StealPeers& peers = group_->steal_peers();
  for (const auto* list : {&peers.same_node, &peers.other_nodes}) {
    for (std::size_t i = 0; i < list->size() && woken < wanted; ++i) {
      // Every group of a runtime runs the same policy.
      auto& peer = static_cast<WeftPolicy&>((*list)[(start + i) % list->size()]->policy());
      if (peer.spinners_.load(std::memory_order_relaxed) != 0) return woken;
      if (peer.WakeOneSleeper()) ++woken;
    }
  }
  return woken;
}

FiberEntity* WeftPolicy::PopForThief() {
  // Bounded, so that a queue of nothing but group-local fibers costs a thief
  // little; the next attempt goes on where this one stopped.
  constexpr int kMaxLocalSkips = 4;
  FiberEntity* first_skipped = nullptr;
  for (int skipped = 0; skipped <= kMaxLocalSkips && !LooksEmpty(); ++skipped) {
    FiberEntity* fiber = Pop();
    if (fiber == nullptr) return nullptr;
    if (!fiber->scheduling_group_local) {
      stolen_away_.fetch_add(1, std::memory_order_relaxed);
      return fiber;
    }
    // Behind the others, so that it does not hide them from the next thief. Push
    // (not Requeue): this group's workers may all have gone to sleep meanwhile.
    Push(fiber);
    if (fiber == first_skipped) break;  // went round: only local fibers are left
    if (first_skipped == nullptr) first_skipped = fiber;
  }
  return nullptr;
}

void WeftPolicy::PushOverflow(FiberEntity* fiber) {
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

FiberEntity* WeftPolicy::PopWithOverflow(FiberEntity* popped) {
  if (!overflow_mutex_.try_lock()) {
    if (popped != nullptr) return popped;  // another worker is draining
    overflow_mutex_.lock();
  }
  // Refill the ring in FIFO order as far as it has room, so overflowed fibers
  // run before anything pushed later finds a free slot.
  std::size_t moved = 0;
  while (overflow_head_ != nullptr && queue_.Push(overflow_head_)) {
    overflow_head_ = overflow_head_->next;
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
  if (popped == nullptr) popped = queue_.Pop();
  return popped;
}

bool WeftPolicy::WakeOneSleeper(std::uint64_t exclude) {
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

bool WeftPolicy::TryStartSpinning() {
  int n = spinners_.load(std::memory_order_relaxed);
  while (n < kMaxSpinners) {
    if (spinners_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

bool WeftPolicy::StopSpinning() {
  return spinners_.fetch_sub(1, std::memory_order_seq_cst) == 1;
}

void WeftPolicy::AnnounceSleep(std::size_t i) {
  sleeping_mask_.fetch_or(std::uint64_t{1} << i, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool WeftPolicy::WithdrawSleep(std::size_t i) {
  const std::uint64_t bit = std::uint64_t{1} << i;
  return (sleeping_mask_.fetch_and(~bit, std::memory_order_acq_rel) & bit) != 0;
}

void WeftPolicy::CollectStats(SchedulingGroupStats* out) const {
  out->fibers_stolen_away = stolen_away_.load(std::memory_order_relaxed);
  out->run_queue_depth =
      queue_.ApproxSize() + overflow_size_.load(std::memory_order_relaxed);
  out->run_queue_overflows = overflows_.load(std::memory_order_relaxed);
}

}  // namespace weft::detail
