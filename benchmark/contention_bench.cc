// C1-C5: contention. A thousand parties hammer one primitive at once, on weft
// (a worker per CPU, default flags) and on the primitive a user would pick
// instead; the workload code is shared (benchmark/contention.h) and checks the
// primitive's promise on every run. Every figure is wall time per operation over
// all parties, except the "inside" figures, which say how much concurrency the
// primitive kept.
//
//   C1-sem-N1, -N3, -N16   1000 contenders each take a semaphore of N permits
//                          `rounds` times: acquire; count the holders inside,
//                          itself included; yield (this_fiber::Yield,
//                          std::this_thread::yield, runtime.Gosched); uncount;
//                          release. Figures: ns per acquisition, and
//                          C1-sem-N<N>-holders, the mean holders inside per
//                          acquisition (≥ 0.9 N is the target: with 1000
//                          contenders a unit should never sit idle).
//     weft                 1000 fibers on FiberSemaphore;
//     -mixed rows          998 fibers and 2 plain threads on one FiberSemaphore;
//     C1-sem-N3-4workers   1000 fibers on 4 workers (the issue's reproduction:
//                          more workers than this machine's 2 CPUs);
//     std::thread          160 threads (10 N for the largest N) on a
//                          semaphore of std::mutex and condition_variable
//                          (MutexCvSemaphore in parties.h: libstdc++ 12's
//                          std::counting_semaphore can lose a wake-up and hung
//                          a full-size run; it also woke every waiter at each
//                          release, which with 1000 threads took ~0.8 ms per
//                          acquisition). Fewer waiters make each release
//                          cheaper, which favours the peer;
//     Go                   1000 goroutines on a buffered channel of capacity N
//                          (send acquires, receive releases), GOMAXPROCS = CPUs.
//   The peers have one measurement per N: the -mixed and -4workers rows repeat
//   it beside weft's variant. Boost.Fiber has no semaphore and is not measured.
//   C2-shared-readers      1000 contenders, `rounds` operations each; one in 64 is
//                          a write (an exclusive lock around a check that nobody
//                          else is inside), the others reads held across a yield.
//                          Figures: ns per read (the writes' time included) and
//                          C2-shared-readers-inside, the mean readers inside per
//                          shared acquisition. weft: FiberSharedMutex (phase-fair);
//                          std::thread: 1000 threads on std::shared_mutex (glibc's
//                          rwlock, which prefers readers); Go: sync.RWMutex (a waiting
//                          writer holds back new readers). The readers-inside target is
//                          Go's, whose policy is closest to weft's.
//   C3-channel-mpmc        500 producers push `values` distinct values each
//                          through a channel of capacity 16 to 500 consumers; the
//                          last producer closes it, and every value must arrive
//                          exactly once. ns per value. weft: FiberChannel;
//                          std::thread: 1000 threads on a queue of a mutex and
//                          two condition variables;
//                          Boost.Fiber ws: buffered_channel (capacity 16 holds 15
//                          values); Go: a buffered channel, closed the same way.
//   C4-cv-herd             1000 waiters wait on one condition variable for a
//                          generation counter to move; a notifier bumps it under
//                          the mutex and calls notify_all, and waits until every
//                          waiter has woken, re-checked and counted itself under
//                          the mutex. ns per herd, timed by the notifier. weft:
//                          FiberMutex + FiberConditionVariable; std::thread: 1000
//                          threads on std::mutex + std::condition_variable;
//                          Boost.Fiber ws; Go: sync.Mutex + sync.Cond Broadcast.
//   C5-barrier-mixed       1000 parties pass `phases` phases of one barrier; weft:
//                          998 fibers and 2 plain threads on FiberBarrier;
//                          std::thread: 1000 threads on std::barrier; Go: a
//                          reusable barrier of sync.Mutex + sync.Cond (Go has
//                          none). ns per phase, timed by party 0.
//
// Sizes (full / --quick / --smoke): 1000 / 1000 / 100 parties (threads for C1:
// 160 / 160 / 100); per batch, rounds 50 / 10 / 4, values 100 / 20 / 4, herds
// 40 / 10 / 3, phases 100 / 20 / 3; batches 5 / 3 / 1.
//
// Parties are created and parked at a start gate before the clock starts
// (benchmark/parties.h); one untimed batch runs first. The figures are summed
// over `batches` batches; the Go peer runs the same batches with the same sizes
// (benchmark/peers/go/contention.go). A batch that does not finish within
// kBatchLimit (a lost wake-up) ends the process with a message.
//
// Compiled as C++20, for std::barrier.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/contention.h"
#include "benchmark/showcase.h"
#include "runtime/runtime.h"

namespace weft::showcase {

namespace {

using bench::BoostContentionKit;
using bench::Outcome;
using bench::StdContentionKit;
using bench::WeftContentionKit;

constexpr int kPermits[] = {1, 3, 16};
// The issue's reproduction ran C1 with N = 3 on 4 workers.
constexpr int kIssuePermits = 3;
constexpr std::size_t kIssueWorkers = 4;
constexpr int kPlainThreads = 2;
// C1's std::thread contenders: 10 times the largest N (see the file comment).
constexpr int kSemaphoreThreads = 160;
constexpr int kWriteEvery = 64;
constexpr std::size_t kChannelCapacity = 16;
constexpr std::chrono::seconds kBatchLimit{120};

struct Sizes {
  // Parties of every workload: C1 and C2 contenders, C3 producers + consumers,
  // C4 waiters (and a notifier), C5 barrier parties.
  int contenders;
  int rounds;  // C1, C2: operations per contender and batch
  int values;  // C3: values per producer and batch
  int herds;   // C4, per batch
  int phases;  // C5, per batch
  std::int64_t batches;
};

Sizes SizesFor(const Scale& scale) {
  if (scale.smoke) return {100, 4, 4, 3, 3, 1};
  if (scale.quick) return {1000, 10, 20, 10, 20, 3};
  return {1000, 50, 100, 40, 100, 5};
}

// Workloads made here live as long as the process: measurements point at them.
const Workload& Keep(Workload workload) {
  static auto* kept = new std::deque<Workload>;
  kept->push_back(std::move(workload));
  return kept->back();
}

// At least level with each of `peers` (factor 1).
std::vector<Target> AheadOf(std::initializer_list<Contender> peers) {
  std::vector<Target> targets;
  for (Contender peer : peers) {
    targets.push_back({Target::Kind::kFasterThanPeer, 1.0, peer});
  }
  return targets;
}

const Workload& TimeWorkload(std::string id, std::string operation,
                             std::vector<Target> targets) {
  return Keep(Workload{std::move(id), std::move(operation), std::move(targets)});
}

// A mean number of parties inside the primitive at once, in `unit`.
const Workload& InsideWorkload(std::string id, std::string unit,
                               std::vector<Target> targets) {
  Workload workload{std::move(id), "acquire", std::move(targets)};
  workload.unit = std::move(unit);
  workload.higher_is_better = true;
  return Keep(std::move(workload));
}

// Ends the process if a batch has not finished within kBatchLimit: a lost
// wake-up must not hang the run (or CI's smoke run) forever.
class Watchdog {
 public:
  explicit Watchdog(std::string what)
      : what_(std::move(what)), thread_([this] { Watch(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void Watch() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (cv_.wait_for(lock, kBatchLimit, [this] { return done_; })) return;
    std::fprintf(stderr,
                 "weft_showcase: a batch of %s has not finished in %lld s (a lost "
                 "wake-up?); giving up\n",
                 what_.c_str(), static_cast<long long>(kBatchLimit.count()));
    std::_Exit(1);
  }

  const std::string what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: started once the rest is constructed
};

// The figures a measurement also reports beside its own (Measurement's
// also_reports): its time per operation under other workloads' ids, and its
// mean holders inside.
struct Reports {
  std::vector<const Workload*> times;
  std::vector<const Workload*> insides;

  std::vector<const Workload*> All() const {
    std::vector<const Workload*> all = times;
    all.insert(all.end(), insides.begin(), insides.end());
    return all;
  }
};

// Runs `batch` once untimed and once per iteration of `state`, and reports ns
// per operation given `operations` per batch, and the mean holders inside.
void Measure(::benchmark::State& state, const std::string& name, double operations,
             const Reports& reports, const std::function<Outcome()>& batch) {
  const auto run = [&] {
    Watchdog watchdog(name);
    return batch();
  };
  Outcome outcome = run();
  double seconds = 0;
  std::int64_t acquisitions = 0;
  std::int64_t inside_sum = 0;
  for (auto _ : state) {
    if (!outcome.error.empty()) break;
    outcome = run();
    seconds += outcome.seconds;
    acquisitions += outcome.acquisitions;
    inside_sum += outcome.inside_sum;
  }
  if (!outcome.error.empty()) {
    state.SkipWithError(outcome.error.c_str());
    return;
  }
  const double ns =
      seconds * 1e9 / (operations * static_cast<double>(state.iterations()));
  ReportValue(state, ns);
  for (const Workload* workload : reports.times) ReportValue(state, *workload, ns);
  const double inside =
      acquisitions == 0 ? 0 : static_cast<double>(inside_sum) / acquisitions;
  for (const Workload* workload : reports.insides) ReportValue(state, *workload, inside);
}

RuntimeOptions WeftOptions(std::size_t workers) {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = workers;
  return options;
}

// `run(kit)` runs one batch on the runtime of the kit.
template <class Run>
void AddOnWeft(const Workload& workload, const Reports& reports, const Sizes& sizes,
               double operations, RuntimeOptions options, Run run) {
  AddMeasurement(
      workload, Contender::kWeft, sizes.batches,
      [&workload, reports, operations, options, run](::benchmark::State& state) {
        Runtime runtime(options);
        Measure(state, workload.id + "/weft", operations, reports,
                [&] { return run(WeftContentionKit{}); });
      },
      /*min_time=*/0, reports.All());
}

template <class Run>
void AddOnThreads(const Workload& workload, const Reports& reports, const Sizes& sizes,
                  double operations, Run run) {
  AddMeasurement(
      workload, Contender::kThreads, sizes.batches,
      [&workload, reports, operations, run](::benchmark::State& state) {
        Measure(state, workload.id + "/std.thread", operations, reports,
                [&] { return run(StdContentionKit{}); });
      },
      /*min_time=*/0, reports.All());
}

template <class Run>
void AddOnBoostFiberWorkStealing(const Workload& workload, const Sizes& sizes,
                                 double operations, Run run) {
  AddMeasurement(workload, Contender::kBoostFiberWorkStealing, sizes.batches,
                 [&workload, operations, run](::benchmark::State& state) {
                   BoostWorkStealingPool& pool = BoostWorkStealingPool::Get();
                   Measure(state, workload.id + "/boost.fiber-ws", operations, {}, [&] {
                     Outcome outcome;
                     pool.Run([&] { outcome = run(BoostContentionKit{}); });
                     return outcome;
                   });
                 });
}

// The sizes for the Go peer: one set of flags for every contention workload.
std::string GoFlags(const Sizes& sizes) {
  return "-c_contenders=" + std::to_string(sizes.contenders) +
         " -c_batches=" + std::to_string(sizes.batches) +
         " -c_rounds=" + std::to_string(sizes.rounds) +
         " -c_write_every=" + std::to_string(kWriteEvery) +
         " -c_capacity=" + std::to_string(kChannelCapacity) +
         " -c_values=" + std::to_string(sizes.values) +
         " -c_herds=" + std::to_string(sizes.herds) +
         " -c_phases=" + std::to_string(sizes.phases);
}

void AddSemaphoreMeasurements(const Sizes& sizes) {
  const double acquisitions = static_cast<double>(sizes.contenders) * sizes.rounds;
  for (const int permits : kPermits) {
    const auto semaphore = [&sizes, permits](int contenders, int plain_threads) {
      return [contenders, rounds = sizes.rounds, permits, plain_threads](auto kit) {
        return bench::SemaphoreContention<decltype(kit)>(contenders, plain_threads,
                                                         permits, rounds);
      };
    };
    const std::string id = "C1-sem-N" + std::to_string(permits);
    const std::string go_id = "C1-N" + std::to_string(permits);
    // The rows of weft's variants: workers per CPU and no threads, with plain
    // threads among the fibers, and (N = 3) on the issue's 4 workers.
    struct Row {
      const Workload* time;
      const Workload* holders;
      int plain_threads;
      std::size_t workers;
    };
    std::vector<Row> rows;
    const auto add_row = [&](const std::string& row_id, int plain_threads,
                             std::size_t workers) {
      const Workload& time =
          TimeWorkload(row_id, "acquire", AheadOf({Contender::kThreads, Contender::kGo}));
      const Workload& holders = InsideWorkload(row_id + "-holders", "holders",
                                               {{Target::Kind::kAtLeast, 0.9 * permits}});
      rows.push_back({&time, &holders, plain_threads, workers});
    };
    add_row(id, 0, CpuCount());
    add_row(id + "-mixed", kPlainThreads, CpuCount());
    if (permits == kIssuePermits) add_row(id + "-4workers", 0, kIssueWorkers);

    Reports peers;  // the peers' figures, under every row's ids
    for (const Row& row : rows) {
      AddOnWeft(*row.time, {{}, {row.holders}}, sizes, acquisitions,
                WeftOptions(row.workers), semaphore(sizes.contenders, row.plain_threads));
      if (row.time != rows.front().time) peers.times.push_back(row.time);
      peers.insides.push_back(row.holders);
      AddGoMeasurement(*row.time, go_id, id, GoFlags(sizes));
      AddGoMeasurement(*row.holders, go_id, id + "-holders", GoFlags(sizes));
    }
    const int threads = std::min(sizes.contenders, kSemaphoreThreads);
    AddOnThreads(*rows.front().time, peers, sizes,
                 static_cast<double>(threads) * sizes.rounds, semaphore(threads, 0));
  }
}

}  // namespace

void AddContentionMeasurements(const Scale& scale) {
  const Sizes sizes = SizesFor(scale);
  const std::string go_flags = GoFlags(sizes);
  AddSemaphoreMeasurements(sizes);

  const Workload& readers = TimeWorkload("C2-shared-readers", "read",
                                         AheadOf({Contender::kThreads, Contender::kGo}));
  const Workload& readers_inside =
      InsideWorkload("C2-shared-readers-inside", "readers", AheadOf({Contender::kGo}));
  const auto shared_readers = [contenders = sizes.contenders,
                               rounds = sizes.rounds](auto kit) {
    return bench::SharedReaders<decltype(kit)>(contenders, rounds, kWriteEvery);
  };
  const double reads = static_cast<double>(
      bench::SharedReads(sizes.contenders, sizes.rounds, kWriteEvery));
  AddOnWeft(readers, {{}, {&readers_inside}}, sizes, reads, WeftOptions(CpuCount()),
            shared_readers);
  AddOnThreads(readers, {{}, {&readers_inside}}, sizes, reads, shared_readers);
  AddGoMeasurement(readers, "C2", "C2-shared-readers", go_flags);
  AddGoMeasurement(readers_inside, "C2", "C2-shared-readers-inside", go_flags);

  const Workload& channel = TimeWorkload(
      "C3-channel-mpmc", "value",
      AheadOf({Contender::kThreads, Contender::kBoostFiberWorkStealing, Contender::kGo}));
  const int producers = sizes.contenders / 2;
  const auto many_to_many = [producers, consumers = sizes.contenders - producers,
                             values = sizes.values](auto kit) {
    return bench::ChannelManyToMany<decltype(kit)>(producers, consumers, kChannelCapacity,
                                                   values);
  };
  const double values = static_cast<double>(producers) * sizes.values;
  AddOnWeft(channel, {}, sizes, values, WeftOptions(CpuCount()), many_to_many);
  AddOnThreads(channel, {}, sizes, values, many_to_many);
  AddOnBoostFiberWorkStealing(channel, sizes, values, many_to_many);
  AddGoMeasurement(channel, "C3", "C3-channel-mpmc", go_flags);

  const Workload& herd = TimeWorkload(
      "C4-cv-herd", "herd",
      AheadOf({Contender::kThreads, Contender::kBoostFiberWorkStealing, Contender::kGo}));
  const auto condition_herd = [waiters = sizes.contenders,
                               herds = sizes.herds](auto kit) {
    return bench::ConditionHerd<decltype(kit)>(waiters, herds);
  };
  const double herds = sizes.herds;
  AddOnWeft(herd, {}, sizes, herds, WeftOptions(CpuCount()), condition_herd);
  AddOnThreads(herd, {}, sizes, herds, condition_herd);
  AddOnBoostFiberWorkStealing(herd, sizes, herds, condition_herd);
  AddGoMeasurement(herd, "C4", "C4-cv-herd", go_flags);

  const Workload& barrier = TimeWorkload("C5-barrier-mixed", "phase",
                                         AheadOf({Contender::kThreads, Contender::kGo}));
  const auto barrier_phases = [parties = sizes.contenders,
                               phases = sizes.phases](auto kit) {
    // The plain threads are weft's; the threads' kit has nothing else.
    return bench::BarrierPhases<decltype(kit)>(parties, kPlainThreads, phases);
  };
  const double phases = sizes.phases;
  AddOnWeft(barrier, {}, sizes, phases, WeftOptions(CpuCount()), barrier_phases);
  AddOnThreads(barrier, {}, sizes, phases, barrier_phases);
  AddGoMeasurement(barrier, "C5", "C5-barrier-mixed", go_flags);
}

}  // namespace weft::showcase
