// W13: an unmodified blocking client in weft fibers. Each measurement starts
// a redis-server of its own on a free port of 127.0.0.1 (net/servers.h: no
// persistence, a temporary directory, stopped by its process id at the end,
// also on errors) and drives it with a program that stops by itself, bounded
// in connections, requests and seconds:
//
// W13 (throughput): weft = weft_hook_bench --mode=getset, hiredis's blocking
// API in 1000 fibers on 2 workers with the hooks, each on its own connection
// running 100 SET/GET pairs once all connections are open;
// redis-benchmark = Debian's `redis-benchmark -c 1000 -n 100000 -t set,get
// -d 3 --csv` (100000 SETs, then 100000 GETs, over 1000 connections, the same
// 3-byte value). Figure: requests per second; redis-benchmark's is the whole
// run's, 200000 requests over the time of its SET and GET phases together.
//
// W13-blpop: the program, weft_hook_bench --mode=blpop: 1000 fibers
// on 2 workers each open a connection and BLPOP an empty list with a 1 s
// timeout. Figure: the wall time until the last nil, in ms.
//
// W13-blpop-hooked and W13-blpop-unhooked: the contrast, at a size the
// unhooked program finishes in seconds: 100 fibers, BLPOP with a 0.1 s
// timeout, with the hooks (weft_hook_bench) and without them
// (weft_hook_bench_unhooked, the same source). Without the hooks each BLPOP
// holds its worker for the whole timeout, so the pops run two at a time:
// about 100 / 2 x 0.1 s = 5 s, against about 0.1 s with them. Shown, not
// targeted.
//
// A program that is not built or not installed (redis-server, redis-benchmark,
// hiredis) gives "not measured: <why>", never a figure.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/net/servers.h"
#include "benchmark/net/subprocess.h"
#include "benchmark/showcase.h"

namespace weft::showcase {

namespace {

using bench::net::Server;
using bench::net::Subprocess;

Workload RedisWorkload(std::string id, std::string unit, bool higher_is_better,
                       std::vector<Target> targets) {
  Workload workload{std::move(id), "request", std::move(targets)};
  workload.unit = std::move(unit);
  workload.higher_is_better = higher_is_better;
  return workload;
}

const Workload kThroughput =
    RedisWorkload("W13", "req/s", true,
                  {{Target::Kind::kFasterThanPeer, 0.7, Contender::kRedisBenchmark}});
const Workload kBlockingPops = RedisWorkload("W13-blpop", "ms", false, {});
const Workload kHookedPops = RedisWorkload("W13-blpop-hooked", "ms", false, {});
const Workload kUnhookedPops = RedisWorkload("W13-blpop-unhooked", "ms", false, {});

// The sizes of one scale: full, --quick or --smoke.
struct Sizes {
  int connections = 1000;
  int pairs = 100;
  int pop_fibers = 1000;
  double pop_timeout_seconds = 1;
  int contrast_fibers = 100;
  double contrast_timeout_seconds = 0.1;
};

Sizes SizesOf(const Scale& scale) {
  Sizes sizes;
  if (scale.smoke) {
    sizes.connections = 20;
    sizes.pairs = 5;
    sizes.pop_fibers = 20;
    sizes.pop_timeout_seconds = 0.1;
    sizes.contrast_fibers = 10;
    sizes.contrast_timeout_seconds = 0.1;
  } else if (scale.quick) {
    sizes.pairs = 20;
  }
  return sizes;
}

// How long a client program may take before the run is an error: far above
// what any of them needs (the longest, the unhooked contrast, about 5 s).
constexpr std::chrono::seconds kClientTimeout{120};

std::string ProgramBeside(const std::string& name) {
  return bench::net::ExecutableDirectory() + "/" + name;
}

// Runs `command` to its end (at most kClientTimeout) and returns its stdout in
// *output; "" or what went wrong.
std::string RunToEnd(const Subprocess::Command& command, std::string* output) {
  std::string error;
  std::unique_ptr<Subprocess> client = Subprocess::Start(command, &error);
  if (!client) return error;
  const auto deadline = Subprocess::Clock::now() + kClientTimeout;
  if (!client->ReadToEnd(deadline, output, &error)) return error;
  client->Wait(deadline);
  std::istringstream lines(*output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("error: ", 0) == 0) return line.substr(7);
  }
  if (!client->ended_cleanly()) {
    return std::filesystem::path(command.argv[0]).filename().string() + " " +
           client->DescribeEnd();
  }
  return "";
}

// The value of the `name value` line of weft_hook_bench's output; "" or why
// there is none.
std::string Figure(const std::string& output, const std::string& name, double* value) {
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string key;
    if (fields >> key && key == name && fields >> *value) return "";
  }
  return "weft_hook_bench printed no " + name;
}

// The requests per second of one test in redis-benchmark's --csv output,
// e.g. the line "SET","84674.01","0.5",... ; "" or why there is none.
std::string CsvRate(const std::string& output, const std::string& test, double* rate) {
  const std::string prefix = "\"" + test + "\",\"";
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    char* end = nullptr;
    *rate = std::strtod(line.c_str() + prefix.size(), &end);
    if (end != nullptr && *end == '"' && *rate > 0) return "";
  }
  return "redis-benchmark printed no rate for " + test;
}

// redis-server, or why it cannot be started.
std::string FindRedisServer(std::string* program) {
  *program = bench::net::FindProgram("redis-server");
  return program->empty() ? "redis-server not installed" : "";
}

// Starts a redis-server for `name`, runs `command` with `--port=<its port>`
// appended (or, for redis-benchmark, `-p <port>`), stops the server and
// returns the client's output in *output; "" or what went wrong.
std::string AgainstFreshServer(const std::string& redis_server, Subprocess::Command command,
                               bool dash_p, const std::string& name, std::string* output) {
  std::string error;
  std::unique_ptr<Server> server = bench::net::StartRedis(redis_server, &error);
  if (!server) return error;
  const std::string port = std::to_string(server->port());
  if (dash_p) {
    command.argv.insert(command.argv.end(), {"-p", port});
  } else {
    command.argv.push_back("--port=" + port);
  }
  error = RunToEnd(command, output);
  const std::string outcome = server->Stop();
  if (!outcome.empty()) {
    std::fprintf(stderr, "showcase: %s: warning: redis-server: %s\n", name.c_str(),
                 outcome.c_str());
  }
  return error;
}

void MeasureThroughput(::benchmark::State& state, Contender contender, const Sizes& sizes) {
  std::string redis_server;
  if (std::string missing = FindRedisServer(&redis_server); !missing.empty())
    return ReportNotMeasured(state, missing);
  Subprocess::Command command;
  if (contender == Contender::kWeft) {
    command.argv = {ProgramBeside("weft_hook_bench"), "--mode=getset",
                    "--connections=" + std::to_string(sizes.connections),
                    "--pairs=" + std::to_string(sizes.pairs)};
    if (!bench::net::IsExecutable(command.argv[0]))
      return ReportNotMeasured(state, "weft_hook_bench not built (hiredis not found)");
  } else {
    const std::string tool = bench::net::FindProgram("redis-benchmark");
    if (tool.empty()) return ReportNotMeasured(state, "redis-benchmark not installed");
    command.argv = {tool,
                    "-h",
                    "127.0.0.1",
                    "-c",
                    std::to_string(sizes.connections),
                    "-n",
                    std::to_string(sizes.connections * sizes.pairs),
                    "-t",
                    "set,get",
                    "-d",
                    "3",
                    "--csv"};
  }
  if (std::string error = bench::net::RaiseDescriptorLimit(sizes.connections);
      !error.empty()) {
    return state.SkipWithError(error.c_str());
  }
  const std::string name = kThroughput.id + "/" + ContenderName(contender);
  for (auto _ : state) {
    std::string output;
    std::string error = AgainstFreshServer(redis_server, command,
                                           contender != Contender::kWeft, name, &output);
    double rate = 0;
    if (error.empty() && contender == Contender::kWeft) {
      error = Figure(output, "requests_per_second", &rate);
    } else if (error.empty()) {
      double set = 0;
      double get = 0;
      error = CsvRate(output, "SET", &set);
      if (error.empty()) error = CsvRate(output, "GET", &get);
      // As many SETs as GETs: the whole run's rate is their harmonic mean.
      rate = 2 / (1 / set + 1 / get);
    }
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    ReportValue(state, rate);
  }
}

void MeasurePops(::benchmark::State& state, const char* program, int fibers,
                 double timeout_seconds) {
  std::string redis_server;
  if (std::string missing = FindRedisServer(&redis_server); !missing.empty())
    return ReportNotMeasured(state, missing);
  Subprocess::Command command;
  command.argv = {ProgramBeside(program), "--mode=blpop",
                  "--fibers=" + std::to_string(fibers)};
  char timeout[32];
  std::snprintf(timeout, sizeof(timeout), "--timeout_seconds=%g", timeout_seconds);
  command.argv.push_back(timeout);
  if (!bench::net::IsExecutable(command.argv[0]))
    return ReportNotMeasured(state, std::string(program) + " not built (hiredis not found)");
  if (std::string error = bench::net::RaiseDescriptorLimit(fibers); !error.empty())
    return state.SkipWithError(error.c_str());
  for (auto _ : state) {
    std::string output;
    std::string error = AgainstFreshServer(redis_server, command, false, program, &output);
    double seconds = 0;
    double nil = 0;
    if (error.empty()) error = Figure(output, "seconds", &seconds);
    if (error.empty()) error = Figure(output, "nil_replies", &nil);
    if (error.empty() && nil != fibers) {
      error = "only " + std::to_string(static_cast<int>(nil)) + " of " +
              std::to_string(fibers) + " BLPOPs returned nil";
    }
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    ReportValue(state, seconds * 1e3);
  }
}

}  // namespace

void AddRedisMeasurements(const Scale& scale) {
  const Sizes sizes = SizesOf(scale);
  for (Contender c : {Contender::kWeft, Contender::kRedisBenchmark}) {
    AddMeasurement(kThroughput, c, 1, [c, sizes](::benchmark::State& state) {
      MeasureThroughput(state, c, sizes);
    });
  }
  AddMeasurement(kBlockingPops, Contender::kWeft, 1, [sizes](::benchmark::State& state) {
    MeasurePops(state, "weft_hook_bench", sizes.pop_fibers, sizes.pop_timeout_seconds);
  });
  AddMeasurement(kHookedPops, Contender::kWeft, 1, [sizes](::benchmark::State& state) {
    MeasurePops(state, "weft_hook_bench", sizes.contrast_fibers,
                sizes.contrast_timeout_seconds);
  });
  AddMeasurement(kUnhookedPops, Contender::kWeft, 1, [sizes](::benchmark::State& state) {
    MeasurePops(state, "weft_hook_bench_unhooked", sizes.contrast_fibers,
                sizes.contrast_timeout_seconds);
  });
}

}  // namespace weft::showcase
