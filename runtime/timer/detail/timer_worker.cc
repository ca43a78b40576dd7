#include "runtime/timer/detail/timer_worker.h"

#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstdio>

#include "runtime/detail/futex.h"

namespace weft::detail {
namespace {

using Clock = std::chrono::steady_clock;

std::int64_t Ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

// Heap order: earliest deadline on top, submission order among equal deadlines.
bool Later(const TimerEntry* a, const TimerEntry* b) {
  if (a->deadline != b->deadline) return a->deadline > b->deadline;
  return a->sequence > b->sequence;
}

}  // namespace

TimerWorker::TimerWorker(std::size_t group_index) : group_index_(group_index) {}

TimerWorker::~TimerWorker() { Stop(); }

void TimerWorker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void TimerWorker::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true, std::memory_order_seq_cst);
  wake_word_.fetch_add(1, std::memory_order_seq_cst);
  FutexWake(&wake_word_, 1);
  thread_.join();
  TakeSubmissions();
  for (TimerEntry* entry : heap_) entry->on_drop(entry);
  heap_.clear();
}

void TimerWorker::Submit(TimerEntry* entry) {
  // Read before publishing: once pushed, the entry may fire and be re-armed.
  const std::int64_t deadline = Ticks(entry->deadline);
  TimerEntry* head = submitted_.load(std::memory_order_relaxed);
  do {
    entry->next_submitted = head;
  } while (!submitted_.compare_exchange_weak(head, entry, std::memory_order_release,
                                             std::memory_order_relaxed));
  // Pairs with the fence in Run() before it re-reads submitted_.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (deadline < sleeping_until_.load(std::memory_order_relaxed)) {
    wake_word_.fetch_add(1, std::memory_order_release);
    FutexWake(&wake_word_, 1);
  }
}

bool TimerWorker::Cancel(TimerEntry* entry) {
  if (entry->dead.exchange(true, std::memory_order_acq_rel)) return false;
  cancelled_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void TimerWorker::PushHeap(TimerEntry* entry) {
  entry->sequence = next_sequence_++;
  heap_.push_back(entry);
  std::push_heap(heap_.begin(), heap_.end(), Later);
}

TimerEntry* TimerWorker::PopHeap() {
  std::pop_heap(heap_.begin(), heap_.end(), Later);
  TimerEntry* entry = heap_.back();
  heap_.pop_back();
  return entry;
}

void TimerWorker::TakeSubmissions() {
  TimerEntry* list = submitted_.exchange(nullptr, std::memory_order_acquire);
  // The stack holds the newest first; reverse it so that equal deadlines keep
  // their submission order.
  TimerEntry* reversed = nullptr;
  while (list != nullptr) {
    TimerEntry* next = list->next_submitted;
    list->next_submitted = reversed;
    reversed = list;
    list = next;
  }
  for (TimerEntry* entry = reversed; entry != nullptr;) {
    TimerEntry* next = entry->next_submitted;
    PushHeap(entry);
    entry = next;
  }
}

void TimerWorker::Compact() {
  std::uint64_t removed = 0;
  auto alive_end = std::partition(heap_.begin(), heap_.end(), [](TimerEntry* entry) {
    return !entry->dead.load(std::memory_order_acquire);
  });
  for (auto it = alive_end; it != heap_.end(); ++it) {
    (*it)->on_drop(*it);
    ++removed;
  }
  heap_.erase(alive_end, heap_.end());
  std::make_heap(heap_.begin(), heap_.end(), Later);
  cancelled_.fetch_sub(std::min<std::uint64_t>(removed, cancelled_.load()),
                       std::memory_order_relaxed);
}

void TimerWorker::Run() {
  char name[16];
  std::snprintf(name, sizeof(name), "weft-g%zu-timer", group_index_ % 1000);
  pthread_setname_np(pthread_self(), name);
  // Wake up at the deadline, not up to 50 µs after it (the default slack).
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  for (;;) {
    sleeping_until_.store(INT64_MIN, std::memory_order_relaxed);
    TakeSubmissions();
    if (heap_.size() >= 1024 &&
        cancelled_.load(std::memory_order_relaxed) > heap_.size() / 2) {
      Compact();
    }
    const Clock::time_point now = Clock::now();
    while (!heap_.empty() && heap_.front()->deadline <= now) {
      TimerEntry* entry = PopHeap();
      if (entry->dead.load(std::memory_order_acquire)) {
        entry->on_drop(entry);
      } else {
        fired_.fetch_add(1, std::memory_order_relaxed);
        entry->on_due(entry);
      }
    }
    while (!heap_.empty() && heap_.front()->dead.load(std::memory_order_acquire)) {
      TimerEntry* entry = PopHeap();
      entry->on_drop(entry);
    }
    const std::uint32_t word = wake_word_.load(std::memory_order_acquire);
    const Clock::time_point next =
        heap_.empty() ? Clock::time_point::max() : heap_.front()->deadline;
    sleeping_until_.store(Ticks(next), std::memory_order_relaxed);
    // Pairs with the fence in Submit(): either the producer sees the deadline we
    // sleep until, or we see its entry now.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (submitted_.load(std::memory_order_relaxed) != nullptr) continue;
    if (stopping_.load(std::memory_order_acquire)) break;
    if (next == Clock::time_point::max()) {
      FutexWait(&wake_word_, word);
    } else {
      FutexWaitUntil(&wake_word_, word, next);
    }
  }
}

}  // namespace weft::detail
