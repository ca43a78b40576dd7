// The showcase runs each workload of BENCHMARKS.md on weft and on the runtimes a
// user would pick instead, in one process, so that every ratio it prints compares
// measurements taken on the same machine at the same moment.
//
// A workload family (one source file) describes its workloads and adds one
// measurement per runtime with AddMeasurement(); showcase_main.cc registers them
// with Google Benchmark, collects the results and prints the comparison.
#ifndef WEFT_BENCHMARK_SHOWCASE_H_
#define WEFT_BENCHMARK_SHOWCASE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"

namespace weft::showcase {

// The runtime a measurement exercises; each is one column of the table.
enum class Contender {
  kWeft,
  // Boost.Fiber's default round_robin scheduler on one thread.
  kBoostFiber,
  // Boost.Fiber's work_stealing across as many threads as weft has workers.
  kBoostFiberWorkStealing,
  // Boost.Context's bare jump_fcontext: no scheduler at all, the floor.
  kFcontext,
};

// The name printed in the `workload runtime value unit` lines.
const char* ContenderName(Contender contender);

// A figure weft must reach on a workload (BENCHMARKS.md, "Targets").
struct Target {
  enum class Kind {
    // weft's time per operation is at most `factor` times the W0 round trip.
    kWithinFloorMultiple,
    // `peer` takes at least `factor` times as long per operation as weft.
    kFasterThanPeer,
  };
  Kind kind;
  double factor;
  Contender peer = Contender::kWeft;
};

struct Workload {
  std::string id;         // "W1-2fibers"
  std::string operation;  // "yield": the unit printed is ns/yield
  std::vector<Target> targets;
  // The workload whose time per operation is the floor the others are held to.
  bool is_floor = false;
};

// Sizes of the workloads: the full run, or a quick one (--quick) that keeps every
// workload but shrinks its batches and repetitions.
struct Scale {
  bool quick = false;
};

using MeasureFn = std::function<void(::benchmark::State&)>;

struct Measurement {
  const Workload* workload;
  Contender contender;
  // Fixed iteration count; 0 lets Google Benchmark choose within `min_time`.
  std::int64_t iterations;
  double min_time;
  MeasureFn fn;

  // "<workload>/<runtime>", e.g. "W1-2fibers/weft".
  std::string Name() const;
};

// Adds the measurement of `workload` (which must outlive the run) on `contender`.
// `fn` runs the workload in its timing loop and calls ReportOperations().
void AddMeasurement(const Workload& workload, Contender contender,
                    std::int64_t iterations, MeasureFn fn, double min_time = 0);

const std::vector<Measurement>& Measurements();

// Reports the time per operation as the counter kPerOperationCounter, given the
// operations completed over all iterations of `state`. The counter is in seconds
// (Google Benchmark prints it with an SI prefix).
void ReportOperations(::benchmark::State& state, double operations);
inline constexpr char kPerOperationCounter[] = "per_op";

// Runs `batch` once untimed, then once per iteration of `state`, and reports the
// time per operation given `operations_per_batch`. The untimed batch pays what a
// long-running process pays once, at start-up: mapping and faulting in stacks,
// growing pools and heaps. The figure is then the steady state. A batch that
// calls state.SkipWithError() ends the measurement.
template <class Batch>
void RunBatches(::benchmark::State& state, double operations_per_batch, Batch&& batch) {
  batch();
  for (auto _ : state) {
    batch();
    if (state.error_occurred()) break;
  }
  ReportOperations(state, operations_per_batch * static_cast<double>(state.iterations()));
}

// Each workload family adds its measurements.
void AddContextSwitchMeasurements(const Scale& scale);  // W0
void AddYieldMeasurements(const Scale& scale);          // W1
void AddSpawnMeasurements(const Scale& scale);          // W2a, W2b

// Worker threads for the multi-threaded workloads: one per CPU, as weft's
// concurrency_hint = 0 would choose on an unrestricted process.
unsigned CpuCount();

}  // namespace weft::showcase

#endif  // WEFT_BENCHMARK_SHOWCASE_H_
