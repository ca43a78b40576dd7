// The threads on which Boost.Fiber's work_stealing scheduler runs the peer side of
// the multi-threaded workloads.
//
// work_stealing sizes a static table of schedulers when the first thread installs
// it and numbers later threads past that table, so a process can form exactly one
// such pool. It is therefore started on first use and lives until ShutDown(). Its
// threads use the scheduler's defaults, which spin while idle: the showcase runs
// every measurement that starts the pool after all the others, so that the
// spinning never competes with them for the CPUs.
#ifndef WEFT_BENCHMARK_BOOST_WORK_STEALING_POOL_H_
#define WEFT_BENCHMARK_BOOST_WORK_STEALING_POOL_H_

#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/mutex.hpp>
#include <cstddef>
#include <functional>
#include <future>
#include <thread>
#include <vector>

namespace weft::showcase {

// Thread-safe. Run() is called from plain threads outside the pool.
class BoostWorkStealingPool {
 public:
  // The process's pool of `CpuCount()` threads, started on the first call.
  static BoostWorkStealingPool& Get();
  // Stops and joins the pool's threads if it was started. The pool cannot be
  // started again afterwards; call once, after the last measurement.
  static void ShutDown();

  std::size_t thread_count() const { return thread_count_; }

  // Runs `task` on the pool's first thread, in that thread's main fiber, and
  // returns once it has returned. While `task` waits on Boost.Fiber primitives
  // its thread goes on running and stealing fibers like the others, which is
  // how a Boost.Fiber application's launching thread takes part in its pool.
  void Run(const std::function<void()>& task);

 private:
  struct Job {
    const std::function<void()>* task;
    std::promise<void> done;
  };

  explicit BoostWorkStealingPool(std::size_t threads);
  ~BoostWorkStealingPool();
  void Participate(std::size_t index);

  const std::size_t thread_count_;
  boost::fibers::buffered_channel<Job*> jobs_{2};
  boost::fibers::mutex stop_mutex_;
  boost::fibers::condition_variable stop_cv_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace weft::showcase

#endif  // WEFT_BENCHMARK_BOOST_WORK_STEALING_POOL_H_
