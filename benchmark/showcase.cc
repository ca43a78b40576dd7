#include "benchmark/showcase.h"

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

std::map<std::string, std::function<double()>>& ChildBodies() {
  static auto* bodies = new std::map<std::string, std::function<double()>>;
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
  ChildBodies()[std::move(name)] = std::move(body);
}

const std::function<double()>* FindChildBody(const std::string& name) {
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
  std::string last;
  char line[512];
  while (std::fgets(line, sizeof(line), child) != nullptr) last = line;
  const int status = pclose(child);
  if (status != 0) {
    return {false, 0,
            command + " exited with status " + std::to_string(WEXITSTATUS(status))};
  }
  char* end = nullptr;
  const double value = std::strtod(last.c_str(), &end);
  if (end == last.c_str()) return {false, 0, command + " printed no figure"};
  return {true, value, ""};
}

unsigned CpuCount() {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace weft::showcase
