// A FiberWorker is one OS thread of a scheduling group. It runs ready fibers,
// switching directly from one fiber to the next; only when nothing is ready does
// it return to its own stack (the "scheduler context") to spin or sleep.
//
// Each worker has a local run stack (local_run_stack.h): a fiber readied by a
// fiber running on this worker (a spawned child, a woken waiter) goes on top
// and runs as soon as the current fiber blocks, newest first, on a warm cache
// and without a queue round trip. Idle workers of the group take the oldest:
// at once when there are two or more, otherwise when the one has sat there for
// a while (two scans apart), so a busy worker cannot hold it back. After
// kMaxLocalStreak consecutive local picks the oldest local fiber goes to the
// shared queue (one that never ran only after it has sat at the bottom for
// kLocalPatience) and the queue is served first, so fibers that hand work back
// and forth starve neither the queue nor the bottom of the stack, while a tree
// of fibers still unfolds depth first.
//
// An idle worker also steals from other groups' queues (never from their
// local run stacks); see scheduling_group.h for when.
//
// Chaos mode (RuntimeOptions::chaos_migration, groups of two or more workers):
// the local run stack is not used, a yield always goes through the queue, and a
// worker that pops a fiber it ran last queues it again and wakes another
// worker, so that each time a fiber is made ready it resumes on a different
// thread. Only when no other worker has taken it for kChaosPatience (all of
// them busy with fibers that do not block, say) does the fiber run where it ran
// before, so that chaos mode cannot hang a program that runs without it; these
// fallbacks are counted (ChaosFallbacks()).
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
#include "runtime/scheduling_group/local_run_stack.h"

namespace weft::detail {

struct FiberEntity;
class FileRing;
class SchedulingGroup;

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

  // Puts `fiber` on top of this worker's local run stack. Only the running
  // fiber of this worker calls it.
  void ReadyLocal(FiberEntity* fiber);

  // Takes the oldest fiber of `other`'s local run stack: at once if it holds
  // two or more (or with `patient` false), otherwise only if the one it holds
  // has been there since this worker's previous scan.
  FiberEntity* StealLocal(FiberWorker* other, bool patient);

  bool chaos() const { return chaos_; }

  // This worker's io_uring for file calls (file_ring.h), created on the first
  // call; nullptr when the kernel refused it (reported once). Only the fiber
  // running on this worker calls it.
  FileRing* FileRingForCurrentFiber();
  // The ring, if created: for stats. Any thread.
  const FileRing* file_ring() const { return file_ring_.load(std::memory_order_acquire); }

  // Whether other fibers are ready to run here (local run stack or the group's
  // queue): a fiber about to wait had better let them run than spin. A hint.
  bool HasReadyWork() const;

  // Wakes this worker if it sleeps. Called by whoever claimed its sleeping bit.
  void Wake();

  void CountCreated() { stats_.fibers_created.Add(); }
  std::uint64_t CreatedCount() const { return stats_.fibers_created.Get(); }
  std::uint64_t FinishedCount() const { return stats_.fibers_finished.Get(); }
  void CollectStats(WorkerStats* out) const;

 private:
  void Run();
  // The next fiber to run after the current one. `may_poll`: no lock is held
  // across the switch, so the group's poller may be looked at.
  FiberEntity* PickNext(bool may_poll);
  // The group's Pop(), in chaos mode passing back a fiber that ran here last.
  FiberEntity* PopQueue();
  FiberEntity* ChaosTake(FiberEntity* fiber);
  FiberEntity* WaitForWork();
  FiberEntity* Spin();
  FiberEntity* Sleep();
  // Sleep() in the group's poller, whose sleeper token the caller holds: waits
  // in epoll_wait until descriptors become ready or Wake() interrupts it (with
  // the same bounded first wait and second look as the futex sleep). Returns a
  // fiber to run (the others readied by the poll are queued), or nullptr.
  FiberEntity* SleepInPoller(std::uint32_t generation);
  // Looks at the group's poller without waiting, unless a worker sleeps in
  // it: returns one fiber readied by the look (the others are queued), or
  // nullptr.
  FiberEntity* PollWithoutWaiting();
  // Reaps this worker's ring if completions wait there: returns one fiber
  // whose request completed (the others are queued), or nullptr.
  FiberEntity* ReapOwnRing();
  // Fires the group's deadlines that are due (TimerWorker::FireDue); the
  // fibers they wake go on this worker's local run stack when called between
  // two fibers, to the shared queue otherwise. Returns how many fired. Only
  // where no wait-queue lock is held.
  std::size_t FireDueTimers();
  FiberEntity* StealAnyLocal(bool patient);
  // Looks at the next other worker of the group, in turn, and takes the
  // oldest fiber of its local run stack if that worker has not switched
  // fibers for kStrandedAfter while the stack held fibers: preempted by the
  // system (more runnable threads than CPUs), or running a fiber that does not
  // block, it would keep them from running while this worker is running fibers
  // anyway. Called every kRescueInterval picks; nullptr if nothing is taken.
  FiberEntity* RescueStranded();
  // One look for work in other groups, counted for the steal ratios: stealing
  // happens on every n-th call, or now with `before_sleep`. nullptr when not
  // due or nothing was found.
  FiberEntity* TrySteal(bool before_sleep = false) {
    if (!may_steal_) return nullptr;
    return TryStealFromPeers(before_sleep);
  }
  FiberEntity* TryStealFromPeers(bool before_sleep);
  // Tries `victims` in turn if a steal from them is due (every `ratio`-th look,
  // or now before sleeping; never when the list is empty), counting a success
  // in `steals`.
  FiberEntity* StealIfDue(const std::vector<SchedulingGroup*>& victims, std::size_t ratio,
                          bool before_sleep, OwnerCounter* steals);
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
  std::uint32_t local_streak_ = 0;
  // The bottom of the local run stack at the last fairness look that found a
  // fiber that never ran there, and since when (see kLocalPatience).
  FiberEntity* oldest_local_ = nullptr;
  std::chrono::steady_clock::time_point oldest_local_since_{};
  bool may_steal_ = false;  // copied from the group at Start()
  bool chaos_ = false;      // chaos mode, in a group of two or more workers
  // A fiber was passed back since this worker last slept: sleep with a timeout,
  // so that it can still take the fiber if no one else does.
  bool chaos_passed_back_ = false;
  // Looks for work that found the own queue empty, and where the next steal
  // starts among the victims.
  std::uint64_t steal_clock_ = 0;
  std::size_t steal_cursor_ = 0;
  // Local stack generation of the last scan of each worker, for
  // StealLocal's patience.
  std::vector<std::uint64_t> seen_local_;
  // RescueStranded's view of each worker: its switch count, and since when it
  // has had fibers on its local run stack without switching (the epoch: not).
  struct PeerProgress {
    std::uint64_t switches = 0;
    std::chrono::steady_clock::time_point stalled_since{};
  };
  std::vector<PeerProgress> peer_progress_;
  std::size_t rescue_cursor_ = 0;
  std::uint32_t picks_until_rescue_ = 1;
  std::uint32_t picks_until_timers_ = 1;
  // A look at the group's poller is due at the next switch that may poll.
  bool poll_due_ = false;
  // The ring for file calls: owned here, published for the stats.
  std::unique_ptr<FileRing> own_ring_;
  std::atomic<FileRing*> file_ring_{nullptr};
  bool ring_refused_ = false;

  // Pushed and popped by this worker, popped at the bottom by idle workers of
  // the group.
  alignas(64) LocalRunStack<FiberEntity> local_;

  // Futex word: bumped by Wake().
  alignas(64) std::atomic<std::uint32_t> wake_generation_{0};
  // Set while this worker sleeps in the group's poller, where Wake() must
  // interrupt epoll_wait instead of waking the futex.
  std::atomic<bool> in_poller_{false};

  struct Counters {
    OwnerCounter fibers_created, fibers_finished, switches, spins, sleeps, wakeups,
        steals_within_numa_node, steals_across_numa_nodes, stranded_rescues;
  };
  alignas(64) Counters stats_;

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

// Completes a switch on the receiving side: stores the switcher's context and
// applies its AfterSwitch. Returns the worker the receiver now runs on.
FiberWorker* CompleteSwitch(SwitchArrival arrival);

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_FIBER_WORKER_H_
