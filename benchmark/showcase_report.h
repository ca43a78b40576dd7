// The showcase's report: from the figures of one run (its measurements' and the Go
// peer's), the `workload runtime value unit` lines, the table that sets weft
// beside each peer and gives the verdict on each of weft's targets, and the CSV
// and JSON files that tools/plot_benchmarks.sh and docs/benchmarks.md are made
// from.
#ifndef WEFT_BENCHMARK_SHOWCASE_REPORT_H_
#define WEFT_BENCHMARK_SHOWCASE_REPORT_H_

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "benchmark/showcase.h"

namespace weft::showcase {

// One figure of a run, or why there is none.
struct Result {
  bool ok = false;
  double value = 0;  // in the workload's unit; ns for a time per operation
  std::string error;
  // The measurement could not run (a program not built or not installed):
  // `error` says what was missing. Not an error of the workload.
  bool not_measured = false;
};

// The figures of one run by workload and runtime, in the order the measurements
// were added (Measurements(), then GoMeasurements()).
class Comparison {
 public:
  // `results` is keyed "<workload>/<runtime>" (Measurement::Name()); keys that no
  // measurement names are left out.
  explicit Comparison(const std::map<std::string, Result>& results);

  bool empty() const { return results_.empty(); }
  bool HasErrors() const;

  // One `workload runtime value unit` line per figure.
  void PrintLines(std::FILE* out) const;
  // The comparison table, one row per workload and target, and its legend.
  void PrintTable(std::FILE* out) const;
  // `workload,runtime,value,unit,higher_is_better` rows, for
  // tools/plot_benchmarks.sh. Returns false if the file cannot be written.
  bool WriteCsv(const std::string& path) const;
  // The mode, the machine, every figure or error and every target's verdict.
  // Returns false if the file cannot be written.
  bool WriteJson(const std::string& path, const Scale& scale) const;

 private:
  std::optional<double> Value(const Workload* workload, Contender contender) const;
  // How many times better weft's figure is than `peer`'s.
  std::optional<double> Advantage(const Workload* workload, Contender peer) const;
  std::string Cell(const Workload* workload, Contender contender) const;
  // Why `contender` has no figure for `workload`: "" if it has one or never
  // ran, "error", or the reason it was not measured.
  std::string Missing(const Workload* workload, Contender contender) const;
  // The peers' columns: the four that are always shown, then those of the
  // network workloads when any of them has a result.
  std::vector<Contender> PeerColumns() const;
  static std::string Describe(const Workload& workload, const Target& target);
  std::string Verdict(const Workload* workload, const Target& target) const;

  std::vector<const Workload*> workloads_;
  std::vector<std::pair<const Workload*, Contender>> order_;
  std::map<std::pair<const Workload*, Contender>, Result> results_;
  std::optional<double> floor_;
};

}  // namespace weft::showcase

#endif  // WEFT_BENCHMARK_SHOWCASE_REPORT_H_
