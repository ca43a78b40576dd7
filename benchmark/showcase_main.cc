// weft_showcase: the workload runner. Runs the workloads of docs/benchmarks.md
// (W0-W13) and the contention family (C1-C5, contention_bench.cc) on weft and its
// peers (Boost.Fiber and std::thread in this process, Go goroutines through
// benchmark/peers/go when --go_peer names its program; for the network servers
// W10-W12, server processes: weft's examples, Go, nginx, Asio, an epoll loop,
// net_bench.cc; for W13, hooked hiredis against redis-benchmark, each driving a
// redis-server of its own, redis_bench.cc), then prints one
// `workload runtime value unit` line per figure and a table that compares them
// and checks weft's targets (showcase_report.h). --results_csv / --results_json
// keep the figures for tools/plot_benchmarks.sh.
//
//   weft_showcase [--quick | --smoke] [--go_peer=PATH] [--results_csv=F]
//                 [--results_json=F] [--benchmark_filter=W1]
//                 [--benchmark_repetitions=3] [--weft_...]
//
// With repetitions the comparison uses each measurement's median. This file runs
// the measurements (each workload family adds its own, showcase.h), the child
// processes some of them need and the Go peer, and collects their figures.
#include <gflags/gflags.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/bench_main.h"
#include "benchmark/boost_work_stealing_pool.h"
#include "benchmark/showcase.h"
#include "benchmark/showcase_report.h"

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
      Result failed{false, 0, run.error_message};
      const std::string prefix = kNotMeasuredPrefix;
      if (failed.error.compare(0, prefix.size(), prefix) == 0) {
        failed.error.erase(0, prefix.size());
        failed.not_measured = true;
      }
      results_[name] = failed;
      // The figures it would have reported for other workloads are missing
      // for the same reason.
      for (const Measurement& m : Measurements()) {
        if (m.Name() != name) continue;
        for (const Workload* also : m.also_reports) {
          results_[also->id + "/" + ContenderPart(name)] = failed;
        }
      }
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
// boost_work_stealing_pool.h), so the measurements that start them in this
// process run last (--benchmark_enable_random_interleaving gives that up), and
// those that start them in a child process of their own run just before, while
// no pool spins here.
// Every measurement is timed on the wall clock: most of them do their work on
// threads other than the one that times them. Each prints a progress line on
// standard error as it starts.
void RegisterMeasurements() {
  std::vector<const Measurement*> ordered;
  for (const Measurement& m : Measurements()) ordered.push_back(&m);
  const auto starts_pool_here = [](const Measurement* m) {
    return m->contender == Contender::kBoostFiberWorkStealing && !m->in_child_process;
  };
  std::stable_partition(ordered.begin(), ordered.end(), [](const Measurement* m) {
    return m->contender != Contender::kBoostFiberWorkStealing;
  });
  std::stable_partition(ordered.begin(), ordered.end(),
                        [&](const Measurement* m) { return !starts_pool_here(m); });
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

int RunChild(const std::string& name) {
  const std::function<std::vector<double>()>* body = FindChildBody(name);
  if (body == nullptr) {
    std::fprintf(stderr, "weft_showcase: --child=%s names no child measurement\n",
                 name.c_str());
    return 2;
  }
  for (double figure : (*body)()) std::printf("%.17g\n", figure);
  return 0;
}

int Run(const bench::Mode& mode) {
  // Child processes run with the same runtime flags.
  SetChildProcessFlags(mode.runtime_flag_arguments);
  Scale scale;
  scale.quick = mode.quick;
  scale.smoke = mode.smoke;
  AddContextSwitchMeasurements(scale);
  AddYieldMeasurements(scale);
  AddSpawnMeasurements(scale);
  AddSkynetMeasurements(scale);
  AddPingPongMeasurements(scale);
  AddLatencyMeasurements(scale);
  AddResourceMeasurements(scale);
  AddFanOutMeasurements(scale);
  AddContentionMeasurements(scale);
  SetGoPeerProgram(FLAGS_go_peer);
  AddNetMeasurements(scale);
  AddRedisMeasurements(scale);
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
  if (mode.smoke && comparison.HasErrors()) {
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
  return status;
}

}  // namespace

}  // namespace weft::showcase

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_showcase: every workload of docs/benchmarks.md (W0-W13) and the contention\n"
      "family (C1-C5) on weft, Boost.Fiber, std::thread and Go, side by side; the\n"
      "network servers (W10-W12) also on nginx, Asio and an epoll loop; hooked hiredis\n"
      "(W13) against redis-benchmark.\n";
  program.quick = "shrink every workload so that the run takes about a minute";
  program.smoke =
      "tiny sizes: check that every workload completes with the right answer\n"
      "          (exit status 1 if one fails); the timings mean nothing";
  program.own_flags =
      "  [--go_peer=PATH]\n"
      "          also run the Go peer (benchmark/peers/go/build.sh builds it); W10-W12\n"
      "          run it as a server\n"
      "  [--results_csv=FILE] [--results_json=FILE]\n"
      "          also write the figures (for tools/plot_benchmarks.sh)\n";
  program.runtime_flags = "; the workloads set only\n          the number of workers";
  return weft::bench::Main(program, argc, argv, weft::showcase::Run);
}
