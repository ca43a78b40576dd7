// W6: wake-up latency. With the runtime idle (every worker asleep), a plain
// thread starts a fiber; a sample is the time from just before the start to the
// fiber's first instruction: how long work arriving at a quiet server waits
// before it runs. Samples are 1 ms apart, as in the Go peer, which is long
// enough for every worker to stop spinning and go to sleep, so each sample pays
// for waking a sleeping worker. The figures are the nearest-rank p50 and p99 of
// the samples; a few untimed samples first fault in stacks and pools.
//
// W6-100us-p50 and W6-100us-p99 are the same measurement with samples 100 µs
// apart (the sleep between them asks for 100 µs; with the kernel's timer slack
// it lasts a little longer): a worker that ran the previous sample is on its way
// into sleep, or just asleep, as on a server between bursts. Every contender,
// the Go peer too (its workload W6-100us), is measured both ways.
//
// The peers do what their users do to hand work to an idle runtime:
// - std::thread: a thread blocked on a std::condition_variable is notified; the
//   sample runs from just before the notifier takes the mutex to set the
//   condition to the woken thread's first instruction after its wait.
// - Boost.Fiber (1 thread): the same, with a fiber blocked on a
//   boost::fibers::condition_variable on a thread whose round_robin scheduler
//   has nothing else to run and so sleeps on its own condition variable. A plain
//   thread cannot start a fiber on another thread's scheduler; waking a parked
//   one is the closest it can do.
// - Go: a goroutine locked to its thread starts a goroutine (peers/go).
// Boost.Fiber's work_stealing is left out: its threads spin instead of going
// idle, so it has no sleeping worker to wake, and its pool, once started in
// this process, spins on every CPU until the showcase ends.
//
// The woken side leaves its timestamp in a WakeStamp, which the starting thread
// polls, yielding its CPU: handing the timestamp back is outside the measured
// interval and costs every contender the same. The yield matters: on a VM whose
// vCPUs share no cache as far as the kernel knows, a woken thread is usually
// queued on the waker's CPU, and runs when the waker yields it.
#include <algorithm>
#include <atomic>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/mutex.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/showcase.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"

namespace weft::showcase {

namespace {

using Clock = std::chrono::steady_clock;

const Workload kWakeP50{"W6-p50",
                        "wake-up",
                        {{Target::Kind::kFasterThanPeer, 1.0, Contender::kThreads}},
                        /*is_floor=*/false,
                        "us"};
const Workload kWakeP99{"W6-p99",
                        "wake-up",
                        {{Target::Kind::kFasterThanPeer, 0.5, Contender::kThreads}},
                        /*is_floor=*/false,
                        "us"};

const Workload kWakeP50Short{"W6-100us-p50",
                             "wake-up",
                             {{Target::Kind::kFasterThanPeer, 1.0, Contender::kThreads}},
                             /*is_floor=*/false,
                             "us"};
const Workload kWakeP99Short{"W6-100us-p99",
                             "wake-up",
                             {{Target::Kind::kFasterThanPeer, 0.5, Contender::kThreads}},
                             /*is_floor=*/false,
                             "us"};

// One of W6's two variants: its rows and the gap between samples.
struct WakeUpVariant {
  const Workload* p50;
  const Workload* p99;
  Clock::duration gap;
};
// Between samples: every worker's spin (tens of µs) is long over.
const WakeUpVariant kLongGap{&kWakeP50, &kWakeP99, std::chrono::milliseconds(1)};
// Between samples: a worker may still be spinning, or just going to sleep.
const WakeUpVariant kShortGap{&kWakeP50Short, &kWakeP99Short,
                              std::chrono::microseconds(100)};

std::int64_t Samples(const Scale& scale) {
  if (scale.smoke) return 50;
  return scale.quick ? 1'000 : 10'000;
}
// Untimed samples before the measured ones.
constexpr std::int64_t kWarmUpSamples = 100;

double Microseconds(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

// The nearest-rank p-th percentile of `sorted`, as the Go peer computes it.
double Percentile(const std::vector<double>& sorted, double p) {
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100 * sorted.size()));
  return sorted[std::max<std::size_t>(rank, 1) - 1];
}

// Where the woken side records when it first ran. Thread-safe for one recorder
// and one waiter at a time.
class WakeStamp {
 public:
  void Record(Clock::time_point at) {
    at_ = at;
    ready_.store(true, std::memory_order_release);
  }

  Clock::time_point Await() {
    while (!ready_.load(std::memory_order_acquire)) std::this_thread::yield();
    ready_.store(false, std::memory_order_relaxed);
    return at_;
  }

 private:
  Clock::time_point at_;
  std::atomic<bool> ready_{false};
};

// Runs `sample` (which returns one latency in µs, or a negative value after
// calling state.SkipWithError) after each of the variant's gaps, and reports
// the percentiles.
template <class Sample>
void MeasureWakeUps(::benchmark::State& state, std::int64_t samples,
                    const WakeUpVariant& variant, Sample&& sample) {
  for (std::int64_t i = 0; i < kWarmUpSamples; ++i) {
    std::this_thread::sleep_for(variant.gap);
    if (sample() < 0) return;
  }
  std::vector<double> latencies(samples);
  for (auto _ : state) {
    for (double& latency : latencies) {
      std::this_thread::sleep_for(variant.gap);
      latency = sample();
      if (latency < 0) return;
    }
  }
  std::sort(latencies.begin(), latencies.end());
  ReportValue(state, Percentile(latencies, 50));
  ReportValue(state, *variant.p99, Percentile(latencies, 99));
}

void WakeUpOnWeft(::benchmark::State& state, std::int64_t samples,
                  const WakeUpVariant& variant) {
  WakeStamp stamp;
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = CpuCount();
  Runtime runtime(options);
  MeasureWakeUps(state, samples, variant, [&state, &stamp] {
    const Clock::time_point start = Clock::now();
    if (!StartFiberDetached([&stamp] { stamp.Record(Clock::now()); })) {
      state.SkipWithError("StartFiberDetached() failed");
      return -1.0;
    }
    return Microseconds(stamp.Await() - start);
  });
}

// A waiter parked on a condition variable, woken once per sample. Mutex and
// ConditionVariable are std's for a thread, Boost.Fiber's for a fiber.
template <class Mutex, class ConditionVariable>
class ParkedWaiter {
 public:
  // The waiter's side, on a thread or a fiber: records each wake-up in `stamp`
  // until Stop().
  void Run(WakeStamp* stamp) {
    std::unique_lock<Mutex> lock(mutex_);
    std::uint64_t seen = 0;
    for (;;) {
      cv_.wait(lock, [&] { return generation_ != seen || stopping_; });
      const Clock::time_point woken = Clock::now();
      if (stopping_) return;
      seen = generation_;
      stamp->Record(woken);
    }
  }

  // Wakes the waiter; returns the time just before.
  Clock::time_point Wake() {
    const Clock::time_point start = Clock::now();
    {
      std::lock_guard<Mutex> lock(mutex_);
      ++generation_;
    }
    cv_.notify_one();
    return start;
  }

  void Stop() {
    {
      std::lock_guard<Mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_one();
  }

 private:
  Mutex mutex_;
  ConditionVariable cv_;
  std::uint64_t generation_ = 0;
  bool stopping_ = false;
};

// `run_waiter` runs the waiter's loop on a new thread, directly or in a fiber.
template <class Waiter, class RunWaiter>
void WakeUpParkedWaiter(::benchmark::State& state, std::int64_t samples,
                        const WakeUpVariant& variant, RunWaiter&& run_waiter) {
  Waiter waiter;
  WakeStamp stamp;
  std::thread thread([&] { run_waiter(waiter, stamp); });
  MeasureWakeUps(state, samples, variant, [&waiter, &stamp] {
    const Clock::time_point start = waiter.Wake();
    return Microseconds(stamp.Await() - start);
  });
  waiter.Stop();
  thread.join();
}

void WakeUpOnThreads(::benchmark::State& state, std::int64_t samples,
                     const WakeUpVariant& variant) {
  using Waiter = ParkedWaiter<std::mutex, std::condition_variable>;
  WakeUpParkedWaiter<Waiter>(
      state, samples, variant,
      [](Waiter& waiter, WakeStamp& stamp) { waiter.Run(&stamp); });
}

void WakeUpOnBoostFiber(::benchmark::State& state, std::int64_t samples,
                        const WakeUpVariant& variant) {
  using Waiter = ParkedWaiter<boost::fibers::mutex, boost::fibers::condition_variable>;
  WakeUpParkedWaiter<Waiter>(
      state, samples, variant, [](Waiter& waiter, WakeStamp& stamp) {
        boost::fibers::fiber([&waiter, &stamp] { waiter.Run(&stamp); }).join();
      });
}

void AddWakeUp(Contender contender, std::int64_t samples, const WakeUpVariant& variant,
               void (*measure)(::benchmark::State&, std::int64_t, const WakeUpVariant&)) {
  AddMeasurement(*variant.p50, contender, 1,
                 [samples, &variant, measure](::benchmark::State& state) {
                   measure(state, samples, variant);
                 },
                 /*min_time=*/0, {variant.p99});
}

}  // namespace

void AddLatencyMeasurements(const Scale& scale) {
  const std::int64_t samples = Samples(scale);
  const std::string go_flags = "-w6_samples=" + std::to_string(samples);
  for (const WakeUpVariant* variant : {&kLongGap, &kShortGap}) {
    AddWakeUp(Contender::kWeft, samples, *variant, WakeUpOnWeft);
    AddWakeUp(Contender::kThreads, samples, *variant, WakeUpOnThreads);
    AddWakeUp(Contender::kBoostFiber, samples, *variant, WakeUpOnBoostFiber);
  }
  AddGoMeasurement(kWakeP50, "W6", "W6-p50", go_flags);
  AddGoMeasurement(kWakeP99, "W6", "W6-p99", go_flags);
  AddGoMeasurement(kWakeP50Short, "W6-100us", "W6-100us-p50", go_flags);
  AddGoMeasurement(kWakeP99Short, "W6-100us", "W6-100us-p99", go_flags);
}

}  // namespace weft::showcase
