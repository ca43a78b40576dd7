// W9 blocking fan-out, RPC-like: 10,000 requests (1,000 with --quick) are
// started at once, each on its own fiber (or thread). A request waits four times
// for a "reply", a sleep of exponentially distributed length with mean 50 µs (the
// gaps of a Poisson process), and after each takes a shared mutex briefly to
// increment a counter, as a handler updates shared state. Two figures come from
// the same run:
//   W9-throughput: requests over the time from the first request's start to the
//                  last request's end, in requests per second;
//   W9-p99:        the 99th percentile (nearest rank) of the requests' latencies,
//                  each from just before its fiber is started to its end, so that
//                  it includes waiting for a worker, in µs.
// Each is the median over the timed runs, after one untimed run.
//
// W9-cold-throughput and W9-cold-p99 are the same figures from the first run in
// a fresh process (AddChildMeasurement: the showcase runs itself with
// --child=W9-cold-throughput/<runtime>), what a freshly started server's first
// burst of requests meets: the child starts the runtime (or, for threads,
// nothing) and reports its one run. The Go peer does the same in a fresh child
// of its own (weft_go_peer -child=W9-cold).
//
// The sleeps are drawn before the clock starts, as the Go peer draws them (see
// benchmark/peers/go/latency.go): request i reseeds one std::mt19937_64 with
// kSeedBase + i and draws its sleeps from std::exponential_distribution, so every
// run and every runtime sleeps the same durations, and the generator's cost is
// not measured. (Go's generator differs, so its durations are other draws from
// the same distribution.) Every runtime runs the same request code
// (ServeRequest) with its own sleep and mutex:
//   weft:           detached fibers started from the timing thread, on one worker
//                   per CPU; this_fiber::SleepFor, FiberMutex, and a FiberLatch
//                   that the timing thread waits on;
//   std::thread:    a thread per request, std::this_thread::sleep_for,
//                   std::mutex, joined; if the system refuses to create that many
//                   threads, the requests that could be started are measured and
//                   the benchmark's label says so;
//   Boost.Fiber ws: fibers on the work_stealing pool of as many threads as weft
//                   has workers, boost::this_fiber::sleep_for,
//                   boost::fibers::mutex, joined.
// The counter must end at requests × sleeps; a run that miscounts is an error.
#include <algorithm>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/showcase.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/this_fiber.h"

namespace weft::showcase {

namespace {

// Both figures are held to Go's and to threads': at least as high a throughput,
// at most as high a p99.
Workload FanOutWorkload(std::string id, std::string unit, bool higher_is_better) {
  Workload workload{std::move(id),
                    "request",
                    {{Target::Kind::kFasterThanPeer, 1.0, Contender::kGo},
                     {Target::Kind::kFasterThanPeer, 1.0, Contender::kThreads}}};
  workload.unit = std::move(unit);
  workload.higher_is_better = higher_is_better;
  return workload;
}
const Workload kFanOutThroughput =
    FanOutWorkload("W9-throughput", "req/s", /*higher_is_better=*/true);
const Workload kFanOutP99 = FanOutWorkload("W9-p99", "us", /*higher_is_better=*/false);
const Workload kColdFanOutThroughput =
    FanOutWorkload("W9-cold-throughput", "req/s", /*higher_is_better=*/true);
const Workload kColdFanOutP99 =
    FanOutWorkload("W9-cold-p99", "us", /*higher_is_better=*/false);

using Clock = std::chrono::steady_clock;
using Nanoseconds = std::chrono::nanoseconds;

constexpr int kSleepsPerRequest = 4;
constexpr double kMeanSleepNs = 50'000;
// Request i's sleeps come from a generator seeded with kSeedBase + i.
constexpr std::uint64_t kSeedBase = 1;

int Requests(const Scale& scale) {
  if (scale.smoke) return 100;
  return scale.quick ? 1'000 : 10'000;
}
std::int64_t Runs(const Scale& scale) {
  if (scale.smoke) return 1;
  return scale.quick ? 2 : 3;
}

// The sleeps of every request, kSleepsPerRequest consecutive ones per request.
std::vector<Nanoseconds> DrawSleeps(int requests) {
  std::vector<Nanoseconds> sleeps;
  sleeps.reserve(static_cast<std::size_t>(requests) * kSleepsPerRequest);
  std::mt19937_64 generator;
  std::exponential_distribution<double> gap(1 / kMeanSleepNs);
  for (int i = 0; i < requests; ++i) {
    generator.seed(kSeedBase + static_cast<std::uint64_t>(i));
    gap.reset();
    for (int j = 0; j < kSleepsPerRequest; ++j) {
      sleeps.push_back(Nanoseconds(static_cast<Nanoseconds::rep>(gap(generator))));
    }
  }
  return sleeps;
}

// The request: sleep, then a brief critical section, kSleepsPerRequest times.
template <class Requests>
void ServeRequest(const Nanoseconds* sleeps, typename Requests::Mutex& mutex,
                  std::int64_t& counter) {
  for (int j = 0; j < kSleepsPerRequest; ++j) {
    Requests::SleepFor(sleeps[j]);
    std::lock_guard<typename Requests::Mutex> lock(mutex);
    ++counter;
  }
}

// How each runtime starts the requests and waits for their end. Start() returns
// false when the request could not be started; Wait(started) returns once the
// first `started` requests have ended.

// Detached fibers counting down a latch, which the timing thread waits on.
class WeftRequests {
 public:
  using Mutex = FiberMutex;
  static void SleepFor(Nanoseconds duration) { this_fiber::SleepFor(duration); }

  explicit WeftRequests(int requests) : done_(requests), requests_(requests) {}

  template <class F>
  bool Start(F&& serve) {
    return StartFiberDetached([this, serve = std::forward<F>(serve)] {
      serve();
      done_.CountDown();
    });
  }

  void Wait(int started) {
    done_.CountDown(requests_ - started);
    done_.Wait();
  }

 private:
  FiberLatch done_;
  const int requests_;
};

// A joinable thread or fiber per request, joined in order.
template <class Thread, class MutexType, void (*Sleep)(Nanoseconds)>
class JoinedRequests {
 public:
  using Mutex = MutexType;
  static void SleepFor(Nanoseconds duration) { Sleep(duration); }

  explicit JoinedRequests(int requests) { threads_.reserve(requests); }

  template <class F>
  bool Start(F&& serve) {
    try {
      threads_.emplace_back(std::forward<F>(serve));
      return true;
    } catch (const std::system_error&) {
      return false;  // EAGAIN: out of threads or of memory for their stacks
    }
  }

  void Wait(int) {
    for (Thread& thread : threads_) thread.join();
  }

 private:
  std::vector<Thread> threads_;
};

void ThreadSleepFor(Nanoseconds duration) { std::this_thread::sleep_for(duration); }
void BoostFiberSleepFor(Nanoseconds duration) { boost::this_fiber::sleep_for(duration); }

using ThreadRequests = JoinedRequests<std::thread, std::mutex, &ThreadSleepFor>;
using BoostFiberRequests =
    JoinedRequests<boost::fibers::fiber, boost::fibers::mutex, &BoostFiberSleepFor>;

double Microseconds(Clock::duration duration) {
  return std::chrono::duration<double, std::micro>(duration).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The nearest-rank percentile, as the Go peer computes it.
double Percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100 * values.size()));
  return values[std::max<std::size_t>(rank, 1) - 1];
}

struct FanOutRun {
  int started = 0;        // requests that could be started
  double throughput = 0;  // requests per second
  double p99_us = 0;
  std::string error;  // empty when the run counted right
};

// One run of every request in `sleeps` on the runtime of `Requests`, from the
// thread (or main fiber) that times it.
template <class Requests>
FanOutRun RunFanOut(const std::vector<Nanoseconds>& sleeps) {
  const int requests = static_cast<int>(sleeps.size() / kSleepsPerRequest);
  typename Requests::Mutex mutex;
  std::int64_t counter = 0;
  std::vector<Clock::time_point> starts(requests);
  std::vector<Clock::time_point> ends(requests);
  FanOutRun run;
  {
    Requests launcher(requests);
    for (; run.started < requests; ++run.started) {
      const int i = run.started;
      starts[i] = Clock::now();
      const bool started = launcher.Start([&sleeps, &mutex, &counter, &ends, i] {
        ServeRequest<Requests>(&sleeps[static_cast<std::size_t>(i) * kSleepsPerRequest],
                               mutex, counter);
        ends[i] = Clock::now();
      });
      if (!started) break;
    }
    launcher.Wait(run.started);
  }
  if (run.started == 0) {
    run.error = "no request could be started";
    return run;
  }
  if (counter != std::int64_t{run.started} * kSleepsPerRequest) {
    run.error = "the counter is " + std::to_string(counter) + " after " +
                std::to_string(std::int64_t{run.started} * kSleepsPerRequest) +
                " locked increments";
    return run;
  }
  std::vector<double> latencies(run.started);
  for (int i = 0; i < run.started; ++i) latencies[i] = Microseconds(ends[i] - starts[i]);
  const Clock::time_point last =
      *std::max_element(ends.begin(), ends.begin() + run.started);
  run.throughput = run.started / (Microseconds(last - starts[0]) / 1e6);
  run.p99_us = Percentile(std::move(latencies), 99);
  return run;
}

// Runs `fan_out` (returning a FanOutRun) once untimed, then once per iteration
// of `state`, and reports the median throughput and p99.
template <class FanOut>
void MeasureFanOut(::benchmark::State& state, int requests, FanOut&& fan_out) {
  FanOutRun run = fan_out();
  std::vector<double> throughputs;
  std::vector<double> p99s;
  for (auto _ : state) {
    if (run.error.empty()) run = fan_out();
    if (!run.error.empty()) {
      state.SkipWithError(run.error.c_str());
      break;
    }
    throughputs.push_back(run.throughput);
    p99s.push_back(run.p99_us);
  }
  if (state.error_occurred()) return;
  if (run.started < requests) {
    const std::string note = "only " + std::to_string(run.started) + " of " +
                             std::to_string(requests) + " requests could be started";
    std::fprintf(stderr, "showcase: W9: %s\n", note.c_str());
    state.SetLabel(note);
  }
  ReportValue(state, Median(throughputs));
  ReportValue(state, kFanOutP99, Median(p99s));
}

void FanOutOnWeft(::benchmark::State& state, int requests) {
  const std::vector<Nanoseconds> sleeps = DrawSleeps(requests);
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = CpuCount();
  Runtime runtime(options);
  MeasureFanOut(state, requests, [&sleeps] { return RunFanOut<WeftRequests>(sleeps); });
}

void FanOutOnThreads(::benchmark::State& state, int requests) {
  const std::vector<Nanoseconds> sleeps = DrawSleeps(requests);
  MeasureFanOut(state, requests, [&sleeps] { return RunFanOut<ThreadRequests>(sleeps); });
}

void FanOutOnBoostFiberWorkStealing(::benchmark::State& state, int requests) {
  const std::vector<Nanoseconds> sleeps = DrawSleeps(requests);
  BoostWorkStealingPool& pool = BoostWorkStealingPool::Get();
  MeasureFanOut(state, requests, [&pool, &sleeps] {
    FanOutRun run;
    pool.Run([&run, &sleeps] { run = RunFanOut<BoostFiberRequests>(sleeps); });
    return run;
  });
}

// The child's side of the cold rows: one run of `fan_out` (returning a
// FanOutRun), its throughput and p99.
template <class FanOut>
std::vector<double> MeasureColdFanOut(int requests, FanOut&& fan_out) {
  const FanOutRun run = fan_out();
  if (!run.error.empty()) ChildFails(run.error);
  if (run.started < requests) {
    std::fprintf(stderr, "showcase: W9-cold: only %d of %d requests could be started\n",
                 run.started, requests);
  }
  return {run.throughput, run.p99_us};
}

std::vector<double> ColdFanOutOnWeft(int requests) {
  const std::vector<Nanoseconds> sleeps = DrawSleeps(requests);
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = CpuCount();
  Runtime runtime(options);
  return MeasureColdFanOut(requests,
                           [&sleeps] { return RunFanOut<WeftRequests>(sleeps); });
}

std::vector<double> ColdFanOutOnThreads(int requests) {
  const std::vector<Nanoseconds> sleeps = DrawSleeps(requests);
  return MeasureColdFanOut(requests,
                           [&sleeps] { return RunFanOut<ThreadRequests>(sleeps); });
}

std::vector<double> ColdFanOutOnBoostFiberWorkStealing(int requests) {
  const std::vector<Nanoseconds> sleeps = DrawSleeps(requests);
  BoostWorkStealingPool& pool = BoostWorkStealingPool::Get();
  std::vector<double> figures = MeasureColdFanOut(requests, [&pool, &sleeps] {
    FanOutRun run;
    pool.Run([&run, &sleeps] { run = RunFanOut<BoostFiberRequests>(sleeps); });
    return run;
  });
  BoostWorkStealingPool::ShutDown();
  return figures;
}

void AddColdFanOut(const Scale& scale, Contender contender,
                   std::vector<double> (*measure)(int)) {
  const int requests = Requests(scale);
  AddChildMeasurement(kColdFanOutThroughput, contender, scale,
                      [measure, requests] { return measure(requests); },
                      {&kColdFanOutP99});
}

void AddFanOut(const Scale& scale, Contender contender,
               void (*measure)(::benchmark::State&, int)) {
  const int requests = Requests(scale);
  AddMeasurement(
      kFanOutThroughput, contender, Runs(scale),
      [measure, requests](::benchmark::State& state) { measure(state, requests); },
      /*min_time=*/0, {&kFanOutP99});
}

}  // namespace

void AddFanOutMeasurements(const Scale& scale) {
  AddFanOut(scale, Contender::kWeft, &FanOutOnWeft);
  AddFanOut(scale, Contender::kThreads, &FanOutOnThreads);
  AddFanOut(scale, Contender::kBoostFiberWorkStealing, &FanOutOnBoostFiberWorkStealing);
  const std::string flags = "-w9_requests=" + std::to_string(Requests(scale));
  AddGoMeasurement(kFanOutThroughput, "W9", "W9-throughput", flags);
  AddGoMeasurement(kFanOutP99, "W9", "W9-p99", flags);

  AddColdFanOut(scale, Contender::kWeft, &ColdFanOutOnWeft);
  AddColdFanOut(scale, Contender::kThreads, &ColdFanOutOnThreads);
  AddColdFanOut(scale, Contender::kBoostFiberWorkStealing,
                &ColdFanOutOnBoostFiberWorkStealing);
  AddGoMeasurement(kColdFanOutThroughput, "W9-cold", "W9-cold-throughput", flags);
  AddGoMeasurement(kColdFanOutP99, "W9-cold", "W9-cold-p99", flags);
}

}  // namespace weft::showcase
