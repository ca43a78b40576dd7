#include "runtime/detail/blocking_pool.h"

#include <pthread.h>

#include <algorithm>
#include <system_error>
#include <utility>

#include "runtime/detail/check.h"

namespace weft::detail {
namespace {

// The pool whose thread this is; null on every other thread.
thread_local const BlockingPool* current_pool = nullptr;

}  // namespace

BlockingPool::~BlockingPool() { Close(); }

BlockingPool& BlockingPool::Global() {
  static BlockingPool* const pool = new BlockingPool();
  return *pool;
}

bool BlockingPool::OnPoolThread() { return current_pool != nullptr; }

void BlockingPool::Open(std::size_t max_threads, std::chrono::milliseconds idle_timeout) {
  WEFT_CHECK(max_threads >= 1) << "BlockingPool::Open: max_threads must be at least 1";
  LockGuard<Mutex> lock(mutex_);
  WEFT_CHECK(!open_) << "BlockingPool::Open: the pool is open already";
  open_ = true;
  max_threads_ = max_threads;
  idle_timeout_ = idle_timeout;
  peak_threads_ = threads_.size();
  tasks_run_ = 0;
  threads_started_ = 0;
  threads_retired_ = 0;
}

void BlockingPool::Close() {
  WEFT_CHECK(current_pool != this)
      << "the blocking pool was closed from one of its own threads (TerminateRuntime() "
         "called inside RunBlocking?); it waits for its threads and would never return";
  std::vector<std::thread> exited;
  mutex_.lock();
  open_ = false;
  for (Thread* idle : idle_) idle->wake.notify_one();
  while (!threads_.empty()) all_exited_.wait(mutex_);
  exited.swap(exited_);
  mutex_.unlock();
  JoinAll(exited);
}

bool BlockingPool::Submit(BlockingTask* task) {
  LockGuard<Mutex> lock(mutex_);
  if (!open_) return false;
  if (!idle_.empty()) {
    Thread* thread = idle_.back();
    idle_.pop_back();
    thread->idle = false;
    thread->handoff = task;
    thread->wake.notify_one();
    return true;
  }
  if (threads_.size() < max_threads_ && StartThread(task)) return true;
  // Every thread is busy: the first to finish takes the oldest task. With no
  // thread at all (the system refused to start one), nobody would.
  if (threads_.empty()) return false;
  task->next = nullptr;
  if (queue_tail_ == nullptr) {
    queue_head_ = task;
  } else {
    queue_tail_->next = task;
  }
  queue_tail_ = task;
  ++queue_depth_;
  return true;
}

BlockingPoolStats BlockingPool::Stats() const {
  LockGuard<Mutex> lock(mutex_);
  BlockingPoolStats stats;
  stats.max_threads = max_threads_;
  stats.threads = threads_.size();
  stats.idle_threads = idle_.size();
  stats.queue_depth = queue_depth_;
  stats.peak_threads = peak_threads_;
  stats.tasks_run = tasks_run_;
  stats.threads_started = threads_started_;
  stats.threads_retired = threads_retired_;
  return stats;
}

bool BlockingPool::StartThread(BlockingTask* first) {
  threads_.emplace_back();
  const ThreadList::iterator self = std::prev(threads_.end());
  self->handoff = first;
  try {
    // The new thread waits for mutex_ (held here) before it looks at `self`,
    // so the handle is in place by then.
    self->thread = std::thread([this, self] { Loop(self); });
  } catch (const std::system_error&) {
    threads_.erase(self);  // EAGAIN: out of threads or memory
    return false;
  }
  ++threads_started_;
  peak_threads_ = std::max(peak_threads_, threads_.size());
  return true;
}

BlockingTask* BlockingPool::PopQueued() {
  BlockingTask* task = queue_head_;
  if (task == nullptr) return nullptr;
  queue_head_ = task->next;
  if (queue_head_ == nullptr) queue_tail_ = nullptr;
  --queue_depth_;
  return task;
}

void BlockingPool::JoinAll(std::vector<std::thread>& threads) {
  for (std::thread& thread : threads) thread.join();
  threads.clear();
}

void BlockingPool::Loop(ThreadList::iterator self) {
  current_pool = this;
  pthread_setname_np(pthread_self(), "weft-blocking");  // for top -H, gdb, perf
  std::vector<std::thread> exited;
  mutex_.lock();
  BlockingTask* task = std::exchange(self->handoff, nullptr);
  for (;;) {
    if (task == nullptr) task = PopQueued();
    if (task != nullptr) {
      mutex_.unlock();
      task->run(task);  // may free the task or wake its fiber: not touched again
      mutex_.lock();
      ++tasks_run_;
      task = nullptr;
      continue;
    }
    if (!open_) break;
    if (!exited_.empty()) {
      // Threads that retired are joined by the ones still here (or by Close).
      exited.swap(exited_);
      mutex_.unlock();
      JoinAll(exited);
      mutex_.lock();
      continue;  // a task may have been queued meanwhile
    }
    self->idle = true;
    idle_.push_back(&*self);
    const auto deadline = std::chrono::steady_clock::now() + idle_timeout_;
    while (self->handoff == nullptr && open_) {
      if (self->wake.wait_until(mutex_, deadline) == std::cv_status::timeout) break;
    }
    // Submit() takes a thread off idle_ as it hands it a task.
    task = std::exchange(self->handoff, nullptr);
    if (task != nullptr) continue;
    if (self->idle) {
      idle_.erase(std::find(idle_.begin(), idle_.end(), &*self));
      self->idle = false;
    }
    if (!open_) continue;  // closing: runs what is queued, then leaves
    ++threads_retired_;
    break;
  }
  exited_.push_back(std::move(self->thread));
  threads_.erase(self);
  if (threads_.empty()) all_exited_.notify_all();
  mutex_.unlock();
  current_pool = nullptr;
}

}  // namespace weft::detail
