#include "benchmark/showcase.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>
#include <utility>

namespace weft::showcase {

namespace {

std::vector<Measurement>& MutableMeasurements() {
  static auto* measurements = new std::vector<Measurement>;
  return *measurements;
}

std::vector<GoMeasurement>& MutableGoMeasurements() {
  static auto* measurements = new std::vector<GoMeasurement>;
  return *measurements;
}

using ChildBody = std::function<std::vector<double>()>;

std::map<std::string, ChildBody>& ChildBodies() {
  static auto* bodies = new std::map<std::string, ChildBody>;
  return *bodies;
}

}  // namespace

const char* ContenderName(Contender contender) {
  switch (contender) {
    case Contender::kWeft:
      return "weft";
    case Contender::kBoostFiber:
      return "boost.fiber";
    case Contender::kBoostFiberWorkStealing:
      return "boost.fiber-ws";
    case Contender::kThreads:
      return "std.thread";
    case Contender::kGo:
      return "go";
    case Contender::kFcontext:
      return "fcontext";
    case Contender::kNginx:
      return "nginx";
    case Contender::kAsio:
      return "asio";
    case Contender::kEpoll:
      return "epoll";
    case Contender::kRedisBenchmark:
      return "redis-benchmark";
  }
  return "?";
}

std::string Measurement::Name() const {
  return workload->id + "/" + ContenderName(contender);
}

void AddMeasurement(const Workload& workload, Contender contender,
                    std::int64_t iterations, MeasureFn fn, double min_time,
                    std::vector<const Workload*> also_reports) {
  MutableMeasurements().push_back(Measurement{&workload, contender, iterations, min_time,
                                              std::move(fn), std::move(also_reports)});
}

const std::vector<Measurement>& Measurements() { return MutableMeasurements(); }

void AddGoMeasurement(const Workload& workload, std::string selector, std::string line_id,
                      std::string go_flags) {
  MutableGoMeasurements().push_back(GoMeasurement{
      &workload, std::move(selector), std::move(line_id), std::move(go_flags)});
}

const std::vector<GoMeasurement>& GoMeasurements() { return MutableGoMeasurements(); }

void ReportOperations(::benchmark::State& state, double operations) {
  state.counters[kPerOperationCounter] = ::benchmark::Counter(
      operations, ::benchmark::Counter::kIsRate | ::benchmark::Counter::kInvert);
}

void ReportValue(::benchmark::State& state, double value) {
  state.counters[kValueCounter] = value;
}

void ReportValue(::benchmark::State& state, const Workload& also, double value) {
  state.counters[also.id] = value;
}

void ReportNotMeasured(::benchmark::State& state, const std::string& reason) {
  state.SkipWithError((kNotMeasuredPrefix + reason).c_str());
}

static std::string& MutableGoPeerProgram() {
  static auto* path = new std::string;
  return *path;
}

void SetGoPeerProgram(std::string path) { MutableGoPeerProgram() = std::move(path); }

const std::string& GoPeerProgram() { return MutableGoPeerProgram(); }

void AddChildBody(std::string name, std::function<double()> body) {
  AddChildBody(std::move(name),
               [body = std::move(body)] { return std::vector<double>{body()}; });
}

void AddChildBody(std::string name, std::function<std::vector<double>()> body) {
  ChildBodies()[std::move(name)] = std::move(body);
}

const std::function<std::vector<double>()>* FindChildBody(const std::string& name) {
  const auto found = ChildBodies().find(name);
  return found == ChildBodies().end() ? nullptr : &found->second;
}

static std::vector<std::string>& ChildProcessFlags() {
  static auto* flags = new std::vector<std::string>;
  return *flags;
}

void SetChildProcessFlags(std::vector<std::string> flags) {
  ChildProcessFlags() = std::move(flags);
}

ChildResult RunInChildProcess(const std::string& name, const Scale& scale) {
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (length <= 0)
    return {false, 0, std::string("readlink(/proc/self/exe): ") + std::strerror(errno)};
  self[length] = '\0';
  std::string command = std::string("'") + self + "' --child=" + name +
                        (scale.smoke   ? " --smoke"
                         : scale.quick ? " --quick"
                                       : "");
  for (const std::string& flag : ChildProcessFlags()) command += " '" + flag + "'";
  std::FILE* child = popen(command.c_str(), "r");
  if (child == nullptr) return {false, 0, "popen(" + command + ") failed"};
  ChildResult result;
  char line[512];
  while (std::fgets(line, sizeof(line), child) != nullptr) {
    char* end = nullptr;
    const double value = std::strtod(line, &end);
    if (end != line) result.values.push_back(value);
  }
  const int status = pclose(child);
  if (status != 0) {
    result.error = command + " exited with status " + std::to_string(WEXITSTATUS(status));
    return result;
  }
  if (result.values.empty()) {
    result.error = command + " printed no figure";
    return result;
  }
  result.ok = true;
  result.value = result.values.front();
  return result;
}

void AddChildMeasurement(const Workload& workload, Contender contender,
                         const Scale& scale, std::function<double()> body) {
  AddChildMeasurement(workload, contender, scale,
                      [body = std::move(body)] { return std::vector<double>{body()}; },
                      {});
}

void AddChildMeasurement(const Workload& workload, Contender contender,
                         const Scale& scale, std::function<std::vector<double>()> body,
                         std::vector<const Workload*> also_reports) {
  const std::string name = workload.id + "/" + ContenderName(contender);
  AddChildBody(name, std::move(body));
  AddMeasurement(
      workload, contender, 1,
      [name, scale, also_reports](::benchmark::State& state) {
        for (auto _ : state) {
          const ChildResult result = RunInChildProcess(name, scale);
          if (!result.ok) {
            state.SkipWithError(result.error.c_str());
            break;
          }
          if (result.values.size() < 1 + also_reports.size()) {
            state.SkipWithError((name + ": the child printed " +
                                 std::to_string(result.values.size()) + " figures, not " +
                                 std::to_string(1 + also_reports.size()))
                                    .c_str());
            break;
          }
          ReportValue(state, result.values[0]);
          for (std::size_t i = 0; i < also_reports.size(); ++i) {
            ReportValue(state, *also_reports[i], result.values[i + 1]);
          }
        }
      },
      /*min_time=*/0, also_reports);
  MutableMeasurements().back().in_child_process = true;
}

void ChildFails(const std::string& what) {
  std::fprintf(stderr, "weft_showcase child: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

double PeakResidentMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024;  // ru_maxrss is in KiB
}

unsigned CpuCount() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace weft::showcase
