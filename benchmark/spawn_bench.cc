// W2a and W2b: the cost of a fiber's whole life, from creation to its end.
//
// W2a creates and joins one empty fiber at a time from inside a fiber: the
// latency of spawning when nothing else is going on. W2b starts a batch of
// detached fibers from a thread and waits for the last of them: the throughput of
// spawning from outside the runtime, while the workers run and retire the batch.
#include <atomic>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/showcase.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"

namespace weft::showcase {

namespace {

const Workload kSpawnJoin{"W2a",
                          "spawn+join",
                          {{Target::Kind::kFasterThanPeer, 3.0, Contender::kBoostFiber},
                           {Target::Kind::kFasterThanPeer, 3.0, Contender::kGo}}};
const Workload kSpawnBatch{
    "W2b", "fiber", {{Target::Kind::kFasterThanPeer, 2.0, Contender::kGo}}};

std::int64_t SpawnJoinsPerBatch(const Scale& scale) {
  if (scale.smoke) return 1'000;
  return scale.quick ? 5'000 : 10'000;
}
std::int64_t SpawnJoinBatches(const Scale& scale) {
  if (scale.smoke) return 1;
  return scale.quick ? 5 : 40;
}
std::int64_t FibersPerSpawnBatch(const Scale& scale) {
  if (scale.smoke) return 2'000;
  return scale.quick ? 50'000 : 100'000;
}
std::int64_t SpawnBatches(const Scale& scale) {
  if (scale.smoke) return 1;
  return scale.quick ? 2 : 5;
}
// A batch of 100k takes Boost.Fiber more than a second on a 2-core VM, and its
// untimed first batch several: one timed batch is enough to see it, and
// repetitions are there for a closer look.
std::int64_t BoostFiberSpawnBatches(const Scale&) { return 1; }

RuntimeOptions OneWorkerPerCpu() {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = CpuCount();
  return options;
}

// Counts the fibers of a W2b batch down; the fiber that finishes the count wakes
// the waiter. Mutex and ConditionVariable are those the waiter can block on: the
// std ones for a plain thread, Boost.Fiber's for a fiber whose thread must keep
// running other fibers meanwhile. It must outlive every fiber that counts down:
// the last one may still be inside notify_one() when Wait() returns.
template <class Mutex, class ConditionVariable>
class Countdown {
 public:
  void Reset(std::int64_t count) {
    std::lock_guard<Mutex> lock(mutex_);
    remaining_.store(count, std::memory_order_relaxed);
    done_ = false;
  }

  void CountDown(std::int64_t n = 1) {
    if (remaining_.fetch_sub(n, std::memory_order_acq_rel) != n) return;
    std::lock_guard<Mutex> lock(mutex_);
    done_ = true;
    cv_.notify_one();
  }

  void Wait() {
    std::unique_lock<Mutex> lock(mutex_);
    cv_.wait(lock, [this] { return done_; });
  }

 private:
  std::atomic<std::int64_t> remaining_{0};
  Mutex mutex_;
  ConditionVariable cv_;
  bool done_ = false;
};

void SpawnJoinOnWeft(::benchmark::State& state, std::int64_t spawns) {
  Runtime runtime(OneWorkerPerCpu());
  RunBatches(state, static_cast<double>(spawns), [spawns] {
    Fiber driver([spawns] {
      for (std::int64_t i = 0; i < spawns; ++i) {
        Fiber child([] {});
        child.Join();
      }
    });
    driver.Join();
  });
}

void SpawnJoinBoostFibers(std::int64_t spawns) {
  boost::fibers::fiber driver([spawns] {
    for (std::int64_t i = 0; i < spawns; ++i) {
      boost::fibers::fiber child([] {});
      child.join();
    }
  });
  driver.join();
}

void SpawnJoinOnBoostFiber(::benchmark::State& state, std::int64_t spawns) {
  RunBatches(state, static_cast<double>(spawns),
             [spawns] { SpawnJoinBoostFibers(spawns); });
}

void SpawnJoinOnBoostFiberWorkStealing(::benchmark::State& state, std::int64_t spawns) {
  BoostWorkStealingPool& pool = BoostWorkStealingPool::Get();
  const std::function<void()> batch = [spawns] { SpawnJoinBoostFibers(spawns); };
  RunBatches(state, static_cast<double>(spawns), [&pool, &batch] { pool.Run(batch); });
}

void SpawnBatchOnWeft(::benchmark::State& state, std::int64_t fibers) {
  // Declared before the runtime so that it outlives every fiber.
  Countdown<std::mutex, std::condition_variable> countdown;
  Runtime runtime(OneWorkerPerCpu());
  RunBatches(state, static_cast<double>(fibers), [&state, &countdown, fibers] {
    countdown.Reset(fibers);
    for (std::int64_t i = 0; i < fibers; ++i) {
      if (!StartFiberDetached([&countdown] { countdown.CountDown(); })) {
        state.SkipWithError("StartFiberDetached() failed");
        countdown.CountDown(fibers - i);
        break;
      }
    }
    countdown.Wait();
  });
}

void SpawnBatchOnBoostFiberWorkStealing(::benchmark::State& state, std::int64_t fibers) {
  // The pool outlives this function, and so may the batch's last fiber, still
  // leaving CountDown(), so the countdown is never destroyed.
  static auto* countdown =
      new Countdown<boost::fibers::mutex, boost::fibers::condition_variable>;
  BoostWorkStealingPool& pool = BoostWorkStealingPool::Get();
  const std::function<void()> batch = [fibers] {
    countdown->Reset(fibers);
    for (std::int64_t i = 0; i < fibers; ++i) {
      boost::fibers::fiber([] { countdown->CountDown(); }).detach();
    }
    countdown->Wait();
  };
  RunBatches(state, static_cast<double>(fibers), [&pool, &batch] { pool.Run(batch); });
}

}  // namespace

void AddSpawnMeasurements(const Scale& scale) {
  const std::int64_t spawns = SpawnJoinsPerBatch(scale);
  AddMeasurement(kSpawnJoin, Contender::kWeft, SpawnJoinBatches(scale),
                 [spawns](::benchmark::State& state) { SpawnJoinOnWeft(state, spawns); });
  AddMeasurement(
      kSpawnJoin, Contender::kBoostFiber, SpawnJoinBatches(scale),
      [spawns](::benchmark::State& state) { SpawnJoinOnBoostFiber(state, spawns); });
  AddMeasurement(kSpawnJoin, Contender::kBoostFiberWorkStealing, SpawnJoinBatches(scale),
                 [spawns](::benchmark::State& state) {
                   SpawnJoinOnBoostFiberWorkStealing(state, spawns);
                 });

  AddGoMeasurement(kSpawnJoin, "W2a", "W2a",
                   "-w2a_n=" + std::to_string(spawns * SpawnJoinBatches(scale)));

  const std::int64_t fibers = FibersPerSpawnBatch(scale);
  AddGoMeasurement(kSpawnBatch, "W2b", "W2b", "-w2b_n=" + std::to_string(fibers));
  AddMeasurement(
      kSpawnBatch, Contender::kWeft, SpawnBatches(scale),
      [fibers](::benchmark::State& state) { SpawnBatchOnWeft(state, fibers); });
  AddMeasurement(kSpawnBatch, Contender::kBoostFiberWorkStealing,
                 BoostFiberSpawnBatches(scale), [fibers](::benchmark::State& state) {
                   SpawnBatchOnBoostFiberWorkStealing(state, fibers);
                 });
}

}  // namespace weft::showcase
