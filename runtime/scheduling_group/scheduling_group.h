// A scheduling group: FiberWorker threads sharing one bounded lock-free run
// queue, with the 2-spinner wake policy.
//
// Wake policy. A worker that runs out of work may become one of at most two
// spinners, which poll the queue for a few microseconds; the others sleep on
// their own futex and advertise it in a bitmask. A producer publishes its fiber
// and then, only if no worker spins, wakes one sleeper (claiming its bit first,
// so two producers never wake the same one). When a spinner finds work and it
// was the last spinner, it passes a wake-up on to a sleeper, which becomes the
// next spinner: the producer's path stays free of syscalls while the group is
// busy. Neither side can miss the other: a producer writes the queue before it
// reads the spinner count and the sleeper mask, and a worker writes its spinner
// or sleeper state before it re-reads the queue (sequentially consistent fences
// on both sides), so at least one of them sees the other.
//
// Work stealing. Groups whose workers are busy while another group's sit idle
// balance through stealing: an idle worker (one about to spin, spinning, or about
// to sleep) pops from the shared queue of another group on every n-th look for
// work, n = work_stealing_ratio for groups on its NUMA node and
// cross_numa_work_stealing_ratio for the others, and always once before it
// sleeps. A stolen fiber belongs to the thief's group from then on. Sleeping
// workers cannot look, so a producer that finds every worker of its own group
// busy (no spinner, no sleeper) checks the peer groups: a spinning peer will
// look by itself, otherwise it wakes a sleeper of one peer, which spins, steals,
// and as the last spinner of its group hands a wake-up on, so an idle group
// joins in as long as the busy one has a backlog. The same fences as above make
// this airtight: a peer's worker either announces its sleep before the
// producer reads its state (and is woken), or looks at the queue after the
// fiber is in it. Fibers started with scheduling_group_local are never stolen:
// a thief that pops one pushes it back behind the others and tries the next.
//
// A full run queue loses nothing: the fiber goes to an overflow list (FIFO,
// under a mutex), counted in run_queue_overflows; any worker that pops moves
// overflow fibers back into the ring as room appears.
//
// Thread-safe.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_SCHEDULING_GROUP_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_SCHEDULING_GROUP_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "runtime/detail/mutex.h"
#include "runtime/machine/numa_memory.h"
#include "runtime/runtime_stats.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/io_poller.h"
#include "runtime/scheduling_group/run_queue.h"
#include "runtime/scheduling_group/timer_worker.h"

namespace weft::detail {

struct FiberEntity;

// The groups a group's workers may steal from, and how often. Lists are empty
// when their ratio is 0.
struct StealPeers {
  std::vector<SchedulingGroup*> same_node;
  std::vector<SchedulingGroup*> other_nodes;
  std::size_t same_node_ratio = 0;
  std::size_t other_nodes_ratio = 0;
};

class SchedulingGroup {
 public:
  // At most this many workers spin at once.
  static constexpr int kMaxSpinners = 2;
  static constexpr std::size_t kMaxWorkers = 64;

  // `worker_cpus[i]` lists the CPUs worker i may run on (empty: no pinning).
  // The run queue and the workers' state prefer NUMA node `memory_node` (< 0: no
  // preference, e.g. for a synthetic topology).
  SchedulingGroup(std::size_t index, std::size_t numa_node, int memory_node,
                  std::size_t run_queue_size,
                  const std::vector<std::vector<int>>& worker_cpus);
  ~SchedulingGroup();
  SchedulingGroup(const SchedulingGroup&) = delete;
  SchedulingGroup& operator=(const SchedulingGroup&) = delete;

  // Called once, before Start().
  void SetStealPeers(StealPeers peers);
  const StealPeers& steal_peers() const { return peers_; }
  bool may_steal() const { return may_steal_; }
  // RuntimeOptions::chaos_migration; set once, before Start().
  void set_chaos_migration(bool on) { chaos_migration_ = on; }
  bool chaos_migration() const { return chaos_migration_; }

  // Starts the workers and the group's TimerWorker.
  void Start();
  // Stops the TimerWorker, dropping the deadlines it still holds. Call only when
  // no fiber is left, before Stop().
  void StopTimers() { timer_worker_.Stop(); }
  // Makes workers exit once they find no work, and joins them. Call only when no
  // fiber is left.
  void Stop();

  // Serves every deadline of this group's fibers and timers.
  TimerWorker& timer_worker() { return timer_worker_; }
  // Readiness of the descriptors weft::io registered with this group.
  IoPoller& poller() { return poller_; }

  std::size_t index() const { return index_; }
  // Where index() lives in the object, for debuggers.
  static std::size_t IndexOffset();
  std::size_t numa_node() const { return numa_node_; }
  std::size_t worker_count() const { return workers_.size(); }
  FiberWorker* worker(std::size_t i) const { return workers_[i].get(); }

  // Makes `fiber` runnable through the shared queue and wakes a worker if no one
  // spins. Any thread.
  void Push(FiberEntity* fiber) {
    if (WEFT_UNLIKELY(!queue_.Push(fiber))) PushOverflow(fiber);
    // Pairs with the fences in FiberWorker's spin and sleep paths: either we see
    // their spinner / sleeper state, or they see the fiber we just published.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    WakeForQueuedWork();
  }
  // Push for a fiber that yielded. The worker it yielded on is busy with a fiber
  // it took from this queue and comes back to the queue when that one blocks, so
  // the yielder cannot be stranded: the wake-up of an idle worker is a cheap
  // best-effort check, without the fence Push() needs.
  void Requeue(FiberEntity* fiber) {
    if (WEFT_UNLIKELY(!queue_.Push(fiber))) PushOverflow(fiber);
    WakeForQueuedWork();
  }
  // For a worker that leaves idleness with a fiber from the queue (woken,
  // stealing or about to sleep): if more fibers are queued and no one spins to
  // take them, wakes a sleeper or an idle peer group. Producers wake at most
  // one worker per fiber, and none while a spinner is counted, so a worker
  // that takes one of a burst passes the wake-up on (as a spinner does).
  void PassOnWakeUp() {
    if (LooksEmpty()) return;
    // Pairs with the fence in AnnounceSleep: either we see a worker's sleeper
    // bit, or that worker sees the queued fibers before it sleeps.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    WakeForQueuedWork();
  }
  // Wakes a sleeper when no one spins, without a fence: may miss a worker that
  // is just falling asleep, which then finds the work on its second look (see
  // FiberWorker::Sleep). Only for work that the calling worker is bound to
  // pick up itself once its current fiber blocks.
  void WakeIfIdleWorkerSleeps() {
    if (spinners_.load(std::memory_order_relaxed) == 0 &&
        sleeping_mask_.load(std::memory_order_relaxed) != 0) {
      WakeOneSleeper();
    }
  }
  // Chaos mode: queues `fiber` again for a worker other than worker `avoid`,
  // which popped it but ran it last, and wakes a sleeping one if there is one.
  void PushAvoiding(FiberEntity* fiber, std::size_t avoid) {
    if (WEFT_UNLIKELY(!queue_.Push(fiber))) PushOverflow(fiber);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    WakeOneSleeper(std::uint64_t{1} << avoid);
  }
  // Pushes many fibers, then wakes as many sleepers as needed.
  void PushBatch(FiberEntity* const* fibers, std::size_t count);
  // Oldest ready fiber of the shared queue (overflow included), or nullptr.
  FiberEntity* Pop() {
    FiberEntity* fiber = queue_.Pop();
    if (WEFT_UNLIKELY(overflow_size_.load(std::memory_order_relaxed) != 0)) {
      fiber = PopWithOverflow(fiber);
    }
    return fiber;
  }
  bool LooksEmpty() const {
    return queue_.LooksEmpty() && overflow_size_.load(std::memory_order_relaxed) == 0;
  }
  // Pop() for a worker of another group: skips (and re-queues) fibers that must
  // stay in this group. nullptr when nothing may leave.
  FiberEntity* PopForThief();

  // Wake policy, see the file comment. Workers whose bits are set in `exclude`
  // are left asleep.
  bool WakeOneSleeper(std::uint64_t exclude = 0);
  // For work this group's busy workers cannot take soon: wakes sleeping workers
  // of up to `wanted` peer groups that have no spinner, so that they steal from
  // this one. Stops early at a peer that spins (it looks by itself). Returns the
  // number woken.
  std::size_t WakeIdlePeers(std::size_t wanted);
  bool TryStartSpinning();
  // Returns true if the caller was the last spinner.
  bool StopSpinning();
  // Worker `i` announces / withdraws that it is going to sleep. Withdraw returns
  // false if a producer had already claimed the worker (and so will wake it).
  void AnnounceSleep(std::size_t i);
  bool WithdrawSleep(std::size_t i);
  // Whether every worker has announced its sleep and none was claimed since.
  bool AllWorkersAsleep() const {
    return sleeping_mask_.load(std::memory_order_seq_cst) == all_workers_mask_;
  }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }

  // A fiber was placed in this group by someone other than one of its workers.
  void CountExternalCreated() {
    external_created_.fetch_add(1, std::memory_order_seq_cst);
  }
  // Fibers placed in / finished in this group so far. To tell whether any fiber
  // is alive, read every group's FinishedCount() before any CreatedCount(): a
  // fiber is created before it can finish, so that order never undercounts.
  std::uint64_t CreatedCount() const;
  std::uint64_t FinishedCount() const;
  void CollectStats(SchedulingGroupStats* out) const;

 private:
  // After a fiber was queued: wakes a sleeper if no one spins; when every worker
  // is busy, lets idle workers of other groups know (see the file comment).
  void WakeForQueuedWork() {
    if (spinners_.load(std::memory_order_relaxed) != 0) return;
    if (sleeping_mask_.load(std::memory_order_relaxed) != 0) {
      WakeOneSleeper();
    } else if (may_steal_) {
      WakeIdlePeers(1);
    }
  }
  FiberEntity* PopWithOverflow(FiberEntity* popped);
  void PushOverflow(FiberEntity* fiber);

  const std::size_t index_;
  const std::size_t numa_node_;
  RunQueue<FiberEntity> queue_;
  std::vector<NumaNodePtr<FiberWorker>> workers_;
  TimerWorker timer_worker_;
  IoPoller poller_;
  StealPeers peers_;
  bool may_steal_ = false;
  bool chaos_migration_ = false;

  alignas(64) std::atomic<int> spinners_{0};
  std::atomic<std::uint64_t> sleeping_mask_{0};
  std::uint64_t all_workers_mask_ = 0;  // a bit per worker
  std::atomic<bool> stopping_{false};

  alignas(64) std::atomic<std::size_t> overflow_size_{0};
  Mutex overflow_mutex_;
  FiberEntity* overflow_head_ WEFT_GUARDED_BY(overflow_mutex_) = nullptr;
  FiberEntity* overflow_tail_ WEFT_GUARDED_BY(overflow_mutex_) = nullptr;
  std::atomic<std::uint64_t> overflows_{0};
  std::atomic<std::uint64_t> external_created_{0};
  std::atomic<std::uint64_t> stolen_away_{0};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_SCHEDULING_GROUP_H_
