// weft_future_bench: weft's futures (runtime/future/) next to Boost.Fiber's and
// std's in the same process, so that every ratio compares figures taken at the
// same time.
//
//   weft_future_bench [--quick] [--benchmark_filter=F-async] [--weft_...]
//
// Each batch runs inside a party of the runtime measured: a weft fiber, a
// Boost.Fiber fiber, or a plain thread for std. The party times its own loop
// (UseManualTime: starting and joining it is not timed), and one untimed batch
// runs first (stacks, page faults, allocator caches).
//   F-async           start a task returning an int and wait for its result, N times
//                     in sequence; ns per round trip. weft: BlockingGet(Async(f)) in
//                     a fiber, with a worker per CPU (weft) and with one worker
//                     (weft_1worker). boost_fiber: fibers::async(f).get() in a fiber
//                     on one thread (round_robin). std: std::async(launch::async,
//                     f).get() from a plain thread, i.e. a new thread per task.
//   F-then10          a promise, ten continuations adding one, SetValue(0), wait
//                     for the end of the chain and check it is 10; ns per chain.
//                     weft: Future::Then. Boost.Fiber and std have no Then; their
//                     closest user-visible form is a chain of ten async tasks, each
//                     of which get()s the previous future and adds one:
//                     fibers::async in a fiber (every step is a fiber), and
//                     std::async(launch::deferred) (every step runs inside the
//                     get() of the next, on the waiting thread: the cheapest std
//                     form, no thread at all). Boost.Fiber's default stacks come
//                     from malloc; glibc gives the ten freed at the end of a
//                     chain back to the kernel, so every chain faults fresh stack
//                     pages in (see docs/benchmarks.md on first touches here). That is
//                     what a Boost.Fiber user pays by default, and most of its
//                     figure.
//   F-then10-ready    weft only: MakeReadyFuture(0), ten Thens (each runs inside
//                     Then), BlockingGet.
//   F-handoff         ping-pong between the runtime's party and a plain thread
//                     through promises: the party fulfils one the thread waits
//                     on, the thread fulfils the next one the party waits on; ns
//                     per round trip. Both sides' promises and futures are made
//                     before the clock starts, and the first round trip (the
//                     thread starting up) is not timed. weft: a fiber on a worker
//                     per CPU (weft) and on one worker (weft_1worker: no idle
//                     worker spins beside the peer thread), the thread in
//                     BlockingGet. boost_fiber: a fiber on the benchmark's
//                     thread; the peer thread waits through Boost.Fiber's own
//                     (implicit, round_robin) scheduler, which is how Boost.Fiber
//                     lets a plain thread wait on its future. std: std::promise
//                     between two plain threads.
// boost_fiber_ws is Boost.Fiber's work_stealing on a thread per CPU
// (boost_work_stealing_pool.h), batches running in the main fiber of its first
// thread. A process can form only one such pool, and its idle threads spin: its
// measurements run last.
#include <boost/fiber/all.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "benchmark/bench_main.h"
#include "benchmark/benchmark.h"
#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/showcase.h"
#include "runtime/fiber.h"
#include "runtime/future/async.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/future.h"
#include "runtime/runtime.h"

namespace weft {

namespace {

using Clock = std::chrono::steady_clock;
using showcase::BoostWorkStealingPool;
using showcase::CpuCount;

constexpr int kChainLength = 10;

// The outcome of one batch: its timed part, or what went wrong.
struct Timing {
  double seconds = 0;
  std::string error;
};

double Seconds(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

// What a runtime offers the workloads: its futures, and how to run a batch in
// one of its parties.
struct WeftKit {
  using Promise = weft::Promise<int>;
  using Future = weft::Future<int>;
  static Future FutureOf(Promise& promise) { return promise.GetFuture(); }
  static void Set(Promise& promise, int value) { promise.SetValue(value); }
  static int Get(Future& future) { return BlockingGet(std::move(future)); }

  static int AsyncRoundTrip() {
    return BlockingGet(Async([] { return 1; }));
  }

  static int Chain() {
    Promise promise;
    Future future = promise.GetFuture();
    for (int step = 0; step < kChainLength; ++step) {
      future = std::move(future).Then([](int x) { return x + 1; });
    }
    promise.SetValue(0);
    return BlockingGet(std::move(future));
  }

  template <class Batch>
  static Timing RunInParty(const Batch& batch) {
    Timing timing;
    Fiber fiber([&] { timing = batch(); });
    fiber.Join();
    return timing;
  }
};

struct BoostFiberKit {
  using Promise = boost::fibers::promise<int>;
  using Future = boost::fibers::future<int>;
  static Future FutureOf(Promise& promise) { return promise.get_future(); }
  static void Set(Promise& promise, int value) { promise.set_value(value); }
  static int Get(Future& future) { return future.get(); }

  static int AsyncRoundTrip() {
    return boost::fibers::async([] { return 1; }).get();
  }

  static int Chain() {
    Promise promise;
    Future future = promise.get_future();
    for (int step = 0; step < kChainLength; ++step) {
      future = boost::fibers::async(
          [previous = std::move(future)]() mutable { return previous.get() + 1; });
    }
    promise.set_value(0);
    return future.get();
  }

  template <class Batch>
  static Timing RunInParty(const Batch& batch) {
    Timing timing;
    boost::fibers::fiber fiber([&] { timing = batch(); });
    fiber.join();
    return timing;
  }
};

struct StdKit {
  using Promise = std::promise<int>;
  using Future = std::future<int>;
  static Future FutureOf(Promise& promise) { return promise.get_future(); }
  static void Set(Promise& promise, int value) { promise.set_value(value); }
  static int Get(Future& future) { return future.get(); }

  static int AsyncRoundTrip() {
    return std::async(std::launch::async, [] { return 1; }).get();
  }

  static int Chain() {
    Promise promise;
    Future future = promise.get_future();
    for (int step = 0; step < kChainLength; ++step) {
      future = std::async(
          std::launch::deferred,
          [previous = std::move(future)]() mutable { return previous.get() + 1; });
    }
    promise.set_value(0);
    return future.get();
  }

  // The calling (benchmark) thread is the party.
  template <class Batch>
  static Timing RunInParty(const Batch& batch) {
    return batch();
  }
};

// F-async: `n` round trips in sequence; each result is 1.
template <class Kit>
Timing AsyncRoundTrips(std::int64_t n) {
  std::int64_t sum = 0;
  const Clock::time_point start = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) sum += Kit::AsyncRoundTrip();
  Timing timing{Seconds(start, Clock::now()), ""};
  if (sum != n) {
    timing.error =
        "results add up to " + std::to_string(sum) + ", expected " + std::to_string(n);
  }
  return timing;
}

// F-then10: `n` chains in sequence; each ends in kChainLength.
template <class Kit>
Timing Chains(std::int64_t n) {
  std::int64_t wrong = 0;
  const Clock::time_point start = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) wrong += Kit::Chain() != kChainLength;
  Timing timing{Seconds(start, Clock::now()), ""};
  if (wrong != 0) timing.error = std::to_string(wrong) + " chains did not end in 10";
  return timing;
}

// F-then10-ready: weft's chain on a future that is ready before the first Then.
Timing ReadyChains(std::int64_t n) {
  std::int64_t wrong = 0;
  const Clock::time_point start = Clock::now();
  for (std::int64_t i = 0; i < n; ++i) {
    Future<int> future = MakeReadyFuture(0);
    for (int step = 0; step < kChainLength; ++step) {
      future = std::move(future).Then([](int x) { return x + 1; });
    }
    wrong += BlockingGet(std::move(future)) != kChainLength;
  }
  Timing timing{Seconds(start, Clock::now()), ""};
  if (wrong != 0) timing.error = std::to_string(wrong) + " chains did not end in 10";
  return timing;
}

// F-handoff: `n` timed round trips between a party of Kit's runtime and a plain
// thread, after one untimed one. Round i: the party sends i, the thread answers
// i + 1.
template <class Kit>
Timing HandOff(std::int64_t n) {
  const std::size_t rounds = static_cast<std::size_t>(n) + 1;
  std::vector<typename Kit::Promise> to_thread(rounds);
  std::vector<typename Kit::Promise> to_party(rounds);
  std::vector<typename Kit::Future> at_thread;
  std::vector<typename Kit::Future> at_party;
  at_thread.reserve(rounds);
  at_party.reserve(rounds);
  for (std::size_t i = 0; i < rounds; ++i) {
    at_thread.push_back(Kit::FutureOf(to_thread[i]));
    at_party.push_back(Kit::FutureOf(to_party[i]));
  }
  std::thread peer([&] {
    for (std::size_t i = 0; i < rounds; ++i) {
      Kit::Set(to_party[i], Kit::Get(at_thread[i]) + 1);
    }
  });
  const Timing timing = Kit::RunInParty([&] {
    std::int64_t wrong = 0;
    Clock::time_point start;
    for (std::size_t i = 0; i < rounds; ++i) {
      if (i == 1) start = Clock::now();
      Kit::Set(to_thread[i], static_cast<int>(i));
      wrong += Kit::Get(at_party[i]) != static_cast<int>(i) + 1;
    }
    Timing result{Seconds(start, Clock::now()), ""};
    if (wrong != 0) result.error = std::to_string(wrong) + " answers were wrong";
    return result;
  });
  peer.join();
  return timing;
}

enum Contender {
  kWeft,
  kWeftOneWorker,
  kBoostFiber,
  kBoostFiberWs,
  kStd,
  kContenderCount
};
const char* const kContenderNames[] = {"weft", "weft_1worker", "boost_fiber",
                                       "boost_fiber_ws", "std"};

enum class Kind { kAsync, kChain, kReadyChain, kHandOff };

struct Workload {
  std::string id;
  std::string unit;
  Kind kind;
  std::int64_t operations_per_batch;
  std::vector<Contender> contenders;
};

// weft (as `ours`) is at least `factor` times faster than `peer` on `workload`.
// Async round trips compare like with like: one weft worker with Boost.Fiber's
// one thread, a worker per CPU with work_stealing on a thread per CPU.
struct Target {
  const char* workload;
  Contender ours;
  Contender peer;
  double factor;
};
const Target kTargets[] = {{"F-async", kWeftOneWorker, kBoostFiber, 3.0},
                           {"F-async", kWeft, kBoostFiberWs, 3.0},
                           {"F-then10", kWeft, kBoostFiber, 3.0},
                           {"F-then10", kWeft, kBoostFiberWs, 3.0}};

struct Scale {
  std::int64_t async_round_trips = 5'000;  // per batch, every contender
  std::int64_t chains = 2'000;
  std::int64_t hand_offs = 5'000;
  double min_time = 0.5;
};

// Runs one batch of `workload` in a party of `Kit`'s runtime.
template <class Kit>
Timing RunBatch(const Workload& workload) {
  const std::int64_t n = workload.operations_per_batch;
  switch (workload.kind) {
    case Kind::kAsync:
      return Kit::RunInParty([n] { return AsyncRoundTrips<Kit>(n); });
    case Kind::kChain:
      return Kit::RunInParty([n] { return Chains<Kit>(n); });
    case Kind::kReadyChain:
      return Kit::RunInParty([n] { return ReadyChains(n); });
    case Kind::kHandOff:
      return HandOff<Kit>(n);
  }
  return {0, "unknown workload"};
}

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
  const double ns = seconds * 1e9 /
                    (static_cast<double>(workload.operations_per_batch) *
                     static_cast<double>(state.iterations()));
  ns_per_op[{workload.id, contender}] = ns;
  state.counters["ns_per_op"] = ns;
}

// Registers `workload` on those of its contenders that use the Boost.Fiber pool,
// or on the others.
void Add(const Scale& scale, const Workload& workload, bool pool) {
  for (Contender contender : workload.contenders) {
    if ((contender == kBoostFiberWs) != pool) continue;
    auto measure = [workload, contender](::benchmark::State& state) {
      switch (contender) {
        case kWeft:
        case kWeftOneWorker: {
          RuntimeOptions options = RuntimeOptions::FromFlags();
          options.concurrency_hint = contender == kWeft ? CpuCount() : 1;
          Runtime runtime(options);
          RunBatches(state, workload, contender,
                     [&] { return RunBatch<WeftKit>(workload); });
          break;
        }
        case kBoostFiber:
          RunBatches(state, workload, contender,
                     [&] { return RunBatch<BoostFiberKit>(workload); });
          break;
        case kBoostFiberWs:
          RunBatches(state, workload, contender, [&] {
            Timing timing;
            // The pool's main fiber is the party: no extra fiber around the batch.
            BoostWorkStealingPool::Get().Run([&] {
              timing = workload.kind == Kind::kAsync
                           ? AsyncRoundTrips<BoostFiberKit>(workload.operations_per_batch)
                           : Chains<BoostFiberKit>(workload.operations_per_batch);
            });
            return timing;
          });
          break;
        case kStd:
        case kContenderCount:
          RunBatches(state, workload, contender,
                     [&] { return RunBatch<StdKit>(workload); });
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
  const std::vector<Workload> workloads = {
      {"F-async",
       "ns/round-trip",
       Kind::kAsync,
       scale.async_round_trips,
       {kWeft, kWeftOneWorker, kBoostFiber, kBoostFiberWs, kStd}},
      {"F-then10",
       "ns/chain",
       Kind::kChain,
       scale.chains,
       {kWeft, kBoostFiber, kBoostFiberWs, kStd}},
      {"F-then10-ready", "ns/chain", Kind::kReadyChain, scale.chains, {kWeft}},
      {"F-handoff",
       "ns/round-trip",
       Kind::kHandOff,
       scale.hand_offs,
       {kWeft, kWeftOneWorker, kBoostFiber, kStd}}};
  for (bool pool : {false, true}) {
    for (const Workload& workload : workloads) Add(scale, workload, pool);
  }
  return workloads;
}

void PrintSummary(const std::vector<Workload>& workloads) {
  std::printf("\nTime per operation (ns, wall clock), all from this run:\n");
  std::printf("%-15s %-14s", "workload", "unit");
  for (const char* name : kContenderNames) std::printf(" %14s", name);
  std::printf("\n%s\n", std::string(105, '-').c_str());
  for (const Workload& workload : workloads) {
    std::printf("%-15s %-14s", workload.id.c_str(), workload.unit.c_str());
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

  std::printf("\n%-15s %-14s %-16s %8s %8s  %s\n", "target", "weft", "peer", "wanted",
              "ratio", "met");
  std::printf("%s\n", std::string(72, '-').c_str());
  for (const Target& target : kTargets) {
    const auto weft = ns_per_op.find({target.workload, target.ours});
    const auto peer = ns_per_op.find({target.workload, target.peer});
    std::printf("%-15s %-14s %-16s %7.1fx ", target.workload,
                kContenderNames[target.ours], kContenderNames[target.peer],
                target.factor);
    if (weft == ns_per_op.end() || peer == ns_per_op.end()) {
      std::printf("%8s  not measured\n", "-");
      continue;
    }
    const double ratio = peer->second / weft->second;
    std::printf("%7.2fx  %s\n", ratio, ratio >= target.factor ? "yes" : "NO");
  }

  // Every figure, then every peer's time over weft's (above 1: weft is faster).
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
  for (const Workload& workload : workloads) {
    const auto weft = ns_per_op.find({workload.id, kWeft});
    if (weft == ns_per_op.end()) continue;
    for (int c = kWeftOneWorker; c < kContenderCount; ++c) {
      const auto peer = ns_per_op.find({workload.id, c});
      if (peer != ns_per_op.end()) {
        std::printf("%s %s/weft %.2f\n", workload.id.c_str(), kContenderNames[c],
                    peer->second / weft->second);
      }
    }
  }
  for (const auto& [key, error] : errors) {
    std::printf("%s %s error: %s\n", key.first.c_str(), kContenderNames[key.second],
                error.c_str());
  }
}

int Run(const bench::Mode& mode) {
  Scale scale;
  if (mode.quick) {
    scale.async_round_trips = 500;
    scale.chains = 500;
    scale.hand_offs = 1'000;
    scale.min_time = 0.05;
  }

  std::printf(
      "CPUs: %u; per batch: %lld async round trips, %lld chains of %d, %lld hand-offs\n",
      CpuCount(), static_cast<long long>(scale.async_round_trips),
      static_cast<long long>(scale.chains), kChainLength,
      static_cast<long long>(scale.hand_offs));
  std::fflush(stdout);
  const std::vector<Workload> workloads = RegisterAll(scale);
  ::benchmark::RunSpecifiedBenchmarks();
  BoostWorkStealingPool::ShutDown();
  std::fflush(stdout);

  PrintSummary(workloads);
  return 0;
}

}  // namespace

}  // namespace weft

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_future_bench: Async+BlockingGet round trips, a chain of ten Thens and a\n"
      "promise hand-off between a fiber and a thread, next to Boost.Fiber's and std's\n"
      "futures.\n";
  program.quick = "smaller batches and a shorter minimum time per measurement";
  program.runtime_flags = "; concurrency_hint is set\n          per measurement";
  return weft::bench::Main(program, argc, argv, weft::Run);
}
