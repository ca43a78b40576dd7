// The contention workloads C1-C5 (contention_bench.cc) as templates over a
// "kit" that names a runtime's parties and primitives, so that weft, std::thread
// and Boost.Fiber run the same code. Every run also checks what the primitive
// promises (never more holders than permits, no reader beside a writer, every
// value delivered exactly once, no party leaving a barrier phase before all have
// arrived, every waiter of a herd woken) and reports a broken promise as an error
// instead of a figure.
//
// Needs C++20: the threads' kit uses std::barrier.
#ifndef WEFT_BENCHMARK_CONTENTION_H_
#define WEFT_BENCHMARK_CONTENTION_H_

#include <algorithm>
#include <atomic>
#include <barrier>
#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/parties.h"
#include "runtime/fiber.h"
#include "runtime/sync/fiber_barrier.h"
#include "runtime/sync/fiber_channel.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_semaphore.h"
#include "runtime/sync/fiber_shared_mutex.h"
#include "runtime/this_fiber.h"

namespace weft::bench {

// A bounded queue made of a mutex and two condition variables, with Close():
// the plain threads' channel (the standard library has none).
template <class T, class Mutex, class CondVar>
class MutexCvChannel {
 public:
  explicit MutexCvChannel(std::size_t capacity) : slots_(capacity) {}

  // False once closed.
  bool Push(T value) {
    std::unique_lock<Mutex> lock(mutex_);
    not_full_.wait(lock, [this] { return closed_ || count_ < slots_.size(); });
    if (closed_) return false;
    slots_[(head_ + count_) % slots_.size()] = value;
    ++count_;
    lock.unlock();
    not_empty_.notify_one();
    return true;
  }

  // False once closed and drained.
  bool Pop(T* value) {
    std::unique_lock<Mutex> lock(mutex_);
    not_empty_.wait(lock, [this] { return closed_ || count_ > 0; });
    if (count_ == 0) return false;
    *value = slots_[head_];
    head_ = (head_ + 1) % slots_.size();
    --count_;
    lock.unlock();
    not_full_.notify_one();
    return true;
  }

  void Close() {
    {
      std::lock_guard<Mutex> lock(mutex_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  Mutex mutex_;
  CondVar not_full_;
  CondVar not_empty_;
  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool closed_ = false;
};

// Kits: the party type and the primitives of a runtime, with one spelling for
// the workloads. Mutex and CondVar also serve StartGate (parties.h).
struct WeftContentionKit {
  using Party = Fiber;
  using Mutex = FiberMutex;
  using CondVar = FiberConditionVariable;
  using Semaphore = FiberSemaphore;
  using SharedMutex = FiberSharedMutex;
  using Channel = FiberChannel<std::int64_t>;
  using Barrier = FiberBarrier;
  static void Join(Fiber& fiber) { fiber.Join(); }
  // On a plain thread among the fibers: std::this_thread::yield().
  static void Yield() { this_fiber::Yield(); }
  static void Acquire(Semaphore& semaphore) { semaphore.Acquire(); }
  static bool TryAcquire(Semaphore& semaphore) { return semaphore.TryAcquire(); }
  static void Release(Semaphore& semaphore) { semaphore.Release(); }
  static bool Push(Channel& channel, std::int64_t value) { return channel.Push(value); }
  static bool Pop(Channel& channel, std::int64_t* value) {
    std::optional<std::int64_t> got = channel.Pop();
    if (!got) return false;
    *value = *got;
    return true;
  }
  static void Close(Channel& channel) { channel.Close(); }
  static void ArriveAndWait(Barrier& barrier) { barrier.ArriveAndWait(); }
};

struct StdContentionKit {
  using Party = std::thread;
  using Mutex = std::mutex;
  using CondVar = std::condition_variable;
  // Not std::counting_semaphore: libstdc++ 12's can lose a wake-up under
  // contention (a release that finds the count above zero skips the notify
  // while an acquirer whose compare-and-swap failed is about to block; GCC bugs
  // 98033 and 104928): a full-size C1-sem-N16 batch on it did not finish in
  // 120 s.
  using Semaphore = MutexCvSemaphore<std::mutex, std::condition_variable>;
  using SharedMutex = std::shared_mutex;
  using Channel = MutexCvChannel<std::int64_t, std::mutex, std::condition_variable>;
  using Barrier = std::barrier<>;
  static void Join(std::thread& thread) { thread.join(); }
  static void Yield() { std::this_thread::yield(); }
  static void Acquire(Semaphore& semaphore) { semaphore.Acquire(); }
  static bool TryAcquire(Semaphore& semaphore) { return semaphore.TryAcquire(); }
  static void Release(Semaphore& semaphore) { semaphore.Release(); }
  static bool Push(Channel& channel, std::int64_t value) { return channel.Push(value); }
  static bool Pop(Channel& channel, std::int64_t* value) { return channel.Pop(value); }
  static void Close(Channel& channel) { channel.Close(); }
  static void ArriveAndWait(Barrier& barrier) { barrier.arrive_and_wait(); }
};

// Boost.Fiber has no semaphore, shared mutex or reusable barrier that mixes with
// threads: only the channel and condition variable workloads run on it.
struct BoostContentionKit {
  using Party = boost::fibers::fiber;
  using Mutex = boost::fibers::mutex;
  using CondVar = boost::fibers::condition_variable;
  // Holds one value less than its capacity, which must be a power of two.
  using Channel = boost::fibers::buffered_channel<std::int64_t>;
  static void Join(boost::fibers::fiber& fiber) { fiber.join(); }
  static void Yield() { boost::this_fiber::yield(); }
  static bool Push(Channel& channel, std::int64_t value) {
    return channel.push(value) == boost::fibers::channel_op_status::success;
  }
  static bool Pop(Channel& channel, std::int64_t* value) {
    return channel.pop(*value) == boost::fibers::channel_op_status::success;
  }
  static void Close(Channel& channel) { channel.close(); }
};

// The outcome of one batch.
struct Outcome {
  double seconds = 0;
  // C1, C2: the acquisitions (shared ones for C2) and the sum over them of the
  // holders inside right after each, counting itself.
  std::int64_t acquisitions = 0;
  std::int64_t inside_sum = 0;
  std::string error;  // what broke; empty when every check passed
};

using Clock = std::chrono::steady_clock;

inline double Seconds(Clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

// Runs body(0) ... body(parties - 1), started together behind a gate; the last
// `plain_threads` of them on std::threads, the others on the kit's parties
// (which may be std::threads too). Returns the seconds from the gate's opening
// to the last one's end.
template <class Kit, class Body>
double RunContenders(int parties, int plain_threads, const Body& body) {
  StartGate<Kit> gate(parties);
  const auto run = [&gate, &body](int i) {
    gate.Enter();
    body(i);
    gate.Leave();
  };
  std::vector<typename Kit::Party> own;
  std::vector<std::thread> threads;
  own.reserve(parties);
  for (int i = 0; i < parties; ++i) {
    if (i < parties - plain_threads) {
      own.emplace_back(run, i);
    } else {
      threads.emplace_back(run, i);
    }
  }
  gate.Open();
  for (typename Kit::Party& party : own) Kit::Join(party);
  for (std::thread& thread : threads) thread.join();
  return gate.Seconds();
}

// C1: each contender acquires a `permits`-unit semaphore `rounds` times; while
// it holds a unit it counts the holders inside (itself included) and yields.
// Afterwards exactly `permits` units must be free.
template <class Kit>
Outcome SemaphoreContention(int contenders, int plain_threads, int permits, int rounds) {
  typename Kit::Semaphore semaphore(permits);
  // Relaxed is enough: the semaphore orders a holder's decrement before the
  // increment of whoever takes its unit, so the count never overstates.
  std::atomic<int> holders{0};
  struct Tally {
    std::int64_t sum = 0;
    int most = 0;
  };
  std::vector<Tally> tallies(contenders);
  const auto contender = [&](int i) {
    Tally tally;
    for (int r = 0; r < rounds; ++r) {
      Kit::Acquire(semaphore);
      const int inside = holders.fetch_add(1, std::memory_order_relaxed) + 1;
      tally.sum += inside;
      tally.most = std::max(tally.most, inside);
      Kit::Yield();
      holders.fetch_sub(1, std::memory_order_relaxed);
      Kit::Release(semaphore);
    }
    tallies[i] = tally;
  };
  Outcome outcome;
  outcome.seconds = RunContenders<Kit>(contenders, plain_threads, contender);
  outcome.acquisitions = std::int64_t{contenders} * rounds;
  int most = 0;
  for (const Tally& tally : tallies) {
    outcome.inside_sum += tally.sum;
    most = std::max(most, tally.most);
  }
  if (most > permits) {
    outcome.error = std::to_string(most) + " holders were inside a semaphore of " +
                    std::to_string(permits) + " permits";
  }
  int free_units = 0;
  while (free_units <= permits && Kit::TryAcquire(semaphore)) ++free_units;
  if (free_units != permits && outcome.error.empty()) {
    outcome.error = "a semaphore of " + std::to_string(permits) + " permits had " +
                    (free_units > permits ? "more than " : "") +
                    std::to_string(free_units) + " free units after every release";
  }
  return outcome;
}

// C2: operation r of contender i is a write when (i + r) % write_every == 0: an
// exclusive lock around a check that nobody else is inside. Every other
// operation is a read: a shared lock, held across a yield, counting the readers
// inside.
template <class Kit>
Outcome SharedReaders(int contenders, int rounds, int write_every) {
  typename Kit::SharedMutex mutex;
  std::atomic<int> readers{0};
  std::atomic<int> writers{0};
  std::atomic<std::int64_t> reads{0};
  std::atomic<std::int64_t> inside_sum{0};
  std::atomic<std::int64_t> violations{0};
  const auto contender = [&](int i) {
    std::int64_t my_reads = 0;
    std::int64_t my_sum = 0;
    std::int64_t my_violations = 0;
    for (int r = 0; r < rounds; ++r) {
      if ((i + r) % write_every == 0) {
        mutex.lock();
        if (writers.fetch_add(1, std::memory_order_relaxed) != 0 ||
            readers.load(std::memory_order_relaxed) != 0) {
          ++my_violations;
        }
        writers.fetch_sub(1, std::memory_order_relaxed);
        mutex.unlock();
        continue;
      }
      mutex.lock_shared();
      my_sum += readers.fetch_add(1, std::memory_order_relaxed) + 1;
      if (writers.load(std::memory_order_relaxed) != 0) ++my_violations;
      Kit::Yield();
      readers.fetch_sub(1, std::memory_order_relaxed);
      mutex.unlock_shared();
      ++my_reads;
    }
    reads.fetch_add(my_reads, std::memory_order_relaxed);
    inside_sum.fetch_add(my_sum, std::memory_order_relaxed);
    violations.fetch_add(my_violations, std::memory_order_relaxed);
  };
  Outcome outcome;
  outcome.seconds = RunContenders<Kit>(contenders, 0, contender);
  outcome.acquisitions = reads.load();
  outcome.inside_sum = inside_sum.load();
  if (violations.load() != 0) {
    outcome.error = std::to_string(violations.load()) +
                    " times a reader and a writer, or two writers, were inside at once";
  }
  return outcome;
}

// The number of reads SharedReaders makes.
inline std::int64_t SharedReads(int contenders, int rounds, int write_every) {
  std::int64_t reads = 0;
  for (int i = 0; i < contenders; ++i) {
    for (int r = 0; r < rounds; ++r) reads += (i + r) % write_every != 0;
  }
  return reads;
}

// C3: `producers` parties each push `values` distinct values (producer p pushes
// p * values + k), the last one to finish closes the channel, and `consumers`
// parties pop until it is closed and drained. Each value must arrive once.
template <class Kit>
Outcome ChannelManyToMany(int producers, int consumers, std::size_t capacity,
                          int values) {
  typename Kit::Channel channel(capacity);
  const std::int64_t total = std::int64_t{producers} * values;
  std::vector<std::atomic<std::uint8_t>> seen(static_cast<std::size_t>(total));
  std::atomic<int> producing{producers};
  std::atomic<std::int64_t> failed_pushes{0};
  std::atomic<std::int64_t> strays{0};
  const auto party = [&](int i) {
    if (i < producers) {
      for (int k = 0; k < values; ++k) {
        if (!Kit::Push(channel, std::int64_t{i} * values + k)) {
          failed_pushes.fetch_add(1, std::memory_order_relaxed);
        }
      }
      if (producing.fetch_sub(1, std::memory_order_acq_rel) == 1) Kit::Close(channel);
      return;
    }
    std::int64_t value = 0;
    while (Kit::Pop(channel, &value)) {
      if (value < 0 || value >= total) {
        strays.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      seen[static_cast<std::size_t>(value)].fetch_add(1, std::memory_order_relaxed);
    }
  };
  Outcome outcome;
  outcome.seconds = RunContenders<Kit>(producers + consumers, 0, party);
  std::int64_t lost = 0;
  std::int64_t repeated = 0;
  for (const auto& count : seen) {
    const int n = count.load(std::memory_order_relaxed);
    lost += n == 0;
    repeated += n > 1;
  }
  if (lost + repeated + strays.load() + failed_pushes.load() != 0) {
    outcome.error = "of " + std::to_string(total) + " values, " + std::to_string(lost) +
                    " were lost, " + std::to_string(repeated) + " delivered twice, " +
                    std::to_string(strays.load()) + " never sent were received, " +
                    std::to_string(failed_pushes.load()) + " pushes failed";
  }
  return outcome;
}

// C4: party 0 notifies, parties 1 ... waiters wait. A herd: the notifier bumps
// a generation under the mutex and calls notify_all; every waiter wakes,
// re-checks the generation and counts itself under the mutex; the last to count
// wakes the notifier, which starts the next herd. The seconds are the
// notifier's, from the first bump to the end of the last herd.
template <class Kit>
Outcome ConditionHerd(int waiters, int herds) {
  typename Kit::Mutex mutex;
  typename Kit::CondVar herd_cv;
  typename Kit::CondVar notifier_cv;
  int generation = 0;
  int checked = 0;  // waiters that saw the current generation
  std::int64_t checks = 0;
  double seconds = 0;
  const auto party = [&](int i) {
    std::unique_lock<typename Kit::Mutex> lock(mutex);
    if (i == 0) {
      const auto all_checked = [&] { return checked == waiters; };
      notifier_cv.wait(lock, all_checked);
      const Clock::time_point start = Clock::now();
      for (int h = 0; h < herds; ++h) {
        checked = 0;
        ++generation;
        herd_cv.notify_all();
        notifier_cv.wait(lock, all_checked);
      }
      seconds = Seconds(Clock::now() - start);
      return;
    }
    for (int h = 0;; ++h) {
      ++checks;
      if (++checked == waiters) notifier_cv.notify_one();
      if (h == herds) break;
      herd_cv.wait(lock, [&] { return generation > h; });
    }
  };
  RunContenders<Kit>(waiters + 1, 0, party);
  Outcome outcome;
  outcome.seconds = seconds;
  const std::int64_t expected = std::int64_t{waiters} * (herds + 1);
  if (checks != expected) {
    outcome.error = "the waiters checked " + std::to_string(checks) + " times, not " +
                    std::to_string(expected);
  }
  return outcome;
}

// C5: `parties` parties (the last `plain_threads` of them plain threads) pass
// phases 0 ... phases of one barrier; after each phase a party checks that every
// party has arrived at it. The seconds are party 0's, from its return from
// phase 0 to its return from the last phase: `phases` phases.
template <class Kit>
Outcome BarrierPhases(int parties, int plain_threads, int phases) {
  typename Kit::Barrier barrier(parties);
  std::atomic<std::int64_t> arrivals{0};
  std::atomic<std::int64_t> early{0};
  Clock::time_point start;
  Clock::time_point end;
  const auto party = [&](int i) {
    for (int p = 0; p <= phases; ++p) {
      arrivals.fetch_add(1, std::memory_order_relaxed);
      Kit::ArriveAndWait(barrier);
      // The barrier orders every arrival of phase p before any return from it.
      if (arrivals.load(std::memory_order_relaxed) < std::int64_t{p + 1} * parties) {
        early.fetch_add(1, std::memory_order_relaxed);
      }
      if (i == 0 && p == 0) start = Clock::now();
    }
    if (i == 0) end = Clock::now();
  };
  RunContenders<Kit>(parties, plain_threads, party);
  Outcome outcome;
  outcome.seconds = Seconds(end - start);
  if (early.load() != 0) {
    outcome.error = std::to_string(early.load()) +
                    " times a party left a phase before every party had arrived";
  }
  return outcome;
}

}  // namespace weft::bench

#endif  // WEFT_BENCHMARK_CONTENTION_H_
