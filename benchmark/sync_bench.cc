// weft_sync_bench: FiberMutex, FiberConditionVariable and FiberSemaphore on the
// workloads W4 and W5 of BENCHMARKS.md, next to Boost.Fiber and std::thread in the
// same process, so that every ratio compares figures taken at the same time.
//
//   weft_sync_bench [--quick] [--benchmark_filter=W5] [--weft_...]
//
// A batch's parties (fibers or threads) are created and parked at a start gate
// before its clock starts; the clock stops when the last party finishes. Google
// Benchmark gets that wall-clock time (UseManualTime: creating and joining the
// parties is not timed) and one untimed batch runs first (stacks, page faults).
//   W4-same-worker     two parties take turns through a mutex, a condition variable
//                      and a turn flag; ns per round trip. weft: concurrency_hint 1;
//                      boost_fiber: both fibers on one thread (round_robin).
//   W4-across-workers  the same on two workers: weft with two single-worker groups
//                      and stealing off, one party in each, boost_fiber_ws,
//                      threads (std::mutex and std::condition_variable).
//   W5                 64 parties each lock a mutex M times around a shared counter
//                      increment (checked against 64 * M); ns per lock/unlock.
//                      weft: a worker per CPU; boost_fiber; boost_fiber_ws; 64 threads.
//   Sem                a producer and a consumer pass items through 64 slots kept by
//                      two semaphores (free, filled): per item one Release/Acquire
//                      pair on each; ns per pair. weft: FiberSemaphore, a worker per
//                      CPU. Boost.Fiber and C++17 have no semaphore: their version is
//                      a counter under their mutex and condition variable.
// boost_fiber_ws is Boost.Fiber's work_stealing on a thread per CPU. A process can
// form only one such pool, and its idle threads spin: its measurements run last.
#include <gflags/gflags.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/bench_flags.h"
#include "benchmark/benchmark.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_condition_variable.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/sync/fiber_semaphore.h"

namespace weft {

namespace {

using Clock = std::chrono::steady_clock;

std::size_t CpuCount() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return std::max(1u, std::thread::hardware_concurrency());
}

// A counting semaphore made of a mutex and a condition variable, for the peers.
template <class Mutex, class CondVar>
class MutexCvSemaphore {
 public:
  explicit MutexCvSemaphore(std::ptrdiff_t initial) : count_(initial) {}

  void Acquire() {
    std::unique_lock<Mutex> lock(mutex_);
    cv_.wait(lock, [this] { return count_ > 0; });
    --count_;
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
  typename Kit::Mutex mutex_;
  typename Kit::CondVar all_arrived_;
  typename Kit::CondVar opened_cv_;
  int arriving_;
  bool opened_ = false;
  std::atomic<int> running_;
  Clock::time_point start_;
  Clock::time_point end_;
};

// Runs body(0) ... body(parties - 1) on parties of `Kit`, started together.
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

// W4: parties 0 and 1 take turns `rounds` times each; one round trip per round.
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

// W5: `parties` parties each increment a shared counter `locks` times, locked.
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

// Sem: party 0 produces `items`, party 1 consumes them, through `slots` slots.
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

// Boost.Fiber's work_stealing on `threads` threads; see the file comment.
class BoostFiberPool {
 public:
  explicit BoostFiberPool(std::size_t threads) {
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this, i, threads] {
        // Returns once every thread of the pool has installed the scheduler.
        boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(
            static_cast<std::uint32_t>(threads));
        // Parked in a Boost.Fiber wait, a thread runs and steals fibers.
        std::unique_lock<boost::fibers::mutex> lock(mutex_);
        for (;;) {
          cv_.wait(lock, [&] { return stopping_ || (i == 0 && task_ != nullptr); });
          if (stopping_) return;
          lock.unlock();
          (*task_)();
          lock.lock();
          task_ = nullptr;
          cv_.notify_all();
        }
      });
    }
  }

  ~BoostFiberPool() {
    {
      std::lock_guard<boost::fibers::mutex> lock(mutex_);
      stopping_ = true;
      cv_.notify_all();
    }
    for (std::thread& thread : threads_) thread.join();
  }

  // Runs `task` in the main fiber of the pool's first thread and waits for it.
  void Run(const std::function<void()>& task) {
    std::unique_lock<boost::fibers::mutex> lock(mutex_);
    task_ = &task;
    cv_.notify_all();
    cv_.wait(lock, [this] { return task_ == nullptr; });
  }

 private:
  boost::fibers::mutex mutex_;
  boost::fibers::condition_variable cv_;
  const std::function<void()>* task_ = nullptr;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

std::unique_ptr<BoostFiberPool> boost_fiber_pool;  // started on first use

enum Contender { kWeft, kBoostFiber, kBoostFiberWs, kThreads, kContenderCount };
const char* const kContenderNames[] = {"weft", "boost_fiber", "boost_fiber_ws",
                                       "threads"};

struct Workload {
  std::string id;
  std::string unit;
  std::size_t weft_workers;
  double operations_per_batch;
  std::vector<Contender> contenders;
};

// weft is at least `factor` times faster than `peer` on `workload`.
struct Target {
  const char* workload;
  Contender peer;
  double factor;
};
const Target kTargets[] = {{"W4-same-worker", kBoostFiber, 2.0},
                           {"W4-across-workers", kThreads, 3.0},
                           {"W5", kBoostFiberWs, 2.0},
                           {"W5", kThreads, 2.0}};

struct Scale {
  std::int64_t rounds = 20'000;  // W4, per batch
  int w5_parties = 64;
  std::int64_t w5_locks = 10'000;  // per party and batch
  std::int64_t items = 200'000;    // Sem, per batch
  double min_time = 0.5;
};

// Per measurement: ns per operation, or what went wrong.
std::map<std::pair<std::string, int>, double> ns_per_op;
std::map<std::pair<std::string, int>, std::string> errors;

template <class Batch>
void RunBatches(::benchmark::State& state, const Workload& workload, Contender contender,
                const Batch& batch) {
  Timing timing = batch();  // untimed
  double seconds = 0;
  for (auto _ : state) {
    if (!timing.error.empty()) break;
    timing = batch();
    state.SetIterationTime(timing.seconds);
    seconds += timing.seconds;
  }
  if (!timing.error.empty()) {
    errors[{workload.id, contender}] = timing.error;
    state.SkipWithError(timing.error.c_str());
    return;
  }
  const double ns =
      seconds * 1e9 /
      (workload.operations_per_batch * static_cast<double>(state.iterations()));
  ns_per_op[{workload.id, contender}] = ns;
  state.counters["ns_per_op"] = ns;
}

// Registers `workload` on those of its contenders that use the Boost.Fiber pool,
// or on the others; `run(kit)` runs one batch on the runtime of `Kit`.
template <class Run>
void Add(const Scale& scale, const Workload& workload, bool pool, const Run& run) {
  for (Contender contender : workload.contenders) {
    if ((contender == kBoostFiberWs) != pool) continue;
    auto measure = [workload, contender, run](::benchmark::State& state) {
      switch (contender) {
        case kWeft: {
          RuntimeOptions options = RuntimeOptions::FromFlags();
          options.concurrency_hint = workload.weft_workers;
          if (workload.id == "W4-across-workers") {
            // One worker per group and no stealing: the two parties (started
            // round-robin over the groups) stay on different workers, so every
            // hand-off crosses workers.
            options.scheduling_group_size = 1;
            options.work_stealing_ratio = 0;
          }
          Runtime runtime(options);
          RunBatches(state, workload, contender, [&] { return run(WeftKit{}); });
          break;
        }
        case kBoostFiber:
          RunBatches(state, workload, contender, [&] { return run(BoostFiberKit{}); });
          break;
        case kBoostFiberWs:
          if (!boost_fiber_pool) boost_fiber_pool.reset(new BoostFiberPool(CpuCount()));
          RunBatches(state, workload, contender, [&] {
            Timing timing;
            boost_fiber_pool->Run([&] { timing = run(BoostFiberKit{}); });
            return timing;
          });
          break;
        case kThreads:
        case kContenderCount:
          RunBatches(state, workload, contender, [&] { return run(ThreadKit{}); });
      }
    };
    const std::string name = workload.id + "/" + kContenderNames[contender];
    ::benchmark::RegisterBenchmark(name.c_str(), measure)
        ->UseManualTime()
        ->MinTime(scale.min_time);
  }
}

// Registers every measurement; returns the workloads, in the order of the table.
std::vector<Workload> RegisterAll(const Scale& scale) {
  const std::size_t cpus = CpuCount();
  const double rounds = static_cast<double>(scale.rounds);
  const double locks = static_cast<double>(scale.w5_parties * scale.w5_locks);
  const std::vector<Workload> workloads = {
      {"W4-same-worker", "ns/roundtrip", 1, rounds, {kWeft, kBoostFiber}},
      {"W4-across-workers", "ns/roundtrip", 2, rounds, {kWeft, kBoostFiberWs, kThreads}},
      {"W5", "ns/lock", cpus, locks, {kWeft, kBoostFiber, kBoostFiberWs, kThreads}},
      {"Sem", "ns/pair", cpus, 2.0 * scale.items, {kWeft, kBoostFiber, kThreads}}};
  auto ping_pong = [rounds = scale.rounds](auto kit) {
    return PingPong<decltype(kit)>(rounds);
  };
  auto contended = [parties = scale.w5_parties, locks = scale.w5_locks](auto kit) {
    return ContendedMutex<decltype(kit)>(parties, locks);
  };
  auto bounded_buffer = [items = scale.items](auto kit) {
    return BoundedBuffer<decltype(kit)>(items, 64);
  };
  for (bool pool : {false, true}) {
    Add(scale, workloads[0], pool, ping_pong);
    Add(scale, workloads[1], pool, ping_pong);
    Add(scale, workloads[2], pool, contended);
    Add(scale, workloads[3], pool, bounded_buffer);
  }
  return workloads;
}

void PrintSummary(const std::vector<Workload>& workloads) {
  std::printf("\nTime per operation (ns, wall clock), all from this run:\n");
  std::printf("%-18s %-13s", "workload", "unit");
  for (const char* name : kContenderNames) std::printf(" %14s", name);
  std::printf("\n%s\n", std::string(92, '-').c_str());
  for (const Workload& workload : workloads) {
    std::printf("%-18s %-13s", workload.id.c_str(), workload.unit.c_str());
    for (int c = 0; c < kContenderCount; ++c) {
      const auto found = ns_per_op.find({workload.id, c});
      if (found != ns_per_op.end()) {
        std::printf(" %14.1f", found->second);
      } else {
        std::printf(" %14s", errors.count({workload.id, c}) > 0 ? "ERROR" : "-");
      }
    }
    std::printf("\n");
  }

  std::printf("\n%-18s %-16s %8s %8s  %s\n", "target", "peer", "wanted", "ratio", "met");
  std::printf("%s\n", std::string(60, '-').c_str());
  for (const Target& target : kTargets) {
    const auto weft = ns_per_op.find({target.workload, kWeft});
    const auto peer = ns_per_op.find({target.workload, target.peer});
    std::printf("%-18s %-16s %7.1fx ", target.workload, kContenderNames[target.peer],
                target.factor);
    if (weft == ns_per_op.end() || peer == ns_per_op.end()) {
      std::printf("%8s  not measured\n", "-");
      continue;
    }
    const double ratio = peer->second / weft->second;
    std::printf("%7.2fx  %s\n", ratio, ratio >= target.factor ? "yes" : "NO");
  }

  std::printf("\n");
  for (const Workload& workload : workloads) {
    for (int c = 0; c < kContenderCount; ++c) {
      const auto found = ns_per_op.find({workload.id, c});
      if (found != ns_per_op.end()) {
        std::printf("%s %s %.1f %s\n", workload.id.c_str(), kContenderNames[c],
                    found->second, workload.unit.c_str());
      }
    }
  }
  for (const auto& [key, error] : errors) {
    std::printf("%s %s error: %s\n", key.first.c_str(), kContenderNames[key.second],
                error.c_str());
  }
}

void PrintHelp() {
  ::benchmark::PrintDefaultHelp();
  std::printf(
      "  [--quick]\n"
      "          smaller batches and a shorter minimum time per measurement\n"
      "  [--weft_...=...]\n"
      "          weft's runtime flags (runtime/flags.cc); concurrency_hint is set\n"
      "          per workload\n");
}

}  // namespace

}  // namespace weft

int main(int argc, char** argv) {
  using namespace weft;
  Scale scale;
  if (bench::TakeQuickFlag(&argc, argv)) {
    scale.rounds = 5'000;
    scale.w5_locks = 2'000;
    scale.items = 50'000;
    scale.min_time = 0.1;
  }
  ::benchmark::Initialize(&argc, argv, PrintHelp);
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  std::printf("CPUs: %zu; W5: %d parties x %lld locks; W4: %lld round trips per batch\n",
              CpuCount(), scale.w5_parties, static_cast<long long>(scale.w5_locks),
              static_cast<long long>(scale.rounds));
  std::fflush(stdout);
  const std::vector<Workload> workloads = RegisterAll(scale);
  ::benchmark::RunSpecifiedBenchmarks();
  boost_fiber_pool.reset();
  std::fflush(stdout);

  PrintSummary(workloads);
  ::benchmark::Shutdown();
  return 0;
}
