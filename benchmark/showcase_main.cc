// weft_showcase: the workload runner. Runs the workloads of BENCHMARKS.md (W0-W9)
// and the contention family (C1-C5, contention_bench.cc) on weft and its peers
// (Boost.Fiber and std::thread in this process, Go goroutines through
// benchmark/peers/go when --go_peer names its program), then prints one
// `workload runtime value unit` line per figure and a table that compares them
// and checks weft's targets. --results_csv / --results_json keep the figures for
// tools/plot_benchmarks.sh.
//
//   weft_showcase [--quick] [--go_peer=PATH] [--results_csv=F] [--results_json=F]
//                 [--benchmark_filter=W1] [--benchmark_repetitions=3] [--weft_...]
//
// With repetitions the comparison uses each measurement's median.
#include <gflags/gflags.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/showcase.h"

DEFINE_bool(quick, false,
            "Shrink every workload's sizes so that the whole run takes about a minute");
DEFINE_bool(smoke, false,
            "Tiny sizes: check that every workload completes with the right answer "
            "(exit status 1 if one fails); the timings mean nothing");
DEFINE_string(go_peer, "",
              "Path of the Go peer program (built by benchmark/peers/go/build.sh); "
              "empty: no Go column");
DEFINE_string(results_csv, "", "Also write every figure to this CSV file");
DEFINE_string(results_json, "",
              "Also write every figure, the targets and the machine to this JSON file");
DEFINE_string(child, "",
              "Internal: run only the named child-process measurement and print its "
              "figure");

namespace weft::showcase {

namespace {

struct Result {
  bool ok = false;
  double value = 0;  // in the workload's unit; ns for a time per operation
  std::string error;
};

// "W6-p50/weft" -> "weft"
std::string ContenderPart(const std::string& name) {
  const auto slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

// Hands every run to Google Benchmark's own display reporter, so that
// --benchmark_format keeps working, and keeps each measurement's figure (and the
// figures it reports for other workloads): the median when there are
// repetitions, otherwise the one run.
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
    if (is_median) has_median_.insert(name);
    if (run.error_occurred) {
      results_[name] = Result{false, 0, run.error_message};
      return;
    }
    bool reported = false;
    for (const auto& [key, counter] : run.counters) {
      if (key == kPerOperationCounter) {
        results_[name] = Result{true, counter.value * 1e9, ""};
        reported = true;
      } else if (key == kValueCounter) {
        results_[name] = Result{true, counter.value, ""};
        reported = true;
      } else {
        // A figure for one of the measurement's also_reports workloads.
        results_[key + "/" + ContenderPart(name)] = Result{true, counter.value, ""};
      }
    }
    if (!reported) results_[name] = Result{false, 0, "reported no figure"};
  }

  std::unique_ptr<::benchmark::BenchmarkReporter> display_;
  std::map<std::string, Result> results_;
  std::set<std::string> has_median_;
};

// Boost.Fiber's work_stealing threads stay alive, spinning, once started (see
// boost_work_stealing_pool.h), so the measurements that start them run last
// (--benchmark_enable_random_interleaving gives that up).
// Every measurement is timed on the wall clock: most of them do their work on
// threads other than the one that times them. Each prints a progress line on
// standard error as it starts.
void RegisterMeasurements() {
  std::vector<const Measurement*> ordered;
  for (const Measurement& m : Measurements()) ordered.push_back(&m);
  std::stable_partition(ordered.begin(), ordered.end(), [](const Measurement* m) {
    return m->contender != Contender::kBoostFiberWorkStealing;
  });
  const std::size_t total = ordered.size();
  for (std::size_t i = 0; i < total; ++i) {
    const Measurement* m = ordered[i];
    auto run = [m, i, total](::benchmark::State& state) {
      std::fprintf(stderr, "showcase: [%zu/%zu] %s\n", i + 1, total, m->Name().c_str());
      m->fn(state);
    };
    ::benchmark::internal::Benchmark* benchmark =
        ::benchmark::RegisterBenchmark(m->Name().c_str(), run);
    benchmark->UseRealTime();
    if (m->iterations > 0) {
      benchmark->Iterations(m->iterations)->Unit(::benchmark::kMillisecond);
    } else {
      benchmark->MinTime(m->min_time);
    }
  }
}

// Runs the Go peer once for the Go measurements of the workloads that ran here
// (--benchmark_filter applies to Go too) and adds its figures to `results` under
// "<workload>/go".
void RunGoPeer(const std::string& program, std::map<std::string, Result>* results) {
  std::vector<GoMeasurement> wanted;
  for (const GoMeasurement& m : GoMeasurements()) {
    const std::string prefix = m.workload->id + "/";
    const auto next = results->lower_bound(prefix);
    if (next != results->end() && next->first.compare(0, prefix.size(), prefix) == 0) {
      wanted.push_back(m);
    }
  }
  if (wanted.empty()) return;
  std::vector<std::string> selectors;
  std::vector<std::string> flags;
  for (const GoMeasurement& m : wanted) {
    if (std::find(selectors.begin(), selectors.end(), m.selector) == selectors.end())
      selectors.push_back(m.selector);
    if (!m.go_flags.empty() &&
        std::find(flags.begin(), flags.end(), m.go_flags) == flags.end())
      flags.push_back(m.go_flags);
  }
  std::string command = "'" + program + "' -workloads=";
  for (std::size_t i = 0; i < selectors.size(); ++i) {
    command += (i > 0 ? "," : "") + selectors[i];
  }
  for (const std::string& flag : flags) command += " " + flag;
  // One run per workload, like the measurements here (and W6's 10k samples are
  // their own statistics).
  command += " -repetitions=1";
  std::fprintf(stderr, "showcase: [go] %s\n", command.c_str());
  std::FILE* peer = popen(command.c_str(), "r");
  std::map<std::string, std::pair<double, std::string>> lines;  // id -> value, unit
  if (peer != nullptr) {
    char buffer[512];
    while (std::fgets(buffer, sizeof(buffer), peer) != nullptr) {
      if (buffer[0] == '#') continue;
      std::istringstream line(buffer);
      std::string id, runtime, unit;
      double value = 0;
      if (line >> id >> runtime >> value >> unit && runtime == "go") {
        lines[id] = {value, unit};
      }
    }
  }
  const int status = peer == nullptr ? -1 : pclose(peer);
  for (const GoMeasurement& m : wanted) {
    Result& result = (*results)[m.workload->id + "/" + ContenderName(Contender::kGo)];
    const auto found = lines.find(m.line_id);
    if (found == lines.end()) {
      result = Result{false, 0,
                      "the Go peer printed no " + m.line_id + " line (exit status " +
                          std::to_string(status) + ")"};
    } else if (found->second.second != m.workload->PrintedUnit()) {
      result = Result{false, 0,
                      "the Go peer's " + m.line_id + " is in " + found->second.second +
                          ", not " + m.workload->PrintedUnit()};
    } else {
      result = Result{true, found->second.first, ""};
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

std::string FormatFigure(const Workload& workload, double value) {
  if (workload.IsTimePerOperation()) return FormatDuration(value);
  return FormatNumber(value) + " " + workload.unit;
}

std::string FormatRatio(double ratio) { return FormatNumber(ratio) + "×"; }

const char* ColumnLabel(Contender contender) {
  switch (contender) {
    case Contender::kWeft:
      return "weft";
    case Contender::kBoostFiber:
      return "Boost.Fiber 1t";
    case Contender::kBoostFiberWorkStealing:
      return "Boost.Fiber ws";
    case Contender::kThreads:
      return "std::thread";
    case Contender::kGo:
      return "Go";
    case Contender::kFcontext:
      return "W0 floor";
  }
  return "?";
}

const char* ShortLabel(Contender contender) {
  switch (contender) {
    case Contender::kBoostFiber:
      return "1t";
    case Contender::kBoostFiberWorkStealing:
      return "ws";
    case Contender::kThreads:
      return "thr";
    case Contender::kGo:
      return "go";
    default:
      return "?";
  }
}

constexpr Contender kPeers[] = {Contender::kBoostFiber,
                                Contender::kBoostFiberWorkStealing, Contender::kThreads,
                                Contender::kGo};

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

std::string JsonString(const std::string& text) {
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') quoted += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    quoted += c;
  }
  return quoted + "\"";
}

std::string FirstLineOf(const char* path, const char* prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      const auto colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown";
}

// The machine the figures came from, for the JSON file and docs/benchmarks.md.
std::vector<std::pair<std::string, std::string>> DescribeMachine() {
  utsname names{};
  uname(&names);
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  return {{"cpu", FirstLineOf("/proc/cpuinfo", "model name")},
          {"cpus", std::to_string(CpuCount())},
          {"kernel", std::string(names.sysname) + " " + names.release},
          {"compiler", "g++ " __VERSION__},
          {"date", date}};
}

class Comparison {
 public:
  explicit Comparison(const std::map<std::string, Result>& results) {
    auto take = [&](const Workload* workload, Contender contender) {
      const auto found = results.find(workload->id + "/" + ContenderName(contender));
      if (found == results.end()) return;
      if (std::find(workloads_.begin(), workloads_.end(), workload) == workloads_.end()) {
        workloads_.push_back(workload);
      }
      if (results_.count({workload, contender}) == 0)
        order_.push_back({workload, contender});
      results_[{workload, contender}] = found->second;
      if (workload->is_floor && found->second.ok) floor_ = found->second.value;
    };
    for (const Measurement& m : Measurements()) {
      take(m.workload, m.contender);
      for (const Workload* also : m.also_reports) take(also, m.contender);
    }
    for (const GoMeasurement& m : GoMeasurements()) take(m.workload, Contender::kGo);
  }

  bool empty() const { return results_.empty(); }
  bool HasErrors() const {
    return std::any_of(results_.begin(), results_.end(),
                       [](const auto& entry) { return !entry.second.ok; });
  }

  // One `workload runtime value unit` line per figure.
  void PrintLines(std::FILE* out) const {
    for (const auto& [workload, contender] : order_) {
      const Result& result = results_.at({workload, contender});
      if (result.ok) {
        std::fprintf(out, "%s %s %s %s\n", workload->id.c_str(), ContenderName(contender),
                     FormatNumber(result.value).c_str(), workload->PrintedUnit().c_str());
      } else {
        std::fprintf(out, "%s %s error: %s\n", workload->id.c_str(),
                     ContenderName(contender), result.error.c_str());
      }
    }
  }

  void PrintTable(std::FILE* out) const {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> header = {"workload", ColumnLabel(Contender::kWeft)};
    for (Contender peer : kPeers) header.push_back(ColumnLabel(peer));
    for (const char* label : {"W0 floor", "weft advantage", "target", "verdict"}) {
      header.push_back(label);
    }
    rows.push_back(header);
    for (const Workload* workload : workloads_) {
      std::string ratios;
      for (Contender peer : kPeers) {
        const std::optional<double> advantage = Advantage(workload, peer);
        if (!advantage) continue;
        if (!ratios.empty()) ratios += ", ";
        ratios += std::string(ShortLabel(peer)) + " " + FormatRatio(*advantage);
      }
      std::vector<std::string> row = {workload->id, Cell(workload, Contender::kWeft)};
      for (Contender peer : kPeers) row.push_back(Cell(workload, peer));
      row.push_back(floor_ && workload->IsTimePerOperation() ? FormatDuration(*floor_)
                                                             : "-");
      row.push_back(ratios.empty() ? "-" : ratios);
      row.push_back("-");
      row.push_back("-");
      // A workload with several targets takes one line per target.
      for (std::size_t i = 0; i < workload->targets.size(); ++i) {
        if (i > 0) row = std::vector<std::string>(row.size(), "");
        row[row.size() - 2] = Describe(*workload, workload->targets[i]);
        row[row.size() - 1] = Verdict(workload, workload->targets[i]);
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
        "\n1t = Boost.Fiber round_robin on one thread, ws = Boost.Fiber work_stealing on "
        "%u threads, thr = std::thread, go = goroutines (GOMAXPROCS = CPUs).\n"
        "weft advantage = how many times better weft's figure is than the peer's "
        "(above 1: weft is ahead).\n",
        CpuCount());
  }

  bool WriteCsv(const std::string& path) const {
    std::ofstream out(path);
    out << "workload,runtime,value,unit,higher_is_better\n";
    for (const auto& [workload, contender] : order_) {
      const Result& result = results_.at({workload, contender});
      if (!result.ok) continue;
      out << workload->id << ',' << ContenderName(contender) << ',' << result.value << ','
          << workload->PrintedUnit() << ',' << (workload->higher_is_better ? 1 : 0)
          << '\n';
    }
    return static_cast<bool>(out);
  }

  bool WriteJson(const std::string& path, const Scale& scale) const {
    std::ofstream out(path);
    out << "{\n  \"mode\": " << JsonString(scale.quick ? "quick" : "full")
        << ",\n  \"machine\": {";
    bool first = true;
    for (const auto& [key, value] : DescribeMachine()) {
      out << (first ? "" : ",") << "\n    " << JsonString(key) << ": "
          << JsonString(value);
      first = false;
    }
    out << "\n  },\n  \"results\": [";
    first = true;
    for (const auto& [workload, contender] : order_) {
      const Result& result = results_.at({workload, contender});
      out << (first ? "" : ",") << "\n    {\"workload\": " << JsonString(workload->id)
          << ", \"runtime\": " << JsonString(ContenderName(contender));
      if (result.ok) {
        out << ", \"value\": " << result.value
            << ", \"unit\": " << JsonString(workload->PrintedUnit());
      } else {
        out << ", \"error\": " << JsonString(result.error);
      }
      out << "}";
      first = false;
    }
    out << "\n  ],\n  \"targets\": [";
    first = true;
    for (const Workload* workload : workloads_) {
      for (const Target& target : workload->targets) {
        out << (first ? "" : ",") << "\n    {\"workload\": " << JsonString(workload->id)
            << ", \"target\": " << JsonString(Describe(*workload, target))
            << ", \"verdict\": " << JsonString(Verdict(workload, target)) << "}";
        first = false;
      }
    }
    out << "\n  ]\n}\n";
    return static_cast<bool>(out);
  }

 private:
  std::optional<double> Value(const Workload* workload, Contender contender) const {
    const auto found = results_.find({workload, contender});
    if (found == results_.end() || !found->second.ok) return std::nullopt;
    return found->second.value;
  }

  // How many times better weft's figure is than `peer`'s.
  std::optional<double> Advantage(const Workload* workload, Contender peer) const {
    const std::optional<double> weft = Value(workload, Contender::kWeft);
    const std::optional<double> theirs = Value(workload, peer);
    if (!weft || !theirs || *weft <= 0 || *theirs <= 0) return std::nullopt;
    return workload->higher_is_better ? *weft / *theirs : *theirs / *weft;
  }

  std::string Cell(const Workload* workload, Contender contender) const {
    // W0 is nobody's runtime: its figure lives in the floor column.
    if (workload->is_floor) return "-";
    const auto found = results_.find({workload, contender});
    if (found == results_.end()) return "-";
    if (!found->second.ok) return "error";
    return FormatFigure(*workload, found->second.value);
  }

  static std::string Describe(const Workload& workload, const Target& target) {
    const std::string factor = Format("%g", target.factor) + "×";
    switch (target.kind) {
      case Target::Kind::kWithinFloorMultiple:
        return "≤ " + factor + " W0";
      case Target::Kind::kAtMost:
        return "≤ " + FormatFigure(workload, target.factor);
      case Target::Kind::kAtLeast:
        return "≥ " + FormatFigure(workload, target.factor);
      case Target::Kind::kFasterThanPeer:
        break;
    }
    const std::string peer = ShortLabel(target.peer);
    const char* better = workload.higher_is_better ? "higher" : "faster";
    if (target.factor == 1) {
      return std::string(workload.higher_is_better ? "no lower than "
                                                   : "no slower than ") +
             peer;
    }
    if (target.factor < 1)
      return "within " + Format("%g", 1 / target.factor) + "× of " + peer;
    return "≥ " + factor + " " + better + " than " + peer;
  }

  std::string Verdict(const Workload* workload, const Target& target) const {
    const std::optional<double> weft = Value(workload, Contender::kWeft);
    // How far weft is from the target, as a factor: at most 1 means met.
    double shortfall = 0;
    switch (target.kind) {
      case Target::Kind::kWithinFloorMultiple:
        if (!weft || !floor_) return "not measured";
        shortfall = *weft / *floor_ / target.factor;
        break;
      case Target::Kind::kAtMost:
        if (!weft) return "not measured";
        shortfall = *weft / target.factor;
        break;
      case Target::Kind::kAtLeast:
        if (!weft) return "not measured";
        if (*weft <= 0) return "missed";
        shortfall = target.factor / *weft;
        break;
      case Target::Kind::kFasterThanPeer: {
        const std::optional<double> advantage = Advantage(workload, target.peer);
        if (!advantage) return "not measured";
        shortfall = target.factor / *advantage;
        break;
      }
    }
    return shortfall <= 1 ? "met" : "missed by " + FormatRatio(shortfall);
  }

  std::vector<const Workload*> workloads_;
  std::vector<std::pair<const Workload*, Contender>> order_;
  std::map<std::pair<const Workload*, Contender>, Result> results_;
  std::optional<double> floor_;
};

void PrintHelp() {
  ::benchmark::PrintDefaultHelp();
  std::fprintf(stdout,
               "  [--quick]\n"
               "          shrink every workload so that the run takes about a minute\n"
               "  [--go_peer=PATH]\n"
               "          also run the Go peer (benchmark/peers/go/build.sh builds it)\n"
               "  [--results_csv=FILE] [--results_json=FILE]\n"
               "          also write the figures (for tools/plot_benchmarks.sh)\n"
               "  [--weft_...=...]\n"
               "          weft's runtime flags (see runtime/runtime.h); the workloads\n"
               "          set only the number of workers\n");
}

int RunChild(const std::string& name) {
  const std::function<double()>* body = FindChildBody(name);
  if (body == nullptr) {
    std::fprintf(stderr, "weft_showcase: --child=%s names no child measurement\n",
                 name.c_str());
    return 2;
  }
  std::printf("%.17g\n", (*body)());
  return 0;
}

}  // namespace

}  // namespace weft::showcase

int main(int argc, char** argv) {
  using namespace weft::showcase;
  // Child processes run with the same runtime flags.
  std::vector<std::string> runtime_flags;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]).rfind("--weft_", 0) == 0) runtime_flags.push_back(argv[i]);
  }
  SetChildProcessFlags(std::move(runtime_flags));
  ::benchmark::Initialize(&argc, argv, PrintHelp);
  // Google Benchmark has taken its own flags out; what is left is ours and the
  // weft_* flags of the runtime.
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  Scale scale;
  scale.quick = FLAGS_quick || FLAGS_smoke;
  scale.smoke = FLAGS_smoke;
  AddContextSwitchMeasurements(scale);
  AddYieldMeasurements(scale);
  AddSpawnMeasurements(scale);
  AddSkynetMeasurements(scale);
  AddPingPongMeasurements(scale);
  AddLatencyMeasurements(scale);
  AddResourceMeasurements(scale);
  AddFanOutMeasurements(scale);
  AddContentionMeasurements(scale);
  if (!FLAGS_child.empty()) return RunChild(FLAGS_child);
  RegisterMeasurements();

  CollectingReporter reporter{std::unique_ptr<::benchmark::BenchmarkReporter>(
      ::benchmark::CreateDefaultDisplayReporter())};
  ::benchmark::RunSpecifiedBenchmarks(&reporter);
  std::fflush(stdout);
  BoostWorkStealingPool::ShutDown();

  std::map<std::string, Result> results = reporter.results();
  if (!FLAGS_go_peer.empty()) RunGoPeer(FLAGS_go_peer, &results);

  // Machine-readable output (--benchmark_format=json or csv) keeps stdout to itself.
  std::FILE* out = reporter.is_console() ? stdout : stderr;
  const Comparison comparison(results);
  if (!comparison.empty()) {
    std::fprintf(out, "\n");
    comparison.PrintLines(out);
    std::fprintf(out, "\n");
    comparison.PrintTable(out);
  }
  int status = 0;
  if (FLAGS_smoke && comparison.HasErrors()) {
    std::fprintf(stderr,
                 "weft_showcase: a workload failed (see the error lines above)\n");
    status = 1;
  }
  if (!FLAGS_results_csv.empty() && !comparison.WriteCsv(FLAGS_results_csv)) {
    std::fprintf(stderr, "weft_showcase: cannot write %s\n", FLAGS_results_csv.c_str());
    status = 1;
  }
  if (!FLAGS_results_json.empty() && !comparison.WriteJson(FLAGS_results_json, scale)) {
    std::fprintf(stderr, "weft_showcase: cannot write %s\n", FLAGS_results_json.c_str());
    status = 1;
  }
  ::benchmark::Shutdown();
  return status;
}
