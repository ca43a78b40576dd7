// A FiberWorker is one OS thread of a scheduling group. It runs ready fibers,
// switching directly from one fiber to the next; only when nothing is ready does
// it return to its own stack (the "scheduler context") to wait for work.
//
// Which fiber runs next, where readied fibers wait, and how an idle worker
// spins, steals and sleeps belong to the group's scheduling policy
// (policy/scheduling_policy.h); the worker owns the switches, the looks at the
// group's I/O poller and deadlines between fibers, and the means to sleep and
// be woken (Block, Wake) that a policy uses.
//
// Chaos mode (RuntimeOptions::chaos_migration, groups of two or more workers):
// a yield always goes through the queue, and a worker that pops a fiber it ran
// last queues it again and wakes another worker (ChaosTake), so that each time
// a fiber is made ready it resumes on a different thread. Only when no other
// worker has taken it for kChaosPatience (all of them busy with fibers that do
// not block, say) does the fiber run where it ran before, so that chaos mode
// cannot hang a program that runs without it; these fallbacks are counted
// (ChaosFallbacks()).
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_WORKER_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_WORKER_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/detail/context.h"
#include "runtime/detail/spinlock.h"
#include "runtime/runtime_stats.h"

namespace weft::detail {

struct FiberEntity;
class FileRing;
class SchedulingGroup;
class SchedulingPolicy;
class WeftPolicy;

// What the context that runs next does with the fiber that just switched away.
enum class AfterSwitch : std::uint8_t {
  kNothing,        // the scheduler context switched to a fiber
  kRequeue,        // the fiber yielded: put it back in its group's run queue
  kUnlock,         // the fiber parked: release the wait-queue lock it holds
  kReleaseExited,  // the fiber exited: drop its reference to its stack
};

// A counter written by one thread and read by any: a plain load and store
// instead of a locked read-modify-write. Release/acquire, so that a reader that
// sees an increment also sees what happened before it (free on x86).
class OwnerCounter {
 public:
  void Add(std::uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_release);
  }
  std::uint64_t Get() const { return value_.load(std::memory_order_acquire); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// A worker's counters, written by the worker (or by its policy on its behalf).
struct WorkerCounters {
  OwnerCounter fibers_created, fibers_finished, switches, spins, sleeps, wakeups,
      steals_within_numa_node, steals_across_numa_nodes, stranded_rescues;
};

class FiberWorker {
 public:
  FiberWorker(SchedulingGroup* group, std::size_t index, std::vector<int> cpus);
  ~FiberWorker();
  FiberWorker(const FiberWorker&) = delete;
  FiberWorker& operator=(const FiberWorker&) = delete;

  void Start();
  void Join();

  SchedulingGroup* group() const { return group_; }
  std::size_t index() const { return index_; }
  // The fiber running on this worker; nullptr in the scheduler context.
  FiberEntity* current_fiber() const { return current_; }

  // Called by the running fiber to give up the CPU: the next ready fiber (or the
  // scheduler context) runs, and then applies `action` to the caller. Returns
  // when the caller is resumed, possibly on another worker; with kReleaseExited
  // it never returns.
  void SwitchAway(AfterSwitch action, Spinlock* lock = nullptr);

  // Yield(): switches to the next ready fiber, requeueing the caller, or returns
  // at once when none is ready.
  void YieldCurrent();

  // Launch::kDispatch: runs `fiber` (new, of this worker's group) right now and
  // requeues the caller.
  void DispatchTo(FiberEntity* fiber);

  // The running fiber of this worker readied `fiber` (of this group): the
  // policy's ReadyLocal. Only the running fiber of this worker calls it.
  void ReadyLocal(FiberEntity* fiber);
  // The policy's Requeue for `fiber`, which yielded on this worker.
  void Requeue(FiberEntity* fiber);

  bool chaos() const { return chaos_; }

  // This worker's io_uring for file calls (file_ring.h), created on the first
  // call; nullptr when the kernel refused it (reported once). Only the fiber
  // running on this worker calls it.
  FileRing* FileRingForCurrentFiber();
  // The ring, if created: for stats. Any thread.
  const FileRing* file_ring() const { return file_ring_.load(std::memory_order_acquire); }

  // Whether other fibers are ready to run here: a fiber about to wait had
  // better let them run than spin. A hint.
  bool HasReadyWork() const;

  // Wakes this worker if it blocks in Block(). Any thread.
  void Wake();

  // For the group's scheduling policy, from this worker's thread:
  //
  // The futex generation Block() waits on; read it before the last look for
  // work that precedes Block().
  std::uint32_t wake_generation() const {
    return wake_generation_.load(std::memory_order_acquire);
  }
  // Sleeps until Wake() moves the generation past `generation`, or I/O
  // readies fibers (when no other worker sleeps in the group's poller, this one
  // waits there), or the policy's SecondLook finds a fiber after a bounded
  // first wait (kSecondLook). Returns a fiber to run (others an I/O poll
  // readied are pushed to the group), or nullptr when woken. The last worker
  // of the group to sleep hands the deadlines back to the timer thread.
  FiberEntity* Block(std::uint32_t generation);
  // Looks at the group's poller without waiting, unless a worker sleeps in
  // it: returns one fiber readied by the look (the others are pushed), or
  // nullptr.
  FiberEntity* PollWithoutWaiting();
  // Fires the group's deadlines that are due (TimerWorker::FireDue); the
  // fibers they wake go through ReadyLocal when called between two fibers,
  // to the group otherwise. Returns how many fired. Only where no wait-queue
  // lock is held.
  std::size_t FireDueTimers();
  // Chaos mode: `fiber`, popped by this worker, or nullptr if it ran here last
  // and was passed back to another worker.
  FiberEntity* ChaosTake(FiberEntity* fiber);
  WorkerCounters& counters() { return stats_; }
  const WorkerCounters& counters() const { return stats_; }
  // What the policy keeps for this worker, set by the policy's Start(): one
  // load on the paths that run between every two fibers.
  void* policy_data() const { return policy_data_; }
  void set_policy_data(void* data) { policy_data_ = data; }

  void CountCreated() { stats_.fibers_created.Add(); }
  std::uint64_t CreatedCount() const { return stats_.fibers_created.Get(); }
  std::uint64_t FinishedCount() const { return stats_.fibers_finished.Get(); }
  void CollectStats(WorkerStats* out) const;

 private:
  void Run();
  // The next fiber to run after the current one. `may_poll`: no lock is held
  // across the switch, so the group's poller may be looked at.
  FiberEntity* PickNext(bool may_poll);
  // Block() in the group's poller, whose sleeper token the caller holds: waits
  // in epoll_wait until descriptors become ready or Wake() interrupts it (with
  // the same bounded first wait and second look as the futex sleep).
  FiberEntity* BlockInPoller(std::uint32_t generation);
  // Reaps this worker's ring if completions wait there: returns one fiber
  // whose request completed (the others are pushed), or nullptr.
  FiberEntity* ReapOwnRing();
  // Switches from the running fiber to `next` (or, if null, the scheduler context).
  void SwitchFromFiber(FiberEntity* next, AfterSwitch action, Spinlock* lock);

  SchedulingGroup* const group_;
  const std::size_t index_;
  const std::vector<int> cpus_;
  std::thread thread_;
  MachineContext scheduler_context_;
  // This thread's errno, through which each fiber's errno is saved before a
  // switch and restored, on the thread it resumes on, after it.
  int* errno_location_ = nullptr;
  FiberEntity* current_ = nullptr;
  SchedulingPolicy* policy_ = nullptr;  // the group's, set at Start()
  // policy_ when it is the default policy's class, whose hot paths the switch
  // calls directly (inlined) instead of through the interface.
  WeftPolicy* weft_policy_ = nullptr;
  void* policy_data_ = nullptr;
  bool chaos_ = false;  // chaos mode, in a group of two or more workers
  // A fiber was passed back since this worker last slept: sleep with a timeout,
  // so that it can still take the fiber if no one else does.
  bool chaos_passed_back_ = false;
  std::uint32_t picks_until_poll_ = 1;
  std::uint32_t picks_until_timers_ = 1;
  // A look at the group's poller is due at the next switch that may poll.
  bool poll_due_ = false;
  // The ring for file calls: owned here, published for the stats.
  std::unique_ptr<FileRing> own_ring_;
  std::atomic<FileRing*> file_ring_{nullptr};
  bool ring_refused_ = false;

  // Futex word: bumped by Wake().
  alignas(64) std::atomic<std::uint32_t> wake_generation_{0};
  // Set while this worker sleeps in the group's poller, where Wake() must
  // interrupt epoll_wait instead of waking the futex.
  std::atomic<bool> in_poller_{false};

  alignas(64) WorkerCounters stats_;

  friend void FiberMain(SwitchArrival arrival);
};

// Chaos mode: how long a fiber waits for another worker before it may run on
// the one it ran on last; and how often that has happened in this process.
inline constexpr std::chrono::milliseconds kChaosPatience{2};
std::uint64_t ChaosFallbacks();

// The worker the calling thread is, or nullptr on a plain thread. Never inlined,
// so that a fiber that migrates between threads re-reads it after every switch
// instead of using a thread-local address computed before.
FiberWorker* CurrentWorker();

// Whether `worker` (from CurrentWorker()) is running a fiber right now, i.e. the
// caller is a fiber rather than a plain thread or a worker's scheduler loop.
inline bool InFiber(const FiberWorker* worker) {
  return worker != nullptr && worker->current_fiber() != nullptr;
}

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_WORKER_H_
