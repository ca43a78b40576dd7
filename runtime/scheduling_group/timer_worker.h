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
#include <thread>
#include <vector>

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

  void Start();
  // Stops the thread and drops every entry still held (on_drop, without on_due).
  void Stop();

  // Hands `entry` to the timer thread. Any thread; lock-free.
  void Submit(TimerEntry* entry);

  // Marks `entry` dead. Returns false if it was already dead.
  bool Cancel(TimerEntry* entry);

  std::uint64_t fired() const { return fired_.load(std::memory_order_relaxed); }
  // Entries held (in the heap or waiting to be taken), dead ones included.
  std::uint64_t held() const {
    return in_heap_.load(std::memory_order_relaxed) +
           pending_.load(std::memory_order_relaxed);
  }

  // Submissions or cancellations since the thread last looked that make a
  // producer wake it.
  static constexpr std::uint64_t kDrainBatch = 4096;

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
  void TakeSubmissions();
  void Compact();
  void PushHeap(TimerEntry* entry);
  TimerEntry* PopHeap();

  const std::size_t group_index_;
  std::thread thread_;

  alignas(64) std::atomic<TimerEntry*> submitted_{nullptr};
  std::atomic<std::uint64_t> pending_{0};  // submissions not yet taken
  // The deadline (steady_clock ticks) the thread sleeps until; the minimum while
  // it is awake, so that no producer wakes it then.
  alignas(64) std::atomic<std::int64_t> sleeping_until_{INT64_MIN};
  std::atomic<std::uint32_t> wake_word_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> cancelled_{0};
  std::atomic<std::uint64_t> fired_{0};
  std::atomic<std::uint64_t> in_heap_{0};  // heap_.size(), for held()

  // Owned by the timer thread.
  std::vector<HeapItem> heap_;
  std::uint64_t next_sequence_ = 0;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_SCHEDULING_GROUP_TIMER_WORKER_H_
