// The TimerWorker: one thread per scheduling group that serves every deadline of
// the group (sleeps, timeouts of timed waits, user timers).
//
// Submitting a deadline takes no lock: entries are pushed onto a lock-free stack
// that the timer thread drains into a binary heap it owns alone. The thread sleeps
// on a futex until the earliest deadline (absolute CLOCK_MONOTONIC, which is
// steady_clock, with 1 ns timer slack); a submission earlier than that deadline
// wakes it. A producer publishes its entry and then reads the deadline the thread
// sleeps until, and the thread publishes that deadline and then re-reads the
// submission stack (sequentially consistent fences on both sides), so an earlier
// deadline is never missed.
//
// The group's workers fire due deadlines too. While any of them is awake, they
// look at the earliest deadline between fibers (FireDue) and ready the fibers
// it wakes on their own local run stacks, and the timer thread is only the
// backstop: submissions do not wake it, and it sleeps kBackstopTick at a time,
// firing whatever no worker fired by then (a worker running one fiber that does
// not block for that long). Once every worker sleeps (the last one to fall
// asleep tells it, see WorkersWentToSleep), it sleeps until the earliest
// deadline exactly and submissions earlier than that wake it, as above. On a
// busy group this spares the thread a wake-up and a trip through the shared run
// queue per deadline, and it competes for no CPU; an idle group's timers fire
// on time from the timer thread. Firing, by whoever does it, happens under one
// mutex, so deadlines fire in order and each once.
//
// An entry is cancelled by marking it dead; the thread drops dead entries when
// it takes them from the submission stack or when they reach the top of the
// heap, and rebuilds the heap without them when they make up more than half of
// it. Producers also wake the thread once kDrainBatch submissions or
// cancellations have piled up since it last looked, so that neither a burst of
// far-off timers nor a stream of cancelled ones holds memory (or delays the next
// deadline) until the earliest deadline comes.
//
// Thread-safe.
#ifndef WEFT_RUNTIME_SCHEDULING_GROUP_TIMER_WORKER_H_
#define WEFT_RUNTIME_SCHEDULING_GROUP_TIMER_WORKER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "runtime/detail/mutex.h"

namespace weft::detail {

class TimerWorker;

// One deadline. Whoever submits it keeps it alive until the timer thread hands
// it back by calling exactly one of `on_due` or `on_drop`.
struct TimerEntry {
  std::chrono::steady_clock::time_point deadline;
  // Called on the timer thread when the deadline passes, unless the entry is
  // dead by then. Must be short and must not block: it readies a fiber or starts
  // one, it never runs user code.
  void (*on_due)(TimerEntry*) = nullptr;
  // Called on the timer thread instead when it lets go of an entry that did not
  // come due: found dead, or still pending when the worker stops.
  void (*on_drop)(TimerEntry*) = nullptr;
  // Set by a canceller; the timer thread then neither calls on_due nor keeps the
  // entry longer than it must.
  std::atomic<bool> dead{false};

  // Link in the submission stack.
  TimerEntry* next_submitted = nullptr;
};

class TimerWorker {
 public:
  explicit TimerWorker(std::size_t group_index);
  ~TimerWorker();
  TimerWorker(const TimerWorker&) = delete;
  TimerWorker& operator=(const TimerWorker&) = delete;

  // `workers_awake` says whether any of the group's workers is awake (and so
  // will call FireDue soon); it must be sequentially consistent with the
  // workers' announcements of their sleep.
  void Start(std::function<bool()> workers_awake);
  // Stops the thread and drops every entry still held (on_drop, without on_due).
  void Stop();

  // Hands `entry` to the timer thread. Any thread; lock-free.
  void Submit(TimerEntry* entry);

  // Marks `entry` dead. Returns false if it was already dead.
  bool Cancel(TimerEntry* entry);

  // Whether a deadline may be held: a cheap test for workers, before they read
  // the clock for FireDue.
  bool MayHaveDeadlines() const {
    return earliest_.load(std::memory_order_relaxed) != INT64_MAX ||
           submitted_.load(std::memory_order_relaxed) != nullptr;
  }
  // For the group's workers, at points where they hold no lock: fires the
  // deadlines due at `now` unless someone else is firing at the moment.
  // Returns how many fired. on_due runs on the calling thread.
  std::size_t FireDue(std::chrono::steady_clock::time_point now);
  // For the last worker of the group to fall asleep (after it announced its
  // sleep): makes the timer thread sleep until the earliest deadline exactly,
  // since no worker will look at the deadlines now.
  void WorkersWentToSleep() {
    if (backstop_only_.load(std::memory_order_seq_cst)) Wake();
  }

  std::uint64_t fired() const { return fired_.load(std::memory_order_relaxed); }
  // Entries held (in the heap or waiting to be taken), dead ones included.
  std::uint64_t held() const {
    return in_heap_.load(std::memory_order_relaxed) +
           pending_.load(std::memory_order_relaxed);
  }

  // Submissions or cancellations since the thread last looked that make a
  // producer wake it.
  static constexpr std::uint64_t kDrainBatch = 4096;
  // How long the timer thread sleeps at a time while workers are awake: the
  // most a due deadline waits if no worker looks.
  static constexpr std::chrono::milliseconds kBackstopTick{1};

 private:
  // A heap slot keeps its entry's keys, so that ordering the heap reads no
  // entry (entries of sleeping fibers sit on as many cold stacks).
  struct HeapItem {
    std::int64_t deadline;
    std::uint64_t sequence;  // ties on the deadline fire in submission order
    TimerEntry* entry;
  };

  static bool Later(const HeapItem& a, const HeapItem& b);
  void ForgetCancelled(std::uint64_t n);
  void Run();
  void Wake();
  // Takes the submissions, fires what is due at `now`, drops dead entries on
  // top, and publishes the earliest deadline left (INT64_MAX if none).
  std::size_t Serve(std::int64_t now) WEFT_REQUIRES(heap_mutex_);
  void TakeSubmissions() WEFT_REQUIRES(heap_mutex_);
  void Compact() WEFT_REQUIRES(heap_mutex_);
  void PushHeap(TimerEntry* entry) WEFT_REQUIRES(heap_mutex_);
  TimerEntry* PopHeap() WEFT_REQUIRES(heap_mutex_);

  const std::size_t group_index_;
  std::thread thread_;
  std::function<bool()> workers_awake_;

  alignas(64) std::atomic<TimerEntry*> submitted_{nullptr};
  std::atomic<std::uint64_t> pending_{0};  // submissions not yet taken
  // The deadline (steady_clock ticks) the thread sleeps until; the minimum while
  // it is awake, so that no producer wakes it then.
  alignas(64) std::atomic<std::int64_t> sleeping_until_{INT64_MIN};
  std::atomic<std::uint32_t> wake_word_{0};
  // Set while the thread sleeps as the backstop only (workers are awake).
  std::atomic<bool> backstop_only_{false};
  std::atomic<bool> stopping_{false};
  // The earliest deadline in the heap (ticks), INT64_MAX when it is empty.
  alignas(64) std::atomic<std::int64_t> earliest_{INT64_MAX};
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> fired_{0};
  std::atomic<std::uint64_t> in_heap_{0};  // heap_.size(), for held()

  // Held by whoever serves the deadlines: the timer thread or a worker.
  Mutex heap_mutex_;
  std::vector<HeapItem> heap_ WEFT_GUARDED_BY(heap_mutex_);
  std::uint64_t next_sequence_ WEFT_GUARDED_BY(heap_mutex_) = 0;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_TIMER_WORKER_H_
