// The blocking pool: plain threads that run code which blocks its thread
// (RunBlocking in runtime/blocking.h, the name lookups of runtime/io/resolve.h),
// so that the FiberWorkers never do.
//
// The pool starts no thread until a task comes. A task is handed to the most
// recently idle thread; with none idle, a new thread starts, up to
// `max_threads`; beyond that, tasks wait in a FIFO queue and each thread takes
// the next one as it finishes. A thread that has had nothing to do for
// `idle_timeout` exits (handing work to the most recently idle thread first
// lets the others reach their timeout, so a pool that grew for a burst shrinks
// once the burst is over).
//
// StartRuntime() opens the process's pool (Global()) with the runtime's
// options; TerminateRuntime() closes it once every fiber has finished. Close()
// refuses new tasks, lets every accepted one run to its end, and joins every
// thread: a task accepted always runs.
//
// Thread-safe: any fiber or thread may call Submit() and Stats().
#ifndef WEFT_RUNTIME_DETAIL_BLOCKING_POOL_H_
#define WEFT_RUNTIME_DETAIL_BLOCKING_POOL_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <list>
#include <thread>
#include <vector>

#include "runtime/detail/mutex.h"
#include "runtime/runtime_stats.h"
#include "runtime/thread_annotations.h"

namespace weft::detail {

// A unit of work for the pool, owned by the submitter. The pool calls
// run(task) once, on one of its threads, and does not touch the task after
// run() returns, so run() may free it, or wake a fiber whose stack holds it.
struct BlockingTask {
  void (*run)(BlockingTask* task) = nullptr;
  BlockingTask* next = nullptr;  // the pool's queue link
};

class BlockingPool {
 public:
  BlockingPool() = default;
  // Closes the pool (see Close()).
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  // The process's pool, opened and closed by the runtime. Never destroyed, so
  // that a plain thread may still call Submit() (and be refused) at exit.
  static BlockingPool& Global();

  // Lets Submit() accept tasks, with at most `max_threads` (>= 1) threads
  // that exit after `idle_timeout` without work. Resets the statistics'
  // counters. Aborts if the pool is open already.
  void Open(std::size_t max_threads, std::chrono::milliseconds idle_timeout);

  // Refuses further tasks, waits until every task accepted has run, and joins
  // every thread. Safe to call on a closed pool (it does nothing). Must not be
  // called from a pool thread (it would wait for itself; aborts with a
  // message).
  void Close();

  // Queues `task` to run on a pool thread. Returns false, leaving the task
  // untouched, when the pool is not open or no thread can run it (the
  // system refused to start one and none is running); the caller then runs
  // it itself or reports the failure.
  bool Submit(BlockingTask* task);

  // Whether the calling thread is one of this pool's threads.
  static bool OnPoolThread();

  BlockingPoolStats Stats() const;

 private:
  struct Thread {
    std::thread thread;
    std::condition_variable_any wake;  // with mutex_
    // A task given to this thread while it was idle.
    BlockingTask* handoff = nullptr;
    bool idle = false;
  };
  using ThreadList = std::list<Thread>;

  void Loop(ThreadList::iterator self);
  // Starts a thread that runs `first` and then whatever comes; false if the
  // system refused.
  bool StartThread(BlockingTask* first) WEFT_REQUIRES(mutex_);
  BlockingTask* PopQueued() WEFT_REQUIRES(mutex_);
  // Joins the threads that have exited (taken out of exited_ under the lock).
  static void JoinAll(std::vector<std::thread>& threads);

  mutable Mutex mutex_;
  std::condition_variable_any all_exited_;  // with mutex_; for Close()
  bool open_ WEFT_GUARDED_BY(mutex_) = false;
  std::size_t max_threads_ WEFT_GUARDED_BY(mutex_) = 1;
  std::chrono::milliseconds idle_timeout_ WEFT_GUARDED_BY(mutex_){10000};
  ThreadList threads_ WEFT_GUARDED_BY(mutex_);
  // Idle threads, the most recently idle last: it gets the next task.
  std::vector<Thread*> idle_ WEFT_GUARDED_BY(mutex_);
  // Threads that have left their loop and wait to be joined.
  std::vector<std::thread> exited_ WEFT_GUARDED_BY(mutex_);
  BlockingTask* queue_head_ WEFT_GUARDED_BY(mutex_) = nullptr;
  BlockingTask* queue_tail_ WEFT_GUARDED_BY(mutex_) = nullptr;
  std::size_t queue_depth_ WEFT_GUARDED_BY(mutex_) = 0;
  std::size_t peak_threads_ WEFT_GUARDED_BY(mutex_) = 0;
  std::uint64_t tasks_run_ WEFT_GUARDED_BY(mutex_) = 0;
  std::uint64_t threads_started_ WEFT_GUARDED_BY(mutex_) = 0;
  std::uint64_t threads_retired_ WEFT_GUARDED_BY(mutex_) = 0;
};

}  // namespace weft::detail

#endif  // WEFT_RUNTIME_DETAIL_BLOCKING_POOL_H_
