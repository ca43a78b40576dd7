#include "runtime/scheduling_group/timer_worker.h"

#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstdio>

#include "runtime/detail/futex.h"

namespace weft::detail {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t Ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

}  // namespace

// Heap order: earliest deadline on top, submission order among equal deadlines.
bool TimerWorker::Later(const HeapItem& a, const HeapItem& b) {
  if (a.deadline != b.deadline) return a.deadline > b.deadline;
  return a.sequence > b.sequence;
}

TimerWorker::TimerWorker(std::size_t group_index) : group_index_(group_index) {}

TimerWorker::~TimerWorker() { Stop(); }

void TimerWorker::Start(std::function<bool()> workers_awake) {
  workers_awake_ = std::move(workers_awake);
  thread_ = std::thread([this] { Run(); });
}

void TimerWorker::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_seq_cst);
  Wake();
  thread_.join();
  LockGuard<Mutex> lock(heap_mutex_);
  TakeSubmissions();
  for (const HeapItem& item : heap_) item.entry->on_drop(item.entry);
  heap_.clear();
  earliest_.store(INT64_MAX, std::memory_order_relaxed);
}

void TimerWorker::Wake() {
  wake_word_.fetch_add(1, std::memory_order_release);
  FutexWake(&wake_word_, 1);
}

void TimerWorker::Submit(TimerEntry* entry) {
  // Read before publishing: once pushed, the entry may fire and be re-armed.
  const std::int64_t deadline = Ticks(entry->deadline);
  TimerEntry* head = submitted_.load(std::memory_order_relaxed);
  do {
    entry->next_submitted = head;
  } while (!submitted_.compare_exchange_weak(head, entry, std::memory_order_release,
                                             std::memory_order_relaxed));
  const std::uint64_t pending = pending_.fetch_add(1, std::memory_order_relaxed) + 1;
  // Pairs with the fence in Run() before it re-reads submitted_.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  // While the thread is the backstop only (and holds a deadline), the workers
  // take submissions and sleeping_until_ is INT64_MIN: no producer wakes it.
  if (deadline < sleeping_until_.load(std::memory_order_relaxed) ||
      pending % kDrainBatch == 0) {
    Wake();
  }
}

bool TimerWorker::Cancel(TimerEntry* entry) {
  if (entry->dead.exchange(true, std::memory_order_acq_rel)) return false;
  const std::uint64_t cancelled = cancelled_.fetch_add(1, std::memory_order_relaxed) + 1;
  if (cancelled % kDrainBatch == 0) Wake();
  return true;
}

void TimerWorker::PushHeap(TimerEntry* entry) {
  heap_.push_back(HeapItem{Ticks(entry->deadline), next_sequence_++, entry});
  std::push_heap(heap_.begin(), heap_.end(), Later);
}

TimerEntry* TimerWorker::PopHeap() {
  std::pop_heap(heap_.begin(), heap_.end(), Later);
  TimerEntry* entry = heap_.back().entry;
  heap_.pop_back();
  return entry;
}

void TimerWorker::TakeSubmissions() {
  TimerEntry* list = submitted_.exchange(nullptr, std::memory_order_acquire);
  // The stack holds the newest first; reverse it so that equal deadlines keep
  // their submission order.
  TimerEntry* reversed = nullptr;
  std::uint64_t taken = 0;
  while (list != nullptr) {
    TimerEntry* next = list->next_submitted;
    list->next_submitted = reversed;
    reversed = list;
    list = next;
    ++taken;
  }
  pending_.fetch_sub(taken, std::memory_order_relaxed);
  std::uint64_t dropped = 0;
  for (TimerEntry* entry = reversed; entry != nullptr;) {
    TimerEntry* next = entry->next_submitted;
    if (entry->dead.load(std::memory_order_acquire)) {
      entry->on_drop(entry);  // cancelled before it ever reached the heap
      ++dropped;
    } else {
      PushHeap(entry);
    }
    entry = next;
  }
  if (dropped != 0) ForgetCancelled(dropped);
}

void TimerWorker::ForgetCancelled(std::uint64_t n) {
  std::uint64_t cancelled = cancelled_.load(std::memory_order_relaxed);
  while (!cancelled_.compare_exchange_weak(cancelled, cancelled - std::min(n, cancelled),
                                           std::memory_order_relaxed)) {
  }
}

void TimerWorker::Compact() {
  auto alive_end = std::partition(heap_.begin(), heap_.end(), [](const HeapItem& item) {
    return !item.entry->dead.load(std::memory_order_acquire);
  });
  const auto removed = static_cast<std::uint64_t>(heap_.end() - alive_end);
  for (auto it = alive_end; it != heap_.end(); ++it) it->entry->on_drop(it->entry);
  heap_.erase(alive_end, heap_.end());
  std::make_heap(heap_.begin(), heap_.end(), Later);
  ForgetCancelled(removed);
}

std::size_t TimerWorker::Serve(std::int64_t now) {
  TakeSubmissions();
  if (heap_.size() >= 1024 &&
      cancelled_.load(std::memory_order_relaxed) > heap_.size() / 2) {
    Compact();
  }
  std::size_t fired = 0;
  while (!heap_.empty() && heap_.front().deadline <= now) {
    TimerEntry* entry = PopHeap();
    if (entry->dead.load(std::memory_order_acquire)) {
      entry->on_drop(entry);
      ForgetCancelled(1);
    } else {
      fired_.fetch_add(1, std::memory_order_relaxed);
      entry->on_due(entry);
      ++fired;
    }
  }
  while (!heap_.empty() && heap_.front().entry->dead.load(std::memory_order_acquire)) {
    TimerEntry* entry = PopHeap();
    entry->on_drop(entry);
    ForgetCancelled(1);
  }
  in_heap_.store(heap_.size(), std::memory_order_relaxed);
  earliest_.store(heap_.empty() ? INT64_MAX : heap_.front().deadline,
                  std::memory_order_relaxed);
  return fired;
}

std::size_t TimerWorker::FireDue(Clock::time_point now) {
  const std::int64_t ticks = Ticks(now);
  if (ticks < earliest_.load(std::memory_order_relaxed) &&
      submitted_.load(std::memory_order_relaxed) == nullptr) {
    return 0;
  }
  // Someone else is serving: what is due is theirs to fire.
  if (!heap_mutex_.try_lock()) return 0;
  const std::size_t fired = Serve(ticks);
  heap_mutex_.unlock();
  return fired;
}

void TimerWorker::Run() {
  char name[16];
  std::snprintf(name, sizeof(name), "weft-g%zu-timer", group_index_ % 1000);
  pthread_setname_np(pthread_self(), name);
  // Wake up at the deadline, not up to 50 µs after it (the default slack).
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  for (;;) {
    sleeping_until_.store(INT64_MIN, std::memory_order_relaxed);
    Clock::time_point now = Clock::now();
    std::int64_t next;
    {
      LockGuard<Mutex> lock(heap_mutex_);
      Serve(Ticks(now));
      next = earliest_.load(std::memory_order_relaxed);
    }
    const std::uint32_t word = wake_word_.load(std::memory_order_acquire);
    // Awake workers fire deadlines themselves; we only make sure that one due
    // for a tick is fired, should they all be busy with fibers that do not
    // block. Pairs with the workers' announcements of sleep (seq_cst) and
    // WorkersWentToSleep: either we see the last one asleep, or it sees us
    // sleeping as the backstop and wakes us.
    backstop_only_.store(true, std::memory_order_seq_cst);
    bool backstop = workers_awake_();
    if (!backstop) backstop_only_.store(false, std::memory_order_seq_cst);
    // As the backstop with no deadline held, we would sleep for good: any
    // submission wakes us then (INT64_MAX), as when no worker is awake, so
    // that the backstop covers it too; with a deadline held we wake within a
    // tick anyway, and no submission does.
    const bool forever = next == INT64_MAX;
    sleeping_until_.store(backstop && !forever ? INT64_MIN : next,
                          std::memory_order_relaxed);
    // Pairs with the fence in Submit(): either the producer sees the deadline we
    // sleep until, or we see its entry now.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // Sleeping until `next` (or for good): nothing earlier may be missed. (As
    // the backstop with a deadline held, we look again within a tick.)
    if (!backstop || forever) {
      if (submitted_.load(std::memory_order_relaxed) != nullptr) continue;
      // A worker may have taken submissions since we served (they are no
      // longer in the stack, and their producers saw us awake): the earliest
      // deadline is then earlier than `next`. A serve holds the mutex from
      // taking to publishing, so under it we see any that took them.
      LockGuard<Mutex> lock(heap_mutex_);
      if (earliest_.load(std::memory_order_relaxed) < next) continue;
    }
    if (stopping_.load(std::memory_order_acquire)) break;
    if (forever) {
      FutexWait(&wake_word_, word);
    } else if (backstop) {
      now = Clock::now();
      const Clock::time_point from =
          std::min(Clock::time_point(Clock::duration(next)), now);
      FutexWaitUntil(&wake_word_, word, from + kBackstopTick);
    } else {
      FutexWaitUntil(&wake_word_, word, Clock::time_point(Clock::duration(next)));
    }
  }
}

}  // namespace weft::detail
