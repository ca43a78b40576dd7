// What weft's and tRPC's v2 policies share at the level of the group:
// - SharedRunQueue: the group's bounded lock-free ring of ready fibers, which
//   overflows into a FIFO list under a mutex (a full ring loses nothing), and
//   what a thief of another group may take from it;
// - IdleWorkers: the bookkeeping of the 2-spinner wake rule, the spinner count
//   and the mask of sleeping workers, and WakeIdlePeers, which wakes idle
//   workers of other groups to steal from a busy one;
// - GroupThief: a worker's looks at other groups' queues, due every n-th look
//   by the steal ratios within and across NUMA nodes, and always before sleep.
// The memory orders are those of the wake rule (docs/design.md, "Why no
// wake-up is lost"): a producer publishes, fences and then reads the spinner
// count and the sleeper mask; a worker announces its spin or its sleep, fences
// and then looks at the queues.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_GROUP_QUEUE_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_GROUP_QUEUE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/detail/mutex.h"
#include "runtime/scheduling_group/fiber_entity.h"
#include "runtime/scheduling_group/run_queue.h"
#include "runtime/scheduling_group/scheduling_group.h"

namespace weft::detail {

class FiberWorker;
class OwnerCounter;

class SharedRunQueue {
 public:
  SharedRunQueue(std::size_t ring_size, int memory_node)
      : ring_(ring_size, memory_node) {}
  SharedRunQueue(const SharedRunQueue&) = delete;
  SharedRunQueue& operator=(const SharedRunQueue&) = delete;

  // Any thread. Never fails: a full ring sends the fiber to the overflow list.
  void Push(FiberEntity* fiber) {
    if (WEFT_UNLIKELY(!ring_.Push(fiber))) PushOverflow(fiber);
  }
  // The oldest ready fiber (overflow included), or nullptr. Any thread.
  FiberEntity* Pop() {
    FiberEntity* fiber = ring_.Pop();
    if (WEFT_UNLIKELY(overflow_size_.load(std::memory_order_relaxed) != 0)) {
      fiber = PopWithOverflow(fiber);
    }
    return fiber;
  }
  bool LooksEmpty() const {
    return ring_.LooksEmpty() && overflow_size_.load(std::memory_order_relaxed) == 0;
  }
  std::size_t ApproxSize() const {
    return ring_.ApproxSize() + overflow_size_.load(std::memory_order_relaxed);
  }
  std::uint64_t overflows() const { return overflows_.load(std::memory_order_relaxed); }
  std::uint64_t stolen_away() const {
    return stolen_away_.load(std::memory_order_relaxed);
  }

  // For an idle worker of another group: the oldest fiber that may leave the
  // group, or nullptr. A scheduling_group_local fiber popped on the way goes
  // back behind the others through `push_back` (the policy's Push, which wakes
  // a worker: the group's workers may all sleep by now). Bounded, so that a
  // queue of nothing but group-local fibers costs a thief little.
  template <class PushBack>
  FiberEntity* PopForThief(PushBack&& push_back) {
    constexpr int kMaxLocalSkips = 4;
    FiberEntity* first_skipped = nullptr;
    for (int skipped = 0; skipped <= kMaxLocalSkips && !LooksEmpty(); ++skipped) {
      FiberEntity* fiber = Pop();
      if (fiber == nullptr) return nullptr;
      if (!fiber->scheduling_group_local) {
        stolen_away_.fetch_add(1, std::memory_order_relaxed);
        return fiber;
      }
      push_back(fiber);
      if (fiber == first_skipped) break;  // went round: only local fibers are left
      if (first_skipped == nullptr) first_skipped = fiber;
    }
    return nullptr;
  }

 private:
  FiberEntity* PopWithOverflow(FiberEntity* popped);
  void PushOverflow(FiberEntity* fiber);

  RunQueue<FiberEntity> ring_;
  alignas(64) std::atomic<std::size_t> overflow_size_{0};
  Mutex overflow_mutex_;
  FiberEntity* overflow_head_ WEFT_GUARDED_BY(overflow_mutex_) = nullptr;
  FiberEntity* overflow_tail_ WEFT_GUARDED_BY(overflow_mutex_) = nullptr;
  std::atomic<std::uint64_t> overflows_{0};
  std::atomic<std::uint64_t> stolen_away_{0};
};

class IdleWorkers {
 public:
  // At most this many workers spin (search for work) at once.
  static constexpr int kMaxSpinners = 2;

  explicit IdleWorkers(SchedulingGroup* group) : group_(group) {}
  IdleWorkers(const IdleWorkers&) = delete;
  IdleWorkers& operator=(const IdleWorkers&) = delete;

  // Once the group's workers exist.
  void Start() {
    const std::size_t n = group_->worker_count();
    all_workers_mask_ = n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
  }

  bool AnySpinner() const { return spinners_.load(std::memory_order_relaxed) != 0; }
  bool AnySleeper() const { return sleeping_mask_.load(std::memory_order_relaxed) != 0; }
  bool AllAsleep() const {
    return sleeping_mask_.load(std::memory_order_seq_cst) == all_workers_mask_;
  }

  // Claims a sleeping worker (its bit) and wakes it; workers whose bits are
  // set in `exclude` are left asleep. False if there was none.
  bool WakeOneSleeper(std::uint64_t exclude = 0);
  // Wakes a sleeper when no one spins, without a fence: may miss a worker that
  // is just falling asleep, which then finds the work on its second look. Only
  // for work that the calling worker is bound to pick up itself anyway.
  void WakeIfIdleWorkerSleeps() {
    if (!AnySpinner() && AnySleeper()) WakeOneSleeper();
  }
  bool TryStartSpinning();
  // True if the caller was the last spinner.
  bool StopSpinning() { return spinners_.fetch_sub(1, std::memory_order_seq_cst) == 1; }
  // Worker `i` announces / withdraws that it is going to sleep. Withdraw
  // returns false if a producer had already claimed the worker (and so will
  // wake it).
  void AnnounceSleep(std::size_t i) {
    sleeping_mask_.fetch_or(std::uint64_t{1} << i, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
  bool WithdrawSleep(std::size_t i) {
    const std::uint64_t bit = std::uint64_t{1} << i;
    return (sleeping_mask_.fetch_and(~bit, std::memory_order_acq_rel) & bit) != 0;
  }
  // Every worker of the group, asleep or not (the group is stopping).
  void WakeAll();

 private:
  SchedulingGroup* const group_;
  alignas(64) std::atomic<int> spinners_{0};
  std::atomic<std::uint64_t> sleeping_mask_{0};
  std::uint64_t all_workers_mask_ = 0;  // a bit per worker
};

// Wakes sleeping workers of up to `wanted` peer groups of `group` that have no
// spinner, so that they steal from it; stops early at a peer that spins (it
// looks by itself). Every group of a runtime runs the same policy, whose
// idle_workers() this reads. Returns the number woken. Out of line: it is the
// rare branch of the producers' fast path, which must not pay its frame.
template <class Policy>
__attribute__((noinline)) std::size_t WakeIdlePeers(const SchedulingGroup& group,
                                                    std::size_t wanted) {
  // Where to start among the peers, so that busy groups spread their wake-ups.
  thread_local std::size_t cursor = 0;
  const std::size_t start = cursor++;
  std::size_t woken = 0;
  const StealPeers& peers = group.steal_peers();
  for (const auto* list : {&peers.same_node, &peers.other_nodes}) {
    for (std::size_t i = 0; i < list->size() && woken < wanted; ++i) {
      IdleWorkers& idle =
          static_cast<Policy&>((*list)[(start + i) % list->size()]->policy())
              .idle_workers();
      if (idle.AnySpinner()) return woken;
      if (idle.WakeOneSleeper()) ++woken;
    }
  }
  return woken;
}

// After a fiber was published and a seq_cst fence (which pairs with the
// spinners' count and AnnounceSleep's fence): wakes a sleeper of the group if
// no one spins; when every worker is busy, an idle worker of a peer group
// (with `may_steal`).
template <class Policy>
inline void WakeForQueuedWork(IdleWorkers& idle, const SchedulingGroup& group,
                              bool may_steal) {
  if (idle.AnySpinner()) return;
  if (idle.AnySleeper()) {
    idle.WakeOneSleeper();
  } else if (may_steal) {
    WakeIdlePeers<Policy>(group, 1);
  }
}

// The same after `count` fibers were published: up to `count` sleepers, and
// peer groups' idle workers for the rest. Each woken worker that finds more
// work passes a wake-up on, but waking a few at once gets a large batch going
// sooner.
template <class Policy>
void WakeForBatch(IdleWorkers& idle, const SchedulingGroup& group, bool may_steal,
                  std::size_t count) {
  if (idle.AnySpinner()) return;
  std::size_t woken = 0;
  while (woken < count && woken < group.worker_count() && idle.WakeOneSleeper()) ++woken;
  if (woken < count && may_steal) WakeIdlePeers<Policy>(group, count - woken);
}

// One worker's looks at other groups' queues (its policy keeps one per
// worker). Not thread-safe: the worker's own.
class GroupThief {
 public:
  GroupThief() = default;
  // Workers of a group start their steal rounds at different victims.
  explicit GroupThief(std::size_t first_victim) : cursor_(first_victim) {}

  // One look for work in other groups, counted for the steal ratios: a steal
  // is tried on every n-th call, or now with `before_sleep`, from the groups
  // on `worker`'s NUMA node first. The fiber taken belongs to `worker`'s group
  // from then on; nullptr when not due or nothing was found.
  FiberEntity* TrySteal(FiberWorker* worker, bool before_sleep);

 private:
  FiberEntity* StealIfDue(SchedulingGroup* group,
                          const std::vector<SchedulingGroup*>& victims, std::size_t ratio,
                          bool before_sleep, OwnerCounter* steals);

  std::uint64_t clock_ = 0;
  std::size_t cursor_ = 0;  // where the next steal starts among the victims
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_POLICY_GROUP_QUEUE_H_
