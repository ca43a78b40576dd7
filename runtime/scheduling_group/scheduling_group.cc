#include "runtime/scheduling_group/scheduling_group.h"

#include <cstddef>

#include "runtime/detail/check.h"
#include "runtime/detail/mutex.h"
#include "runtime/scheduling_group/fiber_entity.h"

namespace weft::detail {

SchedulingGroup::SchedulingGroup(std::size_t index, std::size_t numa_node,
                                 int memory_node, std::size_t run_queue_size,
                                 const std::vector<std::vector<int>>& worker_cpus)
    : index_(index),
      numa_node_(numa_node),
      queue_(run_queue_size, memory_node),
      timer_worker_(index) {
  WEFT_CHECK(!worker_cpus.empty() && worker_cpus.size() <= kMaxWorkers)
      << "a scheduling group needs 1.." << kMaxWorkers << " workers, got "
      << worker_cpus.size();
  for (std::size_t i = 0; i < worker_cpus.size(); ++i) {
    workers_.push_back(MakeOnNumaNode<FiberWorker>(memory_node, this, i, worker_cpus[i]));
  }
}

SchedulingGroup::~SchedulingGroup() {
  // Plain threads may keep using descriptors registered here.
  if (poller_.HasRegistrations()) poller_.MoveRegistrationsTo(FallbackPoller());
}

std::size_t SchedulingGroup::IndexOffset() {
  // SchedulingGroup is not standard-layout (it has private members of several
  // kinds), for which offsetof is conditionally supported; GCC and Clang compute
  // it exactly for a class without virtual bases.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
  return offsetof(SchedulingGroup, index_);
#pragma GCC diagnostic pop
}

void SchedulingGroup::SetStealPeers(StealPeers peers) {
  if (peers.same_node_ratio == 0) peers.same_node.clear();
  if (peers.other_nodes_ratio == 0) peers.other_nodes.clear();
  peers_ = std::move(peers);
  may_steal_ = !peers_.same_node.empty() || !peers_.other_nodes.empty();
}

void SchedulingGroup::Start() {
  const std::size_t n = workers_.size();
  all_workers_mask_ = n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
  for (auto& worker : workers_) worker->Start();
  timer_worker_.Start([this] { return !AllWorkersAsleep(); });
}

void SchedulingGroup::Stop() {
  stopping_.store(true, std::memory_order_seq_cst);
  for (auto& worker : workers_) worker->Wake();
  for (auto& worker : workers_) worker->Join();
}

void SchedulingGroup::PushBatch(FiberEntity* const* fibers, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    if (WEFT_UNLIKELY(!queue_.Push(fibers[i]))) PushOverflow(fibers[i]);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (spinners_.load(std::memory_order_relaxed) > 0) return;
  // Each woken worker that finds more work passes a wake-up on, but waking a
  // few at once gets a large batch going sooner.
  std::size_t woken = 0;
  while (woken < count && woken < workers_.size() && WakeOneSleeper()) ++woken;
  if (woken < count && may_steal_) WakeIdlePeers(count - woken);
}

std::size_t SchedulingGroup::WakeIdlePeers(std::size_t wanted) {
  // Where to start among the peers, so that busy groups spread their wake-ups.
  thread_local std::size_t cursor = 0;
  const std::size_t start = cursor++;
  std::size_t woken = 0;
  for (const auto* peers : {&peers_.same_node, &peers_.other_nodes}) {
    for (std::size_t i = 0; i < peers->size() && woken < wanted; ++i) {
      SchedulingGroup* peer = (*peers)[(start + i) % peers->size()];
      if (peer->spinners_.load(std::memory_order_relaxed) != 0) return woken;
      if (peer->WakeOneSleeper()) ++woken;
    }
  }
  return woken;
}

FiberEntity* SchedulingGroup::PopForThief() {
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

void SchedulingGroup::PushOverflow(FiberEntity* fiber) {
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

FiberEntity* SchedulingGroup::PopWithOverflow(FiberEntity* popped) {
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

bool SchedulingGroup::WakeOneSleeper(std::uint64_t exclude) {
  std::uint64_t mask = sleeping_mask_.load(std::memory_order_relaxed);
  while ((mask & ~exclude) != 0) {
    const std::uint64_t candidates = mask & ~exclude;
    const std::uint64_t bit = candidates & (~candidates + 1);
    if (sleeping_mask_.compare_exchange_weak(mask, mask & ~bit, std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
      workers_[__builtin_ctzll(bit)]->Wake();
      return true;
    }
  }
  return false;
}

bool SchedulingGroup::TryStartSpinning() {
  int n = spinners_.load(std::memory_order_relaxed);
  while (n < kMaxSpinners) {
    if (spinners_.compare_exchange_weak(n, n + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

bool SchedulingGroup::StopSpinning() {
  return spinners_.fetch_sub(1, std::memory_order_seq_cst) == 1;
}

void SchedulingGroup::AnnounceSleep(std::size_t i) {
  sleeping_mask_.fetch_or(std::uint64_t{1} << i, std::memory_order_seq_cst);
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

bool SchedulingGroup::WithdrawSleep(std::size_t i) {
  const std::uint64_t bit = std::uint64_t{1} << i;
  return (sleeping_mask_.fetch_and(~bit, std::memory_order_acq_rel) & bit) != 0;
}

std::uint64_t SchedulingGroup::CreatedCount() const {
  std::uint64_t n = external_created_.load(std::memory_order_seq_cst);
  for (const auto& worker : workers_) n += worker->CreatedCount();
  return n;
}

std::uint64_t SchedulingGroup::FinishedCount() const {
  std::uint64_t n = 0;
  for (const auto& worker : workers_) n += worker->FinishedCount();
  return n;
}

void SchedulingGroup::CollectStats(SchedulingGroupStats* out) const {
  out->numa_node = numa_node_;
  out->workers.resize(workers_.size());
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->CollectStats(&out->workers[i]);
  }
  out->fibers_created = external_created_.load(std::memory_order_relaxed);
  out->fibers_finished = 0;
  for (const WorkerStats& w : out->workers) {
    out->fibers_created += w.fibers_created;
    out->fibers_finished += w.fibers_finished;
    out->spins += w.spins;
    out->sleeps += w.sleeps;
    out->wakeups += w.wakeups;
    out->steals_within_numa_node += w.steals_within_numa_node;
    out->steals_across_numa_nodes += w.steals_across_numa_nodes;
    out->stranded_rescues += w.stranded_rescues;
  }
  out->fibers_stolen_away = stolen_away_.load(std::memory_order_relaxed);
  // Counters read one by one while they change: clamp a transient negative.
  const std::uint64_t in =
      out->fibers_created + out->steals_within_numa_node + out->steals_across_numa_nodes;
  const std::uint64_t out_count = out->fibers_stolen_away + out->fibers_finished;
  out->fibers_alive = in > out_count ? in - out_count : 0;
  out->run_queue_depth =
      queue_.ApproxSize() + overflow_size_.load(std::memory_order_relaxed);
  out->run_queue_overflows = overflows_.load(std::memory_order_relaxed);
  out->timers_fired = timer_worker_.fired();
  out->timers_pending = timer_worker_.held();
}

}  // namespace weft::detail
