#include "benchmark/showcase_report.h"

#include <sys/utsname.h>

#include <algorithm>
#include <ctime>
#include <fstream>

namespace weft::showcase {

namespace {

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
    case Contender::kNginx:
      return "nginx";
    case Contender::kAsio:
      return "Asio";
    case Contender::kEpoll:
      return "epoll loop";
    case Contender::kRedisBenchmark:
      return "redis-benchmark";
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
    case Contender::kNginx:
      return "nginx";
    case Contender::kAsio:
      return "asio";
    case Contender::kEpoll:
      return "epoll";
    case Contender::kRedisBenchmark:
      return "redis-bench";
    default:
      return "?";
  }
}

// Always shown, as columns and in the advantage column.
constexpr Contender kPeers[] = {Contender::kBoostFiber,
                                Contender::kBoostFiberWorkStealing, Contender::kThreads,
                                Contender::kGo};
// Shown only when a network workload (W10-W13) measured them.
constexpr Contender kServerPeers[] = {Contender::kNginx, Contender::kAsio,
                                      Contender::kEpoll, Contender::kRedisBenchmark};

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

}  // namespace

Comparison::Comparison(const std::map<std::string, Result>& results) {
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

bool Comparison::HasErrors() const {
  return std::any_of(results_.begin(), results_.end(), [](const auto& entry) {
    return !entry.second.ok && !entry.second.not_measured;
  });
}

std::vector<Contender> Comparison::PeerColumns() const {
  std::vector<Contender> columns(std::begin(kPeers), std::end(kPeers));
  for (Contender peer : kServerPeers) {
    const bool present =
        std::any_of(results_.begin(), results_.end(),
                    [peer](const auto& e) { return e.first.second == peer; });
    if (present) columns.push_back(peer);
  }
  return columns;
}

void Comparison::PrintLines(std::FILE* out) const {
  for (const auto& [workload, contender] : order_) {
    const Result& result = results_.at({workload, contender});
    if (result.ok) {
      std::fprintf(out, "%s %s %s %s\n", workload->id.c_str(), ContenderName(contender),
                   FormatNumber(result.value).c_str(), workload->PrintedUnit().c_str());
    } else if (result.not_measured) {
      std::fprintf(out, "%s %s %s%s\n", workload->id.c_str(), ContenderName(contender),
                   kNotMeasuredPrefix, result.error.c_str());
    } else {
      std::fprintf(out, "%s %s error: %s\n", workload->id.c_str(),
                   ContenderName(contender), result.error.c_str());
    }
  }
}

void Comparison::PrintTable(std::FILE* out) const {
  const std::vector<Contender> peers = PeerColumns();
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"workload", ColumnLabel(Contender::kWeft)};
  for (Contender peer : peers) header.push_back(ColumnLabel(peer));
  for (const char* label : {"W0 floor", "weft advantage", "target", "verdict"}) {
    header.push_back(label);
  }
  rows.push_back(header);
  for (const Workload* workload : workloads_) {
    std::string ratios;
    for (Contender peer : peers) {
      const std::optional<double> advantage = Advantage(workload, peer);
      if (!advantage) continue;
      if (!ratios.empty()) ratios += ", ";
      ratios += std::string(ShortLabel(peer)) + " " + FormatRatio(*advantage);
    }
    std::vector<std::string> row = {workload->id, Cell(workload, Contender::kWeft)};
    for (Contender peer : peers) row.push_back(Cell(workload, peer));
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
  if (peers.size() > std::size(kPeers)) {
    std::fprintf(out,
                 "W10-W12 (servers, 2 workers or threads each): nginx = 2 worker "
                 "processes, asio = an io_context per thread, epoll = a hand-written "
                 "epoll loop per thread; go = GOMAXPROCS 2. W13: redis-bench = "
                 "redis-benchmark against a redis-server like weft's hiredis "
                 "fibers' (2 workers).\n");
  }
  const bool any_not_measured =
      std::any_of(results_.begin(), results_.end(),
                  [](const auto& e) { return e.second.not_measured; });
  if (any_not_measured) {
    std::fprintf(out, "n/m = not measured; the lines above the table say why.\n");
  }
}

bool Comparison::WriteCsv(const std::string& path) const {
  std::ofstream out(path);
  out << "workload,runtime,value,unit,higher_is_better\n";
  for (const auto& [workload, contender] : order_) {
    const Result& result = results_.at({workload, contender});
    if (!result.ok) continue;
    out << workload->id << ',' << ContenderName(contender) << ',' << result.value << ','
        << workload->PrintedUnit() << ',' << (workload->higher_is_better ? 1 : 0) << '\n';
  }
  return static_cast<bool>(out);
}

bool Comparison::WriteJson(const std::string& path, const Scale& scale) const {
  std::ofstream out(path);
  out << "{\n  \"mode\": " << JsonString(scale.quick ? "quick" : "full")
      << ",\n  \"machine\": {";
  bool first = true;
  for (const auto& [key, value] : DescribeMachine()) {
    out << (first ? "" : ",") << "\n    " << JsonString(key) << ": " << JsonString(value);
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
    } else if (result.not_measured) {
      out << ", \"not_measured\": " << JsonString(result.error);
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

std::optional<double> Comparison::Value(const Workload* workload,
                                        Contender contender) const {
  const auto found = results_.find({workload, contender});
  if (found == results_.end() || !found->second.ok) return std::nullopt;
  return found->second.value;
}

std::optional<double> Comparison::Advantage(const Workload* workload,
                                            Contender peer) const {
  const std::optional<double> weft = Value(workload, Contender::kWeft);
  const std::optional<double> theirs = Value(workload, peer);
  if (!weft || !theirs || *weft <= 0 || *theirs <= 0) return std::nullopt;
  return workload->higher_is_better ? *weft / *theirs : *theirs / *weft;
}

std::string Comparison::Cell(const Workload* workload, Contender contender) const {
  // W0 is nobody's runtime: its figure lives in the floor column.
  if (workload->is_floor) return "-";
  const auto found = results_.find({workload, contender});
  if (found == results_.end()) return "-";
  if (found->second.not_measured) return "n/m";
  if (!found->second.ok) return "error";
  return FormatFigure(*workload, found->second.value);
}

std::string Comparison::Missing(const Workload* workload, Contender contender) const {
  const auto found = results_.find({workload, contender});
  if (found == results_.end() || found->second.ok) return "";
  return found->second.not_measured ? found->second.error : "error";
}

std::string Comparison::Describe(const Workload& workload, const Target& target) {
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
  // A lower-is-better figure that is not a time (memory, CPU use).
  const bool is_time =
      workload.IsTimePerOperation() || workload.unit == "us" || workload.unit == "ms";
  if (target.factor == 1) {
    const char* relation = workload.higher_is_better ? "no lower than "
                           : is_time                 ? "no slower than "
                                                     : "no more than ";
    return relation + peer;
  }
  if (target.factor < 1 && workload.higher_is_better) return "≥ " + factor + " " + peer;
  if (target.factor < 1)
    return "within " + Format("%g", 1 / target.factor) + "× of " + peer;
  return "≥ " + factor + " " + better + " than " + peer;
}

std::string Comparison::Verdict(const Workload* workload, const Target& target) const {
  const std::optional<double> weft = Value(workload, Contender::kWeft);
  // A figure that is missing for a reason: the verdict says which.
  std::string missing = Missing(workload, Contender::kWeft);
  if (missing.empty() && target.kind == Target::Kind::kFasterThanPeer) {
    missing = Missing(workload, target.peer);
    if (!missing.empty()) missing = std::string(ShortLabel(target.peer)) + ": " + missing;
  } else if (!missing.empty()) {
    missing = "weft: " + missing;
  }
  if (!missing.empty()) return "not measured (" + missing + ")";
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

}  // namespace weft::showcase
