// W4 and W5: blocking synchronisation between parties of one runtime.
//
// W4 (ping-pong): two parties take turns through a mutex, a condition variable and
// a turn flag; the figure is ns per round trip.
//   W4-same-worker     weft with one worker; Boost.Fiber's two fibers on one thread
//                      (round_robin); Go's two goroutines passing a token through
//                      unbuffered channels (the Go form of W4, docs/benchmarks.md).
//   W4-across-workers  every hand-off crosses threads: weft with two single-worker
//                      scheduling groups and stealing off, one party in each;
//                      Boost.Fiber work_stealing; two std::threads with std::mutex
//                      and std::condition_variable.
// W5 (contended mutex): 64 parties each lock one mutex M times around a shared
// counter increment (checked against 64 * M); ns per lock/unlock. weft with a
// worker per CPU, Boost.Fiber on one thread and work_stealing, 64 std::threads,
// 64 goroutines on sync.Mutex.
//
// Parties are created and parked at a start gate before the clock starts, and the
// clock stops when the last one finishes (benchmark/parties.h); one untimed batch
// runs first.
#include <cstdint>
#include <functional>
#include <string>

#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/parties.h"
#include "benchmark/showcase.h"
#include "runtime/runtime.h"

namespace weft::showcase {

namespace {

using bench::BoostFiberKit;
using bench::ThreadKit;
using bench::Timing;
using bench::WeftKit;

const Workload kPingPongSameWorker{
    "W4-same-worker",
    "round-trip",
    {{Target::Kind::kFasterThanPeer, 2.0, Contender::kBoostFiber},
     {Target::Kind::kFasterThanPeer, 2.0, Contender::kGo}}};
const Workload kPingPongAcrossWorkers{
    "W4-across-workers",
    "round-trip",
    {{Target::Kind::kFasterThanPeer, 3.0, Contender::kThreads}}};
const Workload kContendedMutex{
    "W5",
    "lock",
    {{Target::Kind::kFasterThanPeer, 2.0, Contender::kBoostFiberWorkStealing},
     {Target::Kind::kFasterThanPeer, 2.0, Contender::kGo}}};

constexpr int kW5Parties = 64;

struct Sizes {
  std::int64_t rounds;  // W4, per batch
  std::int64_t locks;   // W5, per party and batch
  std::int64_t batches;
};

Sizes SizesFor(const Scale& scale) {
  if (scale.smoke) return {1'000, 100, 1};
  if (scale.quick) return {20'000, 2'000, 3};
  return {100'000, 10'000, 10};
}

// Runs `batch` once untimed and once per iteration, and reports the gate-timed
// seconds per operation in ns.
void Measure(::benchmark::State& state, double operations_per_batch,
             const std::function<Timing()>& batch) {
  Timing timing = batch();
  double seconds = 0;
  for (auto _ : state) {
    if (!timing.error.empty()) break;
    timing = batch();
    seconds += timing.seconds;
  }
  if (!timing.error.empty()) {
    state.SkipWithError(timing.error.c_str());
    return;
  }
  ReportValue(
      state,
      seconds * 1e9 / (operations_per_batch * static_cast<double>(state.iterations())));
}

RuntimeOptions WeftOptions(std::size_t workers) {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = workers;
  return options;
}

// One worker per group and no stealing: the two parties (placed round-robin over
// the groups) stay on different workers, so every hand-off crosses workers.
RuntimeOptions TwoSeparateWorkers() {
  RuntimeOptions options = WeftOptions(2);
  options.scheduling_group_size = 1;
  options.work_stealing_ratio = 0;
  return options;
}

// `run(kit)` runs one batch on the runtime of the kit.
template <class Run>
void AddOnWeft(const Workload& workload, const Sizes& sizes, double operations,
               RuntimeOptions options, Run run) {
  AddMeasurement(workload, Contender::kWeft, sizes.batches,
                 [operations, options, run](::benchmark::State& state) {
                   Runtime runtime(options);
                   Measure(state, operations, [&] { return run(WeftKit{}); });
                 });
}

template <class Run>
void AddOnBoostFiber(const Workload& workload, const Sizes& sizes, double operations,
                     Run run) {
  AddMeasurement(workload, Contender::kBoostFiber, sizes.batches,
                 [operations, run](::benchmark::State& state) {
                   Measure(state, operations, [&] {
                     Timing timing;
                     boost::fibers::fiber driver([&] { timing = run(BoostFiberKit{}); });
                     driver.join();
                     return timing;
                   });
                 });
}

template <class Run>
void AddOnBoostFiberWorkStealing(const Workload& workload, const Sizes& sizes,
                                 double operations, Run run) {
  AddMeasurement(workload, Contender::kBoostFiberWorkStealing, sizes.batches,
                 [operations, run](::benchmark::State& state) {
                   BoostWorkStealingPool& pool = BoostWorkStealingPool::Get();
                   Measure(state, operations, [&] {
                     Timing timing;
                     pool.Run([&] { timing = run(BoostFiberKit{}); });
                     return timing;
                   });
                 });
}

template <class Run>
void AddOnThreads(const Workload& workload, const Sizes& sizes, double operations,
                  Run run) {
  AddMeasurement(workload, Contender::kThreads, sizes.batches,
                 [operations, run](::benchmark::State& state) {
                   Measure(state, operations, [&] { return run(ThreadKit{}); });
                 });
}

}  // namespace

void AddPingPongMeasurements(const Scale& scale) {
  const Sizes sizes = SizesFor(scale);
  const auto ping_pong = [rounds = sizes.rounds](auto kit) {
    return bench::PingPong<decltype(kit)>(rounds);
  };
  const double rounds = static_cast<double>(sizes.rounds);
  AddOnWeft(kPingPongSameWorker, sizes, rounds, WeftOptions(1), ping_pong);
  AddOnBoostFiber(kPingPongSameWorker, sizes, rounds, ping_pong);
  AddGoMeasurement(kPingPongSameWorker, "W4", "W4",
                   "-w4_n=" + std::to_string(sizes.rounds * sizes.batches));

  AddOnWeft(kPingPongAcrossWorkers, sizes, rounds, TwoSeparateWorkers(), ping_pong);
  AddOnThreads(kPingPongAcrossWorkers, sizes, rounds, ping_pong);
  AddOnBoostFiberWorkStealing(kPingPongAcrossWorkers, sizes, rounds, ping_pong);

  const auto contended = [locks = sizes.locks](auto kit) {
    return bench::ContendedMutex<decltype(kit)>(kW5Parties, locks);
  };
  const double locks = static_cast<double>(kW5Parties * sizes.locks);
  AddOnWeft(kContendedMutex, sizes, locks, WeftOptions(CpuCount()), contended);
  AddOnBoostFiber(kContendedMutex, sizes, locks, contended);
  AddOnThreads(kContendedMutex, sizes, locks, contended);
  AddOnBoostFiberWorkStealing(kContendedMutex, sizes, locks, contended);
  AddGoMeasurement(kContendedMutex, "W5", "W5",
                   "-w5_goroutines=" + std::to_string(kW5Parties) +
                       " -w5_m=" + std::to_string(sizes.locks * sizes.batches));
}

}  // namespace weft::showcase
