// weft_stealing_bench: what work stealing between scheduling groups buys when the
// load is lopsided, and what it costs when it is not.
//
//   weft_stealing_bench [--quick] [--benchmark_filter=Imbalance] [--weft_...]
//
// Every group has one worker, so a fiber can only leave its group by being stolen:
//   Imbalance             all fibers start in group 0 of groups on one NUMA node;
//                         work_stealing_ratio 0 (off), 16 (the default) and 1.
//   ImbalanceAcrossNodes  the same with two groups on two NUMA nodes (a synthetic
//                         topology); cross_numa_work_stealing_ratio 0 and 1.
//   AllBusy               the fibers spread round-robin over every group, so no group
//                         runs dry before the end: little to gain, and its cost shows.
//   AllBusyTiny           the same with empty fibers, which magnifies any per-fiber
//                         cost of stealing (the spawning thread is then the limit).
// After Google Benchmark's own output comes one `workload runtime value unit` line
// per measurement and a table comparing each stealing variant with stealing off.
// --quick shrinks the batches and does one repetition; otherwise the figures are
// medians of three.
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "benchmark/bench_main.h"
#include "benchmark/benchmark.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"

namespace weft {

namespace {

struct Scale {
  std::int64_t fibers = 10'000;        // per batch, each doing the work below
  std::int64_t tiny_fibers = 100'000;  // per batch of AllBusyTiny
  std::int64_t batches = 5;            // timed batches per repetition
  int repetitions = 3;
};

// Rounds of xorshift per working fiber: about 17 µs on the 2-core development VM
// (the summary prints what it takes here). Each round depends on the previous one,
// so the compiler can neither fold nor vectorize the loop.
constexpr std::uint64_t kWorkRounds = 10'000;

std::uint64_t Work(std::uint64_t seed, std::uint64_t rounds) {
  std::uint64_t x = seed | 1;
  for (std::uint64_t i = 0; i < rounds; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
  }
  return x;
}

// What one fiber's work takes on a plain thread: the best of a few tries, since
// a try that got preempted says nothing about the work.
double WorkNanoseconds(std::uint64_t rounds) {
  constexpr int kCalls = 2'000;
  double best = 0;
  for (int attempt = 0; attempt < 5; ++attempt) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) ::benchmark::DoNotOptimize(Work(i, rounds));
    const std::chrono::duration<double, std::nano> took =
        std::chrono::steady_clock::now() - start;
    const double per_call = took.count() / kCalls;
    if (attempt == 0 || per_call < best) best = per_call;
  }
  return best;
}

// How a variant's figure compares with its family's stealing-off baseline.
enum class Comparison { kSpeedUp, kOverhead };

struct Variant {
  std::string family;  // "Imbalance"
  std::string label;   // "ratio=16"; the benchmark is "<family>/<label>"
  bool baseline;       // stealing off: what the others are compared with
  Comparison comparison;
  RuntimeOptions options;
  std::size_t scheduling_group;  // 0 or kUnspecifiedSchedulingGroup
  std::int64_t fibers;
  std::uint64_t work_rounds;

  std::string Name() const { return family + "/" + label; }
};

std::uint64_t TotalSteals() {
  std::uint64_t steals = 0;
  for (const SchedulingGroupStats& group : GetRuntimeStats().scheduling_groups) {
    steals += group.steals_within_numa_node + group.steals_across_numa_nodes;
  }
  return steals;
}

void RunVariant(::benchmark::State& state, const Variant& variant) {
  Runtime runtime(variant.options);
  FiberAttributes attributes;
  attributes.scheduling_group = variant.scheduling_group;
  const std::int64_t fibers = variant.fibers;
  const std::uint64_t rounds = variant.work_rounds;
  // Starts a batch from this plain thread and waits for its last fiber.
  auto run_batch = [&] {
    // May be destroyed as soon as Wait() returns, whatever the last fiber does.
    FiberLatch countdown(fibers);
    for (std::int64_t i = 0; i < fibers; ++i) {
      const std::uint64_t seed = static_cast<std::uint64_t>(i);
      const bool started = StartFiberDetached(attributes, [&countdown, seed, rounds] {
        ::benchmark::DoNotOptimize(Work(seed, rounds));
        countdown.CountDown();
      });
      if (!started) {
        state.SkipWithError("StartFiberDetached() failed");
        countdown.CountDown(fibers - i);
        break;
      }
    }
    countdown.Wait();
  };
  // An untimed batch first pays what a long-running process pays once: mapping
  // and faulting in the stacks.
  run_batch();
  const std::uint64_t steals_before = TotalSteals();
  for (auto _ : state) {
    if (state.error_occurred()) break;
    run_batch();
  }
  const double steals = static_cast<double>(TotalSteals() - steals_before);
  const double total_fibers = static_cast<double>(fibers * state.iterations());
  state.SetItemsProcessed(fibers * state.iterations());
  // Seconds per fiber (Google Benchmark prints it with an SI prefix).
  state.counters["per_fiber"] = ::benchmark::Counter(
      total_fibers, ::benchmark::Counter::kIsRate | ::benchmark::Counter::kInvert);
  state.counters["steals"] =
      ::benchmark::Counter(steals, ::benchmark::Counter::kAvgIterations);
}

// Groups of one worker each, all on one NUMA node. The synthetic topology keeps
// the layout the same on any machine; it does not pin workers to CPUs.
RuntimeOptions OneNode(std::size_t groups) {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = groups;
  options.scheduling_group_size = 1;
  options.topology = "pack:1 numa:1 core:" + std::to_string(groups) + " pu:1";
  options.cross_numa_work_stealing_ratio = 0;
  return options;
}

// Two NUMA nodes with one group of one worker each.
RuntimeOptions TwoNodes() {
  RuntimeOptions options = RuntimeOptions::FromFlags();
  options.concurrency_hint = 2;
  options.scheduling_group_size = 1;
  options.topology = "pack:2 numa:1 core:1 pu:1";
  return options;
}

// Families in the order of the file comment. A family's first variant, with
// stealing off, is the baseline of the others.
std::vector<Variant> MakeVariants(const Scale& scale, std::size_t groups) {
  std::vector<Variant> variants;
  auto add_family = [&](const std::string& family, Comparison comparison,
                        std::size_t group, std::int64_t fibers, std::uint64_t rounds) {
    const bool across_nodes = family == "ImbalanceAcrossNodes";
    for (std::size_t ratio : across_nodes ? std::vector<std::size_t>{0, 1}
                                          : std::vector<std::size_t>{0, 16, 1}) {
      RuntimeOptions options = across_nodes ? TwoNodes() : OneNode(groups);
      (across_nodes ? options.cross_numa_work_stealing_ratio
                    : options.work_stealing_ratio) = ratio;
      const std::string label =
          (across_nodes ? "cross_ratio=" : "ratio=") + std::to_string(ratio);
      variants.push_back(
          {family, label, ratio == 0, comparison, options, group, fibers, rounds});
    }
  };
  add_family("Imbalance", Comparison::kSpeedUp, 0, scale.fibers, kWorkRounds);
  add_family("ImbalanceAcrossNodes", Comparison::kSpeedUp, 0, scale.fibers, kWorkRounds);
  add_family("AllBusy", Comparison::kOverhead, kUnspecifiedSchedulingGroup, scale.fibers,
             kWorkRounds);
  add_family("AllBusyTiny", Comparison::kOverhead, kUnspecifiedSchedulingGroup,
             scale.tiny_fibers, 0);
  return variants;
}

struct Result {
  bool ok = false;
  double ns_per_fiber = 0;
  double steals_per_batch = 0;
  // CPU time of the thread that starts the fibers and waits: it shares the CPUs
  // with the workers, so it bounds what any spreading of the work can gain.
  double spawner_ns_per_batch = 0;
  std::string error;
};

// Google Benchmark's console output, plus each measurement's figures: the median
// when there are repetitions, otherwise the single run.
class CollectingReporter : public ::benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      const bool median =
          run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (run.run_type == Run::RT_Aggregate && !median) continue;
      Result& result = results_[run.run_name.function_name];
      if (run.error_occurred) {
        result = Result{false, 0, 0, 0, run.error_message};
        continue;
      }
      const auto per_fiber = run.counters.find("per_fiber");
      const auto steals = run.counters.find("steals");
      if (per_fiber == run.counters.end() || steals == run.counters.end()) continue;
      // Repetitions come before their median, which thus has the last word.
      const double cpu_per_batch =
          run.cpu_accumulated_time / static_cast<double>(run.iterations);
      result = Result{true, per_fiber->second.value * 1e9, steals->second.value,
                      cpu_per_batch * 1e9, ""};
    }
  }

  const std::map<std::string, Result>& results() const { return results_; }

 private:
  std::map<std::string, Result> results_;
};

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

const Result* Find(const std::map<std::string, Result>& results,
                   const std::string& name) {
  const auto found = results.find(name);
  return found == results.end() || !found->second.ok ? nullptr : &found->second;
}

// Each variant against its family's baseline: a speed-up for the lopsided loads,
// the change in time per fiber for the balanced ones.
std::string CompareWithBaseline(const Variant& variant, const Result& result,
                                const Result* baseline) {
  if (variant.baseline) return "(baseline)";
  if (baseline == nullptr) return "-";
  if (variant.comparison == Comparison::kSpeedUp) {
    return Format("%.2fx speed-up", baseline->ns_per_fiber / result.ns_per_fiber);
  }
  const double change = (result.ns_per_fiber / baseline->ns_per_fiber - 1) * 100;
  return Format("%+.1f%%", change) + (change > 0 ? " (slower)" : " (not slower)");
}

void PrintSummary(const std::vector<Variant>& variants,
                  const std::map<std::string, Result>& results, std::size_t cpus,
                  double work_ns, const Scale& scale) {
  std::printf("\n");
  for (const Variant& variant : variants) {
    const auto found = results.find(variant.Name());
    if (found == results.end()) continue;
    if (found->second.ok) {
      std::printf("%s weft %.0f ns/fiber\n", variant.Name().c_str(),
                  found->second.ns_per_fiber);
    } else {
      std::printf("%s weft error: %s\n", variant.Name().c_str(),
                  found->second.error.c_str());
    }
  }

  std::printf(
      "\n%s. One working fiber's work takes %.0f ns on a plain thread.\n"
      "stolen:  steals / fibers.\n"
      "spawner: CPU time per fiber of the thread that starts them and waits.\n"
      "limit:   the time per fiber if no CPU ever idled, as a share of the\n"
      "         measured one: max(work / workers, (work + spawner) / %zu CPUs,\n"
      "         spawner) / ns per fiber.\n\n",
      scale.repetitions > 1 ? "Medians of the repetitions" : "One repetition", work_ns,
      cpus);
  std::printf("%-34s %9s %7s %8s %6s  %s\n", "workload", "ns/fiber", "stolen", "spawner",
              "limit", "vs stealing off");
  std::printf("%s\n", std::string(90, '-').c_str());
  for (const Variant& variant : variants) {
    const auto found = results.find(variant.Name());
    if (found == results.end()) continue;
    const Result& result = found->second;
    if (!result.ok) {
      std::printf("%-34s error: %s\n", variant.Name().c_str(), result.error.c_str());
      continue;
    }
    const Result* baseline = nullptr;
    for (const Variant& other : variants) {
      if (other.family == variant.family && other.baseline) {
        baseline = Find(results, other.Name());
      }
    }
    const double fibers = static_cast<double>(variant.fibers);
    const double spawner_ns = result.spawner_ns_per_batch / fibers;
    // Every group has one worker. Tiny fibers do no work: only the spawner counts.
    const double fiber_work_ns = variant.work_rounds == 0 ? 0 : work_ns;
    const double limit_ns =
        std::max({fiber_work_ns / static_cast<double>(variant.options.concurrency_hint),
                  (fiber_work_ns + spawner_ns) / static_cast<double>(cpus), spawner_ns});
    std::printf("%-34s %9.0f %6.1f%% %8.0f %5.0f%%  %s\n", variant.Name().c_str(),
                result.ns_per_fiber, 100 * result.steals_per_batch / fibers, spawner_ns,
                100 * limit_ns / result.ns_per_fiber,
                CompareWithBaseline(variant, result, baseline).c_str());
  }
}

// CPUs this process may run on.
std::size_t CpuCount() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0) return 1;
  return static_cast<std::size_t>(CPU_COUNT(&cpus));
}

int Run(const bench::Mode& mode) {
  Scale scale;
  if (mode.quick) {
    scale.fibers = 2'000;
    scale.tiny_fibers = 20'000;
    scale.batches = 3;
    scale.repetitions = 1;
  }

  // One group (of one worker) per CPU, at least two so that there is someone to
  // steal from.
  const std::size_t cpus = CpuCount();
  const std::size_t groups = std::max<std::size_t>(cpus, 2);
  std::printf("Layouts (default ratios shown; each variant sets its own):\n%s\n%s\n",
              DescribeLayout(OneNode(groups)).c_str(),
              DescribeLayout(TwoNodes()).c_str());
  std::fflush(stdout);

  const std::vector<Variant> variants = MakeVariants(scale, groups);
  for (const Variant& variant : variants) {
    ::benchmark::internal::Benchmark* benchmark = ::benchmark::RegisterBenchmark(
        variant.Name().c_str(),
        [variant](::benchmark::State& state) { RunVariant(state, variant); });
    // The work runs on the workers, not on the timing thread: wall-clock time.
    benchmark->UseRealTime()
        ->Unit(::benchmark::kMillisecond)
        ->Iterations(scale.batches)
        ->Repetitions(scale.repetitions);
    if (scale.repetitions > 1) benchmark->DisplayAggregatesOnly();
  }

  CollectingReporter reporter;
  ::benchmark::RunSpecifiedBenchmarks(&reporter);
  std::fflush(stdout);
  // Measured after the benchmarks, on a machine that is otherwise quiet.
  const double work_ns = WorkNanoseconds(kWorkRounds);
  PrintSummary(variants, reporter.results(), cpus, work_ns, scale);
  return 0;
}

}  // namespace

}  // namespace weft

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_stealing_bench: work stealing between scheduling groups, on a lopsided\n"
      "load (all fibers in one group) and on a balanced one, with stealing off and on.\n";
  program.quick = "smaller batches and one repetition instead of three";
  program.runtime_flags =
      "; each workload sets the\n          topology, worker and group counts and the "
      "stealing ratios itself";
  return weft::bench::Main(program, argc, argv, weft::Run);
}
