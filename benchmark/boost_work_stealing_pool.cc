#include "benchmark/boost_work_stealing_pool.h"

#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/operations.hpp>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "benchmark/showcase.h"

namespace weft::showcase {

namespace {

std::mutex pool_mutex;
BoostWorkStealingPool* pool = nullptr;
bool pool_shut_down = false;

}  // namespace

BoostWorkStealingPool& BoostWorkStealingPool::Get() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  if (pool == nullptr) {
    if (pool_shut_down) {
      std::fprintf(stderr, "weft_showcase: the Boost.Fiber pool was already shut down\n");
      std::abort();
    }
    pool = new BoostWorkStealingPool(CpuCount());
  }
  return *pool;
}

void BoostWorkStealingPool::ShutDown() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  delete pool;
  pool = nullptr;
  pool_shut_down = true;
}

BoostWorkStealingPool::BoostWorkStealingPool(std::size_t threads)
    : thread_count_(threads) {
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] { Participate(i); });
  }
}

BoostWorkStealingPool::~BoostWorkStealingPool() {
  jobs_.close();
  for (std::thread& thread : threads_) thread.join();
}

void BoostWorkStealingPool::Run(const std::function<void()>& task) {
  Job job{&task, {}};
  std::future<void> done = job.done.get_future();
  jobs_.push(&job);
  done.get();
}

void BoostWorkStealingPool::Participate(std::size_t index) {
  // Blocks until every thread of the pool has installed its scheduler.
  boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(
      static_cast<std::uint32_t>(thread_count_));
  if (index == 0) {
    Job* job = nullptr;
    while (jobs_.pop(job) == boost::fibers::channel_op_status::success) {
      // Owning the promise keeps it alive through set_value(), after which Run()
      // may return and free the job.
      std::promise<void> done = std::move(job->done);
      (*job->task)();
      done.set_value();
    }
    std::lock_guard<boost::fibers::mutex> lock(stop_mutex_);
    stopping_ = true;
    stop_cv_.notify_all();
  } else {
    // Parking the main fiber leaves the thread to its scheduler, which runs and
    // steals fibers until the pool stops.
    std::unique_lock<boost::fibers::mutex> lock(stop_mutex_);
    stop_cv_.wait(lock, [this] { return stopping_; });
  }
}

}  // namespace weft::showcase
