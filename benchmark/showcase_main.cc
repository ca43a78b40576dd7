// weft_showcase: runs the workloads of BENCHMARKS.md on weft and its peers, then
// prints one `workload runtime value unit` line per measurement and a table that
// compares them and checks weft's targets.
//
//   weft_showcase [--quick] [--benchmark_filter=W1] [--benchmark_repetitions=3]
//                 [--weft_...]
//
// With repetitions the comparison uses each measurement's median.
#include <gflags/gflags.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/showcase.h"

DEFINE_bool(
    quick, false,
    "Shrink every workload's batches so that the whole run takes well under 20 s");

namespace weft::showcase {

namespace {

struct Result {
  bool ok = false;
  double ns_per_operation = 0;
  std::string error;
};

// Hands every run to Google Benchmark's own display reporter, so that
// --benchmark_format keeps working, and keeps each measurement's time per
// operation: the median when there are repetitions, otherwise the one run.
class CollectingReporter : public ::benchmark::BenchmarkReporter {
 public:
  explicit CollectingReporter(std::unique_ptr<::benchmark::BenchmarkReporter> display)
      : display_(std::move(display)) {}

  bool ReportContext(const Context& context) override {
    return display_->ReportContext(context);
  }

  void ReportRuns(const std::vector<Run>& runs) override {
    display_->ReportRuns(runs);
    for (const Run& run : runs) Collect(run);
  }

  void Finalize() override { display_->Finalize(); }

  bool is_console() const {
    return dynamic_cast<const ::benchmark::ConsoleReporter*>(display_.get()) != nullptr;
  }

  // By measurement name; absent for measurements that did not run.
  const std::map<std::string, Result>& results() const { return results_; }

 private:
  void Collect(const Run& run) {
    const std::string& name = run.run_name.function_name;
    const bool is_median =
        run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
    if (run.run_type == Run::RT_Aggregate && !is_median) return;
    // Repetitions are reported before their aggregates: a median replaces them.
    if (!is_median && has_median_.count(name) != 0) return;
    Result& result = results_[name];
    if (run.error_occurred) {
      result = Result{false, 0, run.error_message};
      return;
    }
    const auto counter = run.counters.find(kPerOperationCounter);
    if (counter == run.counters.end()) {
      result = Result{false, 0, "reported no time per operation"};
      return;
    }
    result = Result{true, counter->second.value * 1e9, ""};
    if (is_median) has_median_.insert(name);
  }

  std::unique_ptr<::benchmark::BenchmarkReporter> display_;
  std::map<std::string, Result> results_;
  std::set<std::string> has_median_;
};

// Boost.Fiber's work_stealing threads stay alive, spinning, once started (see
// boost_work_stealing_pool.h), so the measurements that start them run last
// (--benchmark_enable_random_interleaving gives that up).
// Every measurement is timed on the wall clock: most of them do their work on
// threads other than the one that times them.
void RegisterMeasurements() {
  std::vector<const Measurement*> ordered;
  for (const Measurement& m : Measurements()) ordered.push_back(&m);
  std::stable_partition(ordered.begin(), ordered.end(), [](const Measurement* m) {
    return m->contender != Contender::kBoostFiberWorkStealing;
  });
  for (const Measurement* m : ordered) {
    ::benchmark::internal::Benchmark* benchmark =
        ::benchmark::RegisterBenchmark(m->Name().c_str(), m->fn);
    benchmark->UseRealTime();
    if (m->iterations > 0) {
      benchmark->Iterations(m->iterations)->Unit(::benchmark::kMillisecond);
    } else {
      benchmark->MinTime(m->min_time);
    }
  }
}

std::string Format(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), format, value);
  return buffer;
}

// Three significant digits, enough for a noisy machine.
std::string FormatNumber(double value) {
  if (value < 10) return Format("%.2f", value);
  if (value < 100) return Format("%.1f", value);
  return Format("%.0f", value);
}

std::string FormatDuration(double ns) {
  if (ns >= 1e6) return FormatNumber(ns / 1e6) + " ms";
  if (ns >= 1e3) return FormatNumber(ns / 1e3) + " µs";
  return FormatNumber(ns) + " ns";
}

std::string FormatRatio(double ratio) { return FormatNumber(ratio) + "×"; }

const char* ColumnLabel(Contender contender) {
  switch (contender) {
    case Contender::kWeft:
      return "weft";
    case Contender::kBoostFiber:
      return "Boost.Fiber (1 thread)";
    case Contender::kBoostFiberWorkStealing:
      return "Boost.Fiber (work_stealing)";
    case Contender::kFcontext:
      return "W0 floor";
  }
  return "?";
}

// Columns are padded by what the terminal shows, not by bytes: µ, × and ≤ take
// one column but several bytes of UTF-8.
std::size_t DisplayWidth(const std::string& text) {
  std::size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;
  return width;
}

void PrintTableRow(std::FILE* out, const std::vector<std::string>& cells,
                   const std::vector<std::size_t>& widths) {
  std::string line;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    line += cells[i];
    if (i + 1 < cells.size()) line.append(widths[i] + 2 - DisplayWidth(cells[i]), ' ');
  }
  std::fprintf(out, "%s\n", line.c_str());
}

class Comparison {
 public:
  explicit Comparison(const std::map<std::string, Result>& results) {
    for (const Measurement& m : Measurements()) {
      const auto found = results.find(m.Name());
      if (found == results.end()) continue;
      if (std::find(workloads_.begin(), workloads_.end(), m.workload) ==
          workloads_.end()) {
        workloads_.push_back(m.workload);
      }
      results_[{m.workload, m.contender}] = found->second;
      if (m.workload->is_floor && found->second.ok)
        floor_ = found->second.ns_per_operation;
    }
  }

  bool empty() const { return results_.empty(); }

  // One `workload runtime value unit` line per measurement that ran.
  void PrintLines(std::FILE* out) const {
    for (const Measurement& m : Measurements()) {
      const auto found = results_.find({m.workload, m.contender});
      if (found == results_.end()) continue;
      const Result& result = found->second;
      if (result.ok) {
        std::fprintf(
            out, "%s %s %s ns/%s\n", m.workload->id.c_str(), ContenderName(m.contender),
            FormatNumber(result.ns_per_operation).c_str(), m.workload->operation.c_str());
      } else {
        std::fprintf(out, "%s %s error: %s\n", m.workload->id.c_str(),
                     ContenderName(m.contender), result.error.c_str());
      }
    }
  }

  void PrintTable(std::FILE* out) const {
    const Contender kPeers[] = {Contender::kBoostFiber,
                                Contender::kBoostFiberWorkStealing};
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"workload", ColumnLabel(Contender::kWeft),
                    ColumnLabel(Contender::kBoostFiber),
                    ColumnLabel(Contender::kBoostFiberWorkStealing),
                    ColumnLabel(Contender::kFcontext), "peer/weft", "target", "verdict"});
    for (const Workload* workload : workloads_) {
      const std::optional<double> weft = Value(workload, Contender::kWeft);
      std::string ratios;
      for (Contender peer : kPeers) {
        const std::optional<double> theirs = Value(workload, peer);
        if (!weft || !theirs) continue;
        if (!ratios.empty()) ratios += ", ";
        ratios += std::string(peer == Contender::kBoostFiber ? "1t " : "ws ") +
                  FormatRatio(*theirs / *weft);
      }
      std::vector<std::string> row = {workload->id,
                                      Cell(workload, Contender::kWeft),
                                      Cell(workload, Contender::kBoostFiber),
                                      Cell(workload, Contender::kBoostFiberWorkStealing),
                                      floor_ ? FormatDuration(*floor_) : "-",
                                      ratios.empty() ? "-" : ratios,
                                      "-",
                                      "-"};
      // A workload with several targets takes one line per target.
      for (std::size_t i = 0; i < workload->targets.size(); ++i) {
        if (i > 0) row = std::vector<std::string>(row.size(), "");
        row[6] = Describe(workload->targets[i]);
        row[7] = Verdict(workload, workload->targets[i]);
        rows.push_back(row);
      }
      if (workload->targets.empty()) rows.push_back(row);
    }

    std::vector<std::size_t> widths(rows.front().size(), 0);
    for (const auto& row : rows) {
      for (std::size_t i = 0; i < row.size(); ++i) {
        widths[i] = std::max(widths[i], DisplayWidth(row[i]));
      }
    }
    PrintTableRow(out, rows.front(), widths);
    std::size_t total = 0;
    for (std::size_t width : widths) total += width + 2;
    std::fprintf(out, "%s\n", std::string(total - 2, '-').c_str());
    for (std::size_t i = 1; i < rows.size(); ++i) PrintTableRow(out, rows[i], widths);
    std::fprintf(
        out,
        "\ntimes per operation (round trip, yield, spawn+join, fiber); 1t = one thread "
        "(round_robin), ws = work_stealing on %u threads.\npeer/weft = how many times "
        "longer the peer takes than weft (above 1: weft is faster).\n",
        CpuCount());
  }

 private:
  std::optional<double> Value(const Workload* workload, Contender contender) const {
    const auto found = results_.find({workload, contender});
    if (found == results_.end() || !found->second.ok) return std::nullopt;
    return found->second.ns_per_operation;
  }

  std::string Cell(const Workload* workload, Contender contender) const {
    // W0 is nobody's runtime: its figure lives in the floor column.
    if (workload->is_floor) return "-";
    const auto found = results_.find({workload, contender});
    if (found == results_.end()) return "-";
    if (!found->second.ok) return "error";
    return FormatDuration(found->second.ns_per_operation);
  }

  static std::string Describe(const Target& target) {
    const std::string factor = Format("%g", target.factor) + "×";
    if (target.kind == Target::Kind::kWithinFloorMultiple) return "≤ " + factor + " W0";
    return "≥ " + factor + " faster than " +
           (target.peer == Contender::kBoostFiber ? "1t" : "ws");
  }

  std::string Verdict(const Workload* workload, const Target& target) const {
    const std::optional<double> weft = Value(workload, Contender::kWeft);
    // How far weft is from the target, as a factor: at most 1 means met.
    double shortfall = 0;
    if (target.kind == Target::Kind::kWithinFloorMultiple) {
      if (!weft || !floor_) return "not measured";
      shortfall = *weft / *floor_ / target.factor;
    } else {
      const std::optional<double> peer = Value(workload, target.peer);
      if (!weft || !peer) return "not measured";
      shortfall = target.factor / (*peer / *weft);
    }
    return shortfall <= 1 ? "met" : "missed by " + FormatRatio(shortfall);
  }

  std::vector<const Workload*> workloads_;
  std::map<std::pair<const Workload*, Contender>, Result> results_;
  std::optional<double> floor_;
};

void PrintHelp() {
  ::benchmark::PrintDefaultHelp();
  std::fprintf(stdout,
               "  [--quick]\n"
               "          shrink every workload so that the run takes well under 20 s\n"
               "  [--weft_...=...]\n"
               "          weft's runtime flags (see runtime/runtime.h); the workloads\n"
               "          set only the number of workers\n");
}

}  // namespace

}  // namespace weft::showcase

int main(int argc, char** argv) {
  using namespace weft::showcase;
  ::benchmark::Initialize(&argc, argv, PrintHelp);
  // Google Benchmark has taken its own flags out; what is left is --quick and the
  // weft_* flags of the runtime.
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  Scale scale;
  scale.quick = FLAGS_quick;
  AddContextSwitchMeasurements(scale);
  AddYieldMeasurements(scale);
  AddSpawnMeasurements(scale);
  RegisterMeasurements();

  CollectingReporter reporter{std::unique_ptr<::benchmark::BenchmarkReporter>(
      ::benchmark::CreateDefaultDisplayReporter())};
  ::benchmark::RunSpecifiedBenchmarks(&reporter);
  std::fflush(stdout);
  BoostWorkStealingPool::ShutDown();

  // Machine-readable output (--benchmark_format=json or csv) keeps stdout to itself.
  std::FILE* out = reporter.is_console() ? stdout : stderr;
  const Comparison comparison(reporter.results());
  if (!comparison.empty()) {
    std::fprintf(out, "\n");
    comparison.PrintLines(out);
    std::fprintf(out, "\n");
    comparison.PrintTable(out);
  }
  ::benchmark::Shutdown();
  return 0;
}
