// Parties: the fibers or threads of a synchronisation workload, started together
// behind a gate and timed from the gate's opening to the last one's finish, so
// that creating and joining them is not part of the figure. The same workload
// code runs on every runtime through a "kit" naming its party type and
// primitives.
#ifndef WEFT_BENCHMARK_PARTIES_H_
#define WEFT_BENCHMARK_PARTIES_H_

#include <atomic>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/fiber.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_semaphore.h"

namespace weft::bench {

// A counting semaphore made of a mutex and a condition variable, for the peers
// (Boost.Fiber has none, C++17 neither, and libstdc++ 12's C++20 one can
// lose a wake-up: see StdContentionKit in contention.h).
template <class Mutex, class CondVar>
class MutexCvSemaphore {
 public:
  explicit MutexCvSemaphore(std::ptrdiff_t initial) : count_(initial) {}

  void Acquire() {
    std::unique_lock<Mutex> lock(mutex_);
    cv_.wait(lock, [this] { return count_ > 0; });
    --count_;
  }

  bool TryAcquire() {
    std::lock_guard<Mutex> lock(mutex_);
    if (count_ == 0) return false;
    --count_;
    return true;
  }

  void Release() {
    std::lock_guard<Mutex> lock(mutex_);
    ++count_;
    cv_.notify_one();
  }

 private:
  Mutex mutex_;
  CondVar cv_;
  std::ptrdiff_t count_;
};

// What a runtime offers the workloads: its parties and its primitives.
struct WeftKit {
  using Party = Fiber;
  using Mutex = FiberMutex;
  using CondVar = FiberConditionVariable;
  using Semaphore = FiberSemaphore;
  static void Join(Fiber& fiber) { fiber.Join(); }
};

struct BoostFiberKit {
  using Party = boost::fibers::fiber;
  using Mutex = boost::fibers::mutex;
  using CondVar = boost::fibers::condition_variable;
  using Semaphore = MutexCvSemaphore<Mutex, CondVar>;
  static void Join(boost::fibers::fiber& fiber) { fiber.join(); }
};

struct ThreadKit {
  using Party = std::thread;
  using Mutex = std::mutex;
  using CondVar = std::condition_variable;
  using Semaphore = MutexCvSemaphore<Mutex, CondVar>;
  static void Join(std::thread& thread) { thread.join(); }
};

// The outcome of one batch: its timed part, or what went wrong.
struct Timing {
  double seconds = 0;
  std::string error;
};

// Holds `parties` at a gate until all have arrived, then times them from the
// opening to the last one's finish.
template <class Kit>
class StartGate {
 public:
  explicit StartGate(int parties) : arriving_(parties), running_(parties) {}

  void Enter() {
    std::unique_lock<typename Kit::Mutex> lock(mutex_);
    if (--arriving_ == 0) all_arrived_.notify_one();
    opened_cv_.wait(lock, [this] { return opened_; });
  }

  void Leave() {
    if (running_.fetch_sub(1, std::memory_order_acq_rel) == 1) end_ = Clock::now();
  }

  void Open() {
    std::unique_lock<typename Kit::Mutex> lock(mutex_);
    all_arrived_.wait(lock, [this] { return arriving_ == 0; });
    opened_ = true;
    start_ = Clock::now();
    lock.unlock();
    opened_cv_.notify_all();
  }

  // After every party has been joined.
  double Seconds() const { return std::chrono::duration<double>(end_ - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;

  typename Kit::Mutex mutex_;
  typename Kit::CondVar all_arrived_;
  typename Kit::CondVar opened_cv_;
  int arriving_;
  bool opened_ = false;
  std::atomic<int> running_;
  Clock::time_point start_;
  Clock::time_point end_;
};

// Runs body(0) ... body(parties - 1) on parties of `Kit`, started together;
// returns the seconds from the start to the last one's end.
template <class Kit, class Body>
double RunParties(int parties, const Body& body) {
  StartGate<Kit> gate(parties);
  std::vector<typename Kit::Party> started;
  started.reserve(parties);
  for (int i = 0; i < parties; ++i) {
    started.emplace_back([&gate, &body, i] {
      gate.Enter();
      body(i);
      gate.Leave();
    });
  }
  gate.Open();
  for (typename Kit::Party& party : started) Kit::Join(party);
  return gate.Seconds();
}

// W4: parties 0 and 1 take turns `rounds` times each through a mutex, a
// condition variable and a turn flag; one round trip per round.
template <class Kit>
Timing PingPong(std::int64_t rounds) {
  typename Kit::Mutex mutex;
  typename Kit::CondVar cv;
  int turn = 0;
  auto party = [&](int me) {
    for (std::int64_t n = 0; n < rounds; ++n) {
      std::unique_lock<typename Kit::Mutex> lock(mutex);
      cv.wait(lock, [&] { return turn == me; });
      turn = 1 - me;
      lock.unlock();
      cv.notify_one();
    }
  };
  return {RunParties<Kit>(2, party), ""};
}

// W5: `parties` parties each increment a shared counter `locks` times, locked;
// the counter is checked.
template <class Kit>
Timing ContendedMutex(int parties, std::int64_t locks) {
  typename Kit::Mutex mutex;
  std::int64_t counter = 0;
  auto party = [&](int) {
    for (std::int64_t n = 0; n < locks; ++n) {
      std::lock_guard<typename Kit::Mutex> lock(mutex);
      ++counter;
    }
  };
  Timing timing{RunParties<Kit>(parties, party), ""};
  if (counter != parties * locks) {
    timing.error = "counter is " + std::to_string(counter) + ", expected " +
                   std::to_string(parties * locks);
  }
  return timing;
}

// Party 0 produces `items`, party 1 consumes them, through `slots` slots kept by
// two semaphores (free, filled): per item one Acquire/Release pair on each.
template <class Kit>
Timing BoundedBuffer(std::int64_t items, std::ptrdiff_t slots) {
  typename Kit::Semaphore free_slots(slots);
  typename Kit::Semaphore filled_slots(0);
  auto party = [&](int me) {
    auto& take = me == 0 ? free_slots : filled_slots;
    auto& give = me == 0 ? filled_slots : free_slots;
    for (std::int64_t n = 0; n < items; ++n) {
      take.Acquire();
      give.Release();
    }
  };
  return {RunParties<Kit>(2, party), ""};
}

}  // namespace weft::bench

#endif  // WEFT_BENCHMARK_PARTIES_H_
