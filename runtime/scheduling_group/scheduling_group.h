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

#include "runtime/runtime.h"
#include "runtime/scheduling_group/fiber_worker.h"
#include "runtime/scheduling_group/run_queue.h"

namespace weft::detail {

struct FiberEntity;

class SchedulingGroup {
 public:
  // At most this many workers spin at once.
  static constexpr int kMaxSpinners = 2;
  static constexpr std::size_t kMaxWorkers = 64;

  // `worker_cpus[i]` lists the CPUs worker i may run on (empty: no pinning).
  SchedulingGroup(std::size_t index, std::size_t numa_node, std::size_t run_queue_size,
                  const std::vector<std::vector<int>>& worker_cpus);
  ~SchedulingGroup();
  SchedulingGroup(const SchedulingGroup&) = delete;
  SchedulingGroup& operator=(const SchedulingGroup&) = delete;

  void Start();
  // Makes workers exit once they find no work, and joins them. Call only when no
  // fiber is left.
  void Stop();

  std::size_t index() const { return index_; }
  std::size_t worker_count() const { return workers_.size(); }
  FiberWorker* worker(std::size_t i) const { return workers_[i].get(); }

  // Makes `fiber` runnable through the shared queue and wakes a worker if no one
  // spins. Any thread.
  void Push(FiberEntity* fiber) {
    if (WEFT_UNLIKELY(!queue_.Push(fiber))) PushOverflow(fiber);
    WakeIfNoSpinner();
  }
  // Push for a fiber that yielded. The worker it yielded on is busy with a fiber
  // it took from this queue and comes back to the queue when that one blocks, so
  // the yielder cannot be stranded: the wake-up of an idle worker is a cheap
  // best-effort check, without the fence Push() needs.
  void Requeue(FiberEntity* fiber) {
    if (WEFT_UNLIKELY(!queue_.Push(fiber))) PushOverflow(fiber);
    WakeIfIdleWorkerSleeps();
  }
  // Wakes a sleeper when no one spins, without the fence of WakeIfNoSpinner: may
  // miss a worker that is just falling asleep. Only for work that the calling
  // worker is bound to pick up itself.
  void WakeIfIdleWorkerSleeps() {
    if (spinners_.load(std::memory_order_relaxed) == 0 &&
        sleeping_mask_.load(std::memory_order_relaxed) != 0) {
      WakeOneSleeper();
    }
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

  // Wake policy, see the file comment.
  void WakeIfNoSpinner() {
    // Pairs with the fences in FiberWorker's spin and sleep paths: either we see
    // their spinner / sleeper state, or they see the fiber we just published.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    WakeIfIdleWorkerSleeps();
  }
  bool WakeOneSleeper();
  bool TryStartSpinning();
  // Returns true if the caller was the last spinner.
  bool StopSpinning();
  // Worker `i` announces / withdraws that it is going to sleep. Withdraw returns
  // false if a producer had already claimed the worker (and so will wake it).
  void AnnounceSleep(std::size_t i);
  bool WithdrawSleep(std::size_t i);
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
  FiberEntity* PopWithOverflow(FiberEntity* popped);
  void PushOverflow(FiberEntity* fiber);

  const std::size_t index_;
  const std::size_t numa_node_;
  RunQueue<FiberEntity> queue_;
  std::vector<std::unique_ptr<FiberWorker>> workers_;

  alignas(64) std::atomic<int> spinners_{0};
  std::atomic<std::uint64_t> sleeping_mask_{0};
  std::atomic<bool> stopping_{false};

  alignas(64) std::atomic<std::size_t> overflow_size_{0};
  std::mutex overflow_mutex_;
  FiberEntity* overflow_head_ = nullptr;  // guarded by overflow_mutex_
  FiberEntity* overflow_tail_ = nullptr;  // guarded by overflow_mutex_
  std::atomic<std::uint64_t> overflows_{0};
  std::atomic<std::uint64_t> external_created_{0};
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_SCHEDULING_GROUP_H_
