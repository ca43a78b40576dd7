// The showcase runs each workload of docs/benchmarks.md on weft and on the
// runtimes a user would pick instead, in one process, so that every ratio it
// prints compares measurements taken on the same machine at the same moment.
//
// A workload family (one source file) describes its workloads and adds one
// measurement per runtime with AddMeasurement(); showcase_main.cc registers them
// with Google Benchmark and collects the results, and showcase_report.h prints
// the comparison.
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
  // Plain std::thread with std::mutex / std::condition_variable.
  kThreads,
  // Go goroutines: the separate program benchmark/peers/go, run after the rest.
  kGo,
  // Boost.Context's bare jump_fcontext: no scheduler at all, the floor.
  kFcontext,
  // The network servers' peers (W10-W12, net_bench.cc), each a server process
  // started for the measurement: nginx (W10), standalone Asio with an
  // io_context per thread (W11, W12), and a hand-written epoll loop per thread,
  // the limit (W11).
  kNginx,
  kAsio,
  kEpoll,
  // Debian's redis-benchmark (W13, redis_bench.cc), driving a redis-server
  // started for the measurement, as weft's hooked hiredis clients drive theirs.
  kRedisBenchmark,
};

// The name printed in the `workload runtime value unit` lines.
const char* ContenderName(Contender contender);

// A figure weft must reach on a workload (docs/benchmarks.md, the "target" column).
struct Target {
  enum class Kind {
    // weft's time per operation is at most `factor` times the W0 round trip.
    kWithinFloorMultiple,
    // weft is at least `factor` times better than `peer`: faster, or for a
    // higher-is-better figure, higher.
    kFasterThanPeer,
    // weft's figure is at most `factor`, in the workload's unit.
    kAtMost,
    // weft's figure is at least `factor`, in the workload's unit.
    kAtLeast,
  };
  Kind kind;
  double factor;
  Contender peer = Contender::kWeft;
};

struct Workload {
  std::string id;         // "W1-2fibers"
  std::string operation;  // "yield": a time per operation, printed as ns/yield
  std::vector<Target> targets;
  // The workload whose time per operation is the floor the others are held to.
  bool is_floor = false;
  // A figure that is not a time per operation: its unit ("ms", "us", "req/s",
  // "bytes/fiber", ...), given with ReportValue(). Empty: ns per `operation`.
  std::string unit = {};
  // For throughputs: a higher figure is better.
  bool higher_is_better = false;

  // The unit of the figure as printed: `unit`, or ns/<operation>.
  std::string PrintedUnit() const { return unit.empty() ? "ns/" + operation : unit; }
  bool IsTimePerOperation() const { return unit.empty(); }
};

// Sizes of the workloads: the full run, or a quick one (--quick) that keeps every
// workload but shrinks its batches and repetitions.
struct Scale {
  bool quick = false;
  // --smoke (implies quick): tiny sizes that only check that every workload
  // completes and computes the right answer (CI runs it; no timing is judged),
  // except that W3 builds the full 1,000,000-leaf tree on weft to check its sum.
  bool smoke = false;
};

using MeasureFn = std::function<void(::benchmark::State&)>;

struct Measurement {
  const Workload* workload;
  Contender contender;
  // Fixed iteration count; 0 lets Google Benchmark choose within `min_time`.
  std::int64_t iterations;
  double min_time;
  MeasureFn fn;
  // Workloads whose figures this measurement reports too (ReportValue with a
  // workload), e.g. W6's p99 from the run that measures its p50.
  std::vector<const Workload*> also_reports = {};
  // The measurement runs its workload in a fresh child process
  // (AddChildMeasurement), not in this one.
  bool in_child_process = false;

  // "<workload>/<runtime>", e.g. "W1-2fibers/weft".
  std::string Name() const;
};

// Adds the measurement of `workload` (which must outlive the run) on `contender`.
// `fn` runs the workload in its timing loop and calls ReportOperations() (for a
// time per operation) or ReportValue().
void AddMeasurement(const Workload& workload, Contender contender,
                    std::int64_t iterations, MeasureFn fn, double min_time = 0,
                    std::vector<const Workload*> also_reports = {});

const std::vector<Measurement>& Measurements();

// The Go peer (benchmark/peers/go) measures `workload` too: its program is run
// once after everything else with `-workloads` listing every `selector` and with
// every `go_flags` (the same sizes as weft's), and its output line whose id is
// `line_id` is this workload's figure for Contender::kGo.
struct GoMeasurement {
  const Workload* workload;
  std::string selector;  // "W6"
  std::string line_id;   // "W6-p99"
  std::string go_flags;  // "-w6_samples=10000"
};
void AddGoMeasurement(const Workload& workload, std::string selector, std::string line_id,
                      std::string go_flags);
const std::vector<GoMeasurement>& GoMeasurements();

// Reports the time per operation as the counter kPerOperationCounter, given the
// operations completed over all iterations of `state`. The counter is in seconds
// (Google Benchmark prints it with an SI prefix).
void ReportOperations(::benchmark::State& state, double operations);
inline constexpr char kPerOperationCounter[] = "per_op";

// Reports the figure of a workload that is not a time per operation, in its
// unit; `also` names one of the measurement's also_reports workloads.
void ReportValue(::benchmark::State& state, double value);
void ReportValue(::benchmark::State& state, const Workload& also, double value);
inline constexpr char kValueCounter[] = "value";

// Ends the measurement without a figure because something it needs is not
// there (a program not built or not installed), which is not an error of the
// workload: the table says "not measured: <reason>" and --smoke still passes.
// `reason` is short: "weft_echo_server not built", "wrk not installed".
void ReportNotMeasured(::benchmark::State& state, const std::string& reason);
// How ReportNotMeasured's reason starts, as Google Benchmark passes it on.
inline constexpr char kNotMeasuredPrefix[] = "not measured: ";

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
void AddSkynetMeasurements(const Scale& scale);         // W3
void AddPingPongMeasurements(const Scale& scale);       // W4, W5
void AddLatencyMeasurements(const Scale& scale);        // W6
void AddResourceMeasurements(const Scale& scale);       // W7, W8
void AddFanOutMeasurements(const Scale& scale);         // W9
void AddContentionMeasurements(const Scale& scale);     // C1-C5
void AddNetMeasurements(const Scale& scale);            // W10, W11, W12
void AddRedisMeasurements(const Scale& scale);          // W13

// Measurements that must run alone in a fresh process of this program (an idle
// runtime's CPU use, resident memory, the first run of a workload in a process:
// the "cold" rows) register their body with AddChildBody and call
// RunInChildProcess(name) from their measurement: it runs
// `<this program> --child=<name> [--quick | --smoke]`, whose main runs only that
// body and prints the figures it returns, one per line, and hands them back.
void AddChildBody(std::string name, std::function<double()> body);
void AddChildBody(std::string name, std::function<std::vector<double>()> body);
struct ChildResult {
  bool ok = false;
  double value = 0;                 // the first figure
  std::string error;                // what went wrong when !ok
  std::vector<double> values = {};  // every figure, in the order the body returned them
};
ChildResult RunInChildProcess(const std::string& name, const Scale& scale);
// The --weft_* runtime flags the children get too (showcase_main.cc sets them).
void SetChildProcessFlags(std::vector<std::string> flags);
// The body registered as `name`, or nullptr.
const std::function<std::vector<double>()>* FindChildBody(const std::string& name);

// Registers `body` as the child body "<workload>/<runtime>" and a measurement of
// `workload` on `contender` that runs it once in a fresh process: the body's
// first figure is `workload`'s, the next ones are those of `also_reports`, in
// order. A child that fails (exits with a non-zero status, prints too few
// figures) makes the measurement an error.
void AddChildMeasurement(const Workload& workload, Contender contender,
                         const Scale& scale, std::function<double()> body);
void AddChildMeasurement(const Workload& workload, Contender contender,
                         const Scale& scale, std::function<std::vector<double>()> body,
                         std::vector<const Workload*> also_reports);

// Ends a child process with a message on standard error and exit status 1,
// which RunInChildProcess reports. _Exit: threads and fibers may still run.
[[noreturn]] void ChildFails(const std::string& what);

// The peak resident memory of this process so far (getrusage's ru_maxrss, the
// kernel's VmHWM), in MiB: the peak RSS figure of the cold rows, read by the
// child at its end.
double PeakResidentMiB();

// The Go peer's program (--go_peer), "" when none was given. The network
// workloads run it as a server (weft_go_peer -serve=...) themselves.
void SetGoPeerProgram(std::string path);
const std::string& GoPeerProgram();

// Worker threads for the multi-threaded workloads: one per CPU, as weft's
// concurrency_hint = 0 would choose on an unrestricted process.
unsigned CpuCount();

}  // namespace weft::showcase

#endif  // WEFT_BENCHMARK_SHOWCASE_H_
