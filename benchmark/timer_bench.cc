// weft_timer_bench: what weft's timers cost, and how late its sleeping fibers
// wake next to Boost.Fiber's and plain threads' with the same deadlines.
//
//   weft_timer_bench [--quick] [--benchmark_filter=SleepFor] [--weft_...]
//
// Google Benchmark part, wall-clock time per operation ("CPU" is the CPU time of
// the whole process, since a fiber may move between workers while it sleeps):
//   SetTimerKillTimer/fiber    SetTimer(now + 1 s, [] {}) then KillTimer, in a fiber
//   SetTimerKillTimer/thread   the same from a plain thread
//   SleepForZero/fiber         this_fiber::SleepFor(0ns): returns at once by contract
//   SleepFor1us/fiber          suspend, TimerWorker wake-up, resume on a worker
//   SleepFor1us/boost_fiber    boost::this_fiber::sleep_for(1us) on the main thread
//   SleepFor1us/thread         SleepFor(1us) on a plain thread: a kernel sleep
//
// Lateness part, after it: N sleepers are due at a common start plus an offset;
// the offsets are spread evenly over the workload's spread and handed out in the
// same shuffled order for every runtime. Each sleeper sleeps until its deadline
// and records how late it woke. The start lies far enough ahead that every
// sleeper is asleep before the first deadline (the table shows the margin), so
// creating them does not compete with waking them.
//   T3     100k sleepers over 100 ms: a burst of 1M wakes/s, more than two CPUs
//          can serve, so the figures show how fast each runtime drains it.
//   T3-1s  the same 100k over 1 s: 100k wakes/s, the lateness of the timers
//          themselves once the runtime keeps up.
// Boost.Fiber runs all its sleepers on the main thread (round_robin, default
// stacks). Threads cannot reach 100k: 1,000 of them run, with the kernel's
// default timer slack (50 µs, what a program gets) and with 1 ns, the slack
// weft's TimerWorker sets for itself. --quick: 10k fiber sleepers, T3 only,
// shorter microbenchmarks.
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <boost/fiber/all.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/bench_main.h"
#include "benchmark/benchmark.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "runtime/timer/timer.h"

namespace weft {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

struct Workload {
  std::string name;
  nanoseconds spread;
};

struct Scale {
  std::size_t fiber_sleepers = 100'000;  // weft and Boost.Fiber
  std::size_t thread_sleepers = 1'000;
  std::vector<Workload> workloads = {{"T3", milliseconds(100)},
                                     {"T3-1s", milliseconds(1000)}};
  double min_time = 0;  // per microbenchmark; 0 = Google Benchmark's default
};

// Runs a benchmark's state loop in a weft fiber; the calling thread waits in Join.
template <class Body>
void Register(const char* name, bool in_fiber, const Scale& scale, Body body) {
  ::benchmark::internal::Benchmark* benchmark =
      ::benchmark::RegisterBenchmark(name, [in_fiber, body](::benchmark::State& state) {
        if (in_fiber) {
          Fiber fiber([&state, &body] { body(state); });
          fiber.Join();
        } else {
          body(state);
        }
        state.SetItemsProcessed(state.iterations());
      });
  benchmark->UseRealTime()->MeasureProcessCPUTime();
  if (scale.min_time > 0) benchmark->MinTime(scale.min_time);
}

void RegisterMicrobenchmarks(const Scale& scale) {
  // The cost of a timeout that is cancelled because the work finished first;
  // the deadline is far enough that most timers are killed long before it.
  auto set_kill = [](::benchmark::State& state) {
    for (auto _ : state) {
      const TimerId id = SetTimer(Clock::now() + std::chrono::seconds(1), [] {});
      KillTimer(id);
    }
  };
  Register("SetTimerKillTimer/fiber", true, scale, set_kill);
  Register("SetTimerKillTimer/thread", false, scale, set_kill);
  Register("SleepForZero/fiber", true, scale, [](::benchmark::State& state) {
    for (auto _ : state) {
      nanoseconds zero{0};
      ::benchmark::DoNotOptimize(zero);  // a duration the compiler cannot see
      this_fiber::SleepFor(zero);
    }
  });
  auto sleep_1us = [](::benchmark::State& state) {
    for (auto _ : state) this_fiber::SleepFor(microseconds(1));
  };
  Register("SleepFor1us/fiber", true, scale, sleep_1us);
  // The main thread's own fiber sleeps; with nothing else to run, Boost's
  // round_robin scheduler blocks the thread on a condition variable until then.
  Register("SleepFor1us/boost_fiber", false, scale, [](::benchmark::State& state) {
    for (auto _ : state) boost::this_fiber::sleep_for(microseconds(1));
  });
  Register("SleepFor1us/thread", false, scale, sleep_1us);
}

// n offsets evenly spaced over [0, spread), in a fixed shuffled order: creation
// order says nothing about wake order, so timers are inserted in random order.
std::vector<nanoseconds> MakeOffsets(std::size_t n, nanoseconds spread) {
  std::vector<nanoseconds> offsets(n);
  for (std::size_t i = 0; i < n; ++i) {
    offsets[i] = spread * static_cast<std::int64_t>(i) / static_cast<std::int64_t>(n);
  }
  std::mt19937_64 random(20240611);
  std::shuffle(offsets.begin(), offsets.end(), random);
  return offsets;
}

// Time to create the sleepers before the first deadline. A fiber's first stack
// costs about 25 µs here (page faults: each run starts without stacks) and a
// thread about 120 µs; the budgets leave room for a busy machine, and a negative
// margin in the table says when they were not enough.
nanoseconds Lead(std::size_t sleepers, microseconds per_sleeper) {
  return milliseconds(100) + per_sleeper * static_cast<std::int64_t>(sleepers);
}

// One lateness run, shared by its sleepers.
struct SleepRun {
  SleepRun(std::size_t n, nanoseconds spread, microseconds per_sleeper)
      : offsets(MakeOffsets(n, spread)),
        lateness_ns(n),
        countdown(static_cast<std::ptrdiff_t>(n)) {
    start = Clock::now() + Lead(n, per_sleeper);
  }

  // A sleeper's whole life, whatever runs it: sleep until the deadline, record
  // how late it woke.
  template <class SleepUntil>
  void Sleep(std::size_t i, SleepUntil sleep_until) {
    const Clock::time_point deadline = start + offsets[i];
    const Clock::time_point arrival = Clock::now();
    if (arrival >= deadline) late_starts.fetch_add(1, std::memory_order_relaxed);
    if (asleep.fetch_add(1, std::memory_order_acq_rel) + 1 == offsets.size()) {
      all_asleep_at = arrival;  // read after every sleeper has finished
    }
    sleep_until(deadline);
    lateness_ns[i] = (Clock::now() - deadline).count();
    countdown.CountDown();
  }

  Clock::time_point start;  // the deadlines' origin
  std::vector<nanoseconds> offsets;
  std::vector<std::int64_t> lateness_ns;
  std::atomic<std::size_t> asleep{0};
  std::atomic<std::size_t> late_starts{0};  // arrived after their deadline
  Clock::time_point all_asleep_at;          // when the last sleeper arrived
  // Counted down by every sleeper (weft fiber, Boost.Fiber fiber or thread);
  // the measuring thread waits on it.
  FiberLatch countdown;
};

struct Lateness {
  std::string workload;
  std::string runtime;
  std::size_t sleepers = 0;
  std::string error;  // empty when the run succeeded
  double p50_us = 0, p99_us = 0, max_us = 0, min_us = 0;
  std::size_t early = 0;  // woke before the deadline: a broken contract
  std::size_t late_starts = 0;
  double margin_ms = 0;     // all asleep this long before the first deadline
  double last_wake_ms = 0;  // the last wake-up, counted from the first deadline
};

Lateness Summarize(const Workload& workload, const std::string& runtime, SleepRun& run) {
  Lateness result{workload.name, runtime, run.offsets.size(), ""};
  std::int64_t last_wake_ns = 0;
  for (std::size_t i = 0; i < run.offsets.size(); ++i) {
    last_wake_ns = std::max(last_wake_ns, run.offsets[i].count() + run.lateness_ns[i]);
  }
  std::vector<std::int64_t> sorted = std::move(run.lateness_ns);
  std::sort(sorted.begin(), sorted.end());
  auto us = [&sorted](double q) {
    const double rank = q * static_cast<double>(sorted.size());
    const std::size_t index = std::min(sorted.size() - 1, static_cast<std::size_t>(rank));
    return static_cast<double>(sorted[index]) / 1e3;
  };
  result.p50_us = us(0.5);
  result.p99_us = us(0.99);
  result.max_us = us(1);
  result.min_us = us(0);
  result.early = static_cast<std::size_t>(std::count_if(
      sorted.begin(), sorted.end(), [](std::int64_t ns) { return ns < 0; }));
  result.late_starts = run.late_starts.load();
  const std::chrono::duration<double, std::milli> margin = run.start - run.all_asleep_at;
  result.margin_ms = margin.count();
  result.last_wake_ms = static_cast<double>(last_wake_ns) / 1e6;
  return result;
}

Lateness RunWeft(const Workload& workload, const RuntimeOptions& options, std::size_t n) {
  SleepRun run(n, workload.spread, microseconds(40));  // outlives the runtime
  Runtime runtime(options);
  for (std::size_t i = 0; i < n; ++i) {
    const bool started = StartFiberDetached([&run, i] {
      run.Sleep(i, [](Clock::time_point d) { this_fiber::SleepUntil(d); });
    });
    if (!started) {
      for (std::size_t rest = i; rest < n; ++rest) run.countdown.CountDown();
      run.countdown.Wait();
      return {workload.name, "weft", n,
              "StartFiberDetached() failed at fiber " + std::to_string(i)};
    }
  }
  run.countdown.Wait();
  return Summarize(workload, "weft", run);
}

// All fibers on the main thread with Boost's default round_robin scheduler and
// default stacks; the main fiber joins them, which lets them run.
Lateness RunBoostFiber(const Workload& workload, std::size_t n) {
  SleepRun run(n, workload.spread, microseconds(40));
  std::vector<boost::fibers::fiber> fibers;
  std::string error;
  try {
    fibers.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      fibers.emplace_back([&run, i] {
        run.Sleep(i, [](Clock::time_point d) { boost::this_fiber::sleep_until(d); });
      });
    }
  } catch (const std::exception& e) {
    error = "creating fiber " + std::to_string(fibers.size()) + " failed: " + e.what();
  }
  for (boost::fibers::fiber& fiber : fibers) fiber.join();
  if (!error.empty()) return {workload.name, "boost_fiber", n, error};
  return Summarize(workload, "boost_fiber", run);
}

// Sets the calling thread's timer slack (threads it creates inherit it); returns
// the previous value. 0 restores the default.
unsigned long SetTimerSlack(unsigned long ns) {
  const int previous = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  prctl(PR_SET_TIMERSLACK, ns, 0, 0, 0);
  return previous < 0 ? 0 : static_cast<unsigned long>(previous);
}

Lateness RunThreads(const Workload& workload, const std::string& name, std::size_t n,
                    unsigned long slack_ns) {
  SleepRun run(n, workload.spread, microseconds(200));
  const unsigned long previous_slack = SetTimerSlack(slack_ns);
  std::vector<std::thread> threads;
  std::string error;
  try {
    threads.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      threads.emplace_back([&run, i] {
        run.Sleep(i, [](Clock::time_point d) { std::this_thread::sleep_until(d); });
      });
    }
  } catch (const std::exception& e) {
    error = "creating thread " + std::to_string(threads.size()) + " failed: " + e.what();
  }
  for (std::thread& thread : threads) thread.join();
  SetTimerSlack(previous_slack);
  if (!error.empty()) return {workload.name, name, n, error};
  return Summarize(workload, name, run);
}

void PrintLateness(const std::vector<Lateness>& results) {
  std::printf("\n");
  for (const Lateness& r : results) {
    if (!r.error.empty()) {
      std::printf("%s-lateness %s error: %s\n", r.workload.c_str(), r.runtime.c_str(),
                  r.error.c_str());
      continue;
    }
    // A run whose set-up overlapped its deadlines measured set-up, not sleeping.
    const char* note =
        r.late_starts > 0 || r.margin_ms < 0 ? " [set-up overlapped the deadlines]" : "";
    const std::pair<const char*, double> figures[] = {
        {"p50", r.p50_us}, {"p99", r.p99_us}, {"max", r.max_us}};
    for (const auto& [label, value] : figures) {
      std::printf("%s-lateness-%s %s %.1f us (n=%zu)%s\n", r.workload.c_str(), label,
                  r.runtime.c_str(), value, r.sleepers, note);
    }
  }

  std::printf(
      "\nLateness = wake time - deadline (us). T3: deadlines spread over 100 ms, "
      "T3-1s: over 1 s.\n"
      "early:  sleepers woken before their deadline (must be 0).\n"
      "late:   sleepers that started after their deadline (should be 0).\n"
      "margin: how long before the first deadline the last sleeper arrived (ms).\n"
      "last:   the last wake-up, counted from the first deadline (ms); above the\n"
      "        spread when the runtime could not keep up.\n\n");
  std::printf("%-6s %-16s %8s %9s %9s %9s %7s %5s %4s %7s %7s\n", "", "runtime",
              "sleepers", "p50", "p99", "max", "min", "early", "late", "margin", "last");
  std::printf("%s\n", std::string(97, '-').c_str());
  for (const Lateness& r : results) {
    if (!r.error.empty()) {
      std::printf("%-6s %-16s %8zu error: %s\n", r.workload.c_str(), r.runtime.c_str(),
                  r.sleepers, r.error.c_str());
      continue;
    }
    std::printf("%-6s %-16s %8zu %9.1f %9.1f %9.1f %7.1f %5zu %4zu %7.0f %7.1f\n",
                r.workload.c_str(), r.runtime.c_str(), r.sleepers, r.p50_us, r.p99_us,
                r.max_us, r.min_us, r.early, r.late_starts, r.margin_ms, r.last_wake_ms);
  }
}

int Run(const bench::Mode& mode) {
  Scale scale;
  if (mode.quick) {
    scale.fiber_sleepers = 10'000;
    scale.workloads.resize(1);
    scale.min_time = 0.1;
  }
  const RuntimeOptions options = RuntimeOptions::FromFlags();

  {
    Runtime runtime(options);
    std::printf("%s\n", DescribeLayout().c_str());
    std::fflush(stdout);
    RegisterMicrobenchmarks(scale);
    ::benchmark::RunSpecifiedBenchmarks();
  }
  std::fflush(stdout);

  // Each run has the machine to itself: weft's runtime is started only for its
  // own run, and the peers run one after another.
  std::vector<Lateness> results;
  for (const Workload& workload : scale.workloads) {
    results.push_back(RunWeft(workload, options, scale.fiber_sleepers));
    results.push_back(RunBoostFiber(workload, scale.fiber_sleepers));
    results.push_back(RunThreads(workload, "threads", scale.thread_sleepers, 0));
    results.push_back(RunThreads(workload, "threads_slack1ns", scale.thread_sleepers, 1));
  }
  PrintLateness(results);
  return 0;
}

}  // namespace

}  // namespace weft

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_timer_bench: the cost of SetTimer+KillTimer and of SleepFor, and how late\n"
      "100k sleeping fibers wake, next to Boost.Fiber's and threads' sleeps.\n";
  program.quick = "10k fiber sleepers instead of 100k, T3 only, shorter microbenchmarks";
  program.runtime_flags = "";
  return weft::bench::Main(program, argc, argv, weft::Run);
}
