// W10-W12: network servers, each a server process started for the measurement
// on a free port of 127.0.0.1, driven by a load generator and stopped by its
// process id when the measurement ends (also on errors). Every server runs
// with 2 workers or threads, the size docs/benchmarks.md fixes:
//   weft:  build/<kind>/examples/weft_http_hello and weft_echo_server
//          (--port=0 --workers=2), found beside this program's directory;
//   Go:    weft_go_peer -serve=http|echo -port=0 (--go_peer), GOMAXPROCS=2:
//          net/http, and net with a goroutine per connection;
//   nginx: 2 worker processes, `return 200 "Hello, World!"` (servers.h);
//   Asio:  weft_asio_echo --threads=2, an io_context per thread;
//   epoll: weft_epoll_echo --threads=2, a level-triggered epoll loop per thread
//          on a SO_REUSEPORT listener of its own: the limit.
// All the echo servers read into a 1 KiB buffer per connection and set
// TCP_NODELAY (Go's default). A server that is not built, or a tool that is not
// installed, gives "not measured: <why>", never a figure.
//
// W10 (HTTP/1.1 keep-alive hello): one GET checks that the server answers 200
// with the body "Hello, World!", then Debian's wrk runs
// `wrk -t1 -c256 -d10s --latency` against it. Figures: wrk's Requests/sec
// (W10-throughput) and the 99% line of its latency distribution (W10-p99). A
// run in which wrk counts a socket error or a non-2xx answer is an error.
//
// W11 (echo ping-pong): weft_net_load --mode=pingpong, the same program for
// every server, one thread on one epoll instance: 1000 connections each do one
// untimed round trip, then each sends a 64-byte message, waits for all of its
// echo, checks it byte for byte and sends the next, for 10 s. Figures: round
// trips per second (W11-throughput) and the 99th percentile of their latency,
// from the send to the echo's last byte (W11-p99). With 1000 messages always
// in flight the latency is mostly queueing: at a given throughput it is
// 1000 / throughput on average, so the p99 says how evenly a server serves
// its connections.
//
// W12 (idle connections): weft_net_load --mode=idle opens 10k connections,
// each doing one 64-byte round trip (so that each is known to be accepted and
// served by its fiber, goroutine or pending Asio read), then leaves them idle
// for 2 s. Figures: the server's resident memory (VmRSS) after the 2 s minus
// before the first connection, per connection (W12-rss), and its CPU time
// over the 2 s per wall second (W12-idle). Kernel memory (socket buffers,
// descriptors) is in neither side's RSS.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/net/servers.h"
#include "benchmark/net/subprocess.h"
#include "benchmark/net/wrk.h"
#include "benchmark/showcase.h"

namespace weft::showcase {

namespace {

using bench::net::Server;
using bench::net::Subprocess;

// Workers of weft's servers, GOMAXPROCS of Go's, threads of Asio's and of the
// epoll loop, worker processes of nginx.
constexpr int kServerWorkers = 2;
constexpr int kMessageBytes = 64;

Workload ServerWorkload(std::string id, std::string operation, std::string unit,
                        bool higher_is_better, std::vector<Target> targets) {
  Workload workload{std::move(id), std::move(operation), std::move(targets)};
  workload.unit = std::move(unit);
  workload.higher_is_better = higher_is_better;
  return workload;
}

const Workload kHelloThroughput =
    ServerWorkload("W10-throughput", "request", "req/s", true,
                   {{Target::Kind::kFasterThanPeer, 1.5, Contender::kGo},
                    {Target::Kind::kFasterThanPeer, 1.0, Contender::kNginx}});
const Workload kHelloP99 =
    ServerWorkload("W10-p99", "request", "us", false,
                   {{Target::Kind::kFasterThanPeer, 1.0, Contender::kGo},
                    {Target::Kind::kFasterThanPeer, 1.0, Contender::kNginx}});
const Workload kEchoThroughput =
    ServerWorkload("W11-throughput", "round trip", "req/s", true,
                   {{Target::Kind::kFasterThanPeer, 1.0, Contender::kAsio},
                    {Target::Kind::kFasterThanPeer, 1.0, Contender::kGo},
                    {Target::Kind::kFasterThanPeer, 0.85, Contender::kEpoll}});
const Workload kEchoP99 =
    ServerWorkload("W11-p99", "round trip", "us", false,
                   {{Target::Kind::kFasterThanPeer, 1.0, Contender::kAsio},
                    {Target::Kind::kFasterThanPeer, 1.0, Contender::kGo}});
const Workload kIdleMemory =
    ServerWorkload("W12-rss", "connection", "bytes/conn", false,
                   {{Target::Kind::kFasterThanPeer, 1.0, Contender::kGo},
                    {Target::Kind::kAtMost, 8192}});
const Workload kIdleCpu = ServerWorkload("W12-idle", "connection", "cpu-ms/s", false,
                                         {{Target::Kind::kAtMost, 5.0}});

// The sizes of one scale: full, --quick or --smoke.
struct Sizes {
  int wrk_connections = 256;
  int wrk_seconds = 10;
  int echo_connections = 1000;
  double echo_seconds = 10;
  std::uint64_t echo_max_requests = 100'000'000;
  int idle_connections = 10'000;
  double idle_seconds = 2;
};

Sizes SizesOf(const Scale& scale) {
  Sizes sizes;
  if (scale.smoke) {
    sizes.wrk_connections = 16;
    sizes.wrk_seconds = 1;
    sizes.echo_connections = 50;
    sizes.echo_seconds = 0.2;
    sizes.echo_max_requests = 20'000;
    sizes.idle_connections = 100;
    sizes.idle_seconds = 0.2;
  } else if (scale.quick) {
    sizes.wrk_seconds = 2;
    sizes.echo_seconds = 2;
    sizes.echo_max_requests = 10'000'000;
    sizes.idle_connections = 1'000;
    sizes.idle_seconds = 1;
  }
  return sizes;
}

std::string ProgramBeside(const std::string& relative) {
  return std::filesystem::path(bench::net::ExecutableDirectory() + "/" + relative)
      .lexically_normal()
      .string();
}

// How to start a contender's server: a command that prints its listening
// line, nginx, or why neither is possible.
struct Launch {
  Subprocess::Command command;
  bool nginx = false;
  std::string missing;  // "": it can be started
};

Launch WeftLaunch(const char* example) {
  Launch launch;
  const std::string program = ProgramBeside(std::string("../examples/") + example);
  if (!bench::net::IsExecutable(program)) {
    launch.missing = std::string("examples/") + example + " not built";
  }
  launch.command.argv = {program, "--port=0",
                         "--workers=" + std::to_string(kServerWorkers)};
  return launch;
}

Launch GoLaunch(const char* kind) {
  Launch launch;
  const std::string& program = GoPeerProgram();
  if (program.empty()) {
    launch.missing = "no --go_peer given";
  } else if (bench::net::FindProgram(program).empty()) {
    launch.missing = program + " not found";
  }
  launch.command.argv = {program, std::string("-serve=") + kind, "-port=0"};
  launch.command.environment = {"GOMAXPROCS=" + std::to_string(kServerWorkers)};
  return launch;
}

Launch PeerLaunch(const char* name, const char* why_missing) {
  Launch launch;
  const std::string program = ProgramBeside(name);
  if (!bench::net::IsExecutable(program))
    launch.missing = std::string(name) + why_missing;
  launch.command.argv = {program, "--port=0",
                         "--threads=" + std::to_string(kServerWorkers)};
  return launch;
}

Launch HttpLaunch(Contender contender) {
  switch (contender) {
    case Contender::kWeft:
      return WeftLaunch("weft_http_hello");
    case Contender::kGo:
      return GoLaunch("http");
    case Contender::kNginx: {
      Launch launch;
      launch.nginx = true;
      launch.command.argv = {bench::net::FindProgram("nginx")};
      if (launch.command.argv[0].empty()) launch.missing = "nginx not installed";
      return launch;
    }
    default:
      return Launch{{}, false, "no HTTP server for this runtime"};
  }
}

Launch EchoLaunch(Contender contender) {
  switch (contender) {
    case Contender::kWeft:
      return WeftLaunch("weft_echo_server");
    case Contender::kGo:
      return GoLaunch("echo");
    case Contender::kAsio:
      return PeerLaunch("weft_asio_echo", " not built (asio.hpp not found)");
    case Contender::kEpoll:
      return PeerLaunch("weft_epoll_echo", " not built");
    default:
      return Launch{{}, false, "no echo server for this runtime"};
  }
}

std::unique_ptr<Server> StartServer(const Launch& launch, std::string* error) {
  if (launch.nginx)
    return bench::net::StartNginx(launch.command.argv[0], kServerWorkers, error);
  return bench::net::StartListeningServer(launch.command, error);
}

// Stops the server; a server that does not end cleanly on SIGTERM is reported
// on stderr, and its figures stand.
void StopServer(std::unique_ptr<Server>& server, const std::string& measurement) {
  if (!server) return;
  const std::string outcome = server->Stop();
  if (!outcome.empty()) {
    std::fprintf(stderr, "showcase: %s: warning: %s\n", measurement.c_str(),
                 outcome.c_str());
  }
  server.reset();
}

// Runs weft_net_load with `arguments` for at most `timeout` and returns its
// `name value` lines in *figures; "" or what went wrong.
std::string RunLoadTool(const std::vector<std::string>& arguments,
                        std::chrono::seconds timeout,
                        std::map<std::string, double>* figures) {
  Subprocess::Command command;
  command.argv = {ProgramBeside("weft_net_load")};
  command.argv.insert(command.argv.end(), arguments.begin(), arguments.end());
  std::string error;
  std::unique_ptr<Subprocess> tool = Subprocess::Start(command, &error);
  if (!tool) return error;
  const auto deadline = Subprocess::Clock::now() + timeout;
  std::string output;
  if (!tool->ReadToEnd(deadline, &output, &error)) return error;
  tool->Wait(deadline);
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("error: ", 0) == 0) return line.substr(7);
    std::istringstream fields(line);
    std::string name;
    double value = 0;
    if (fields >> name >> value) (*figures)[name] = value;
  }
  if (!tool->ended_cleanly()) return "weft_net_load " + tool->DescribeEnd();
  return "";
}

std::string Figure(const std::map<std::string, double>& figures, const std::string& name,
                   double* value) {
  const auto found = figures.find(name);
  if (found == figures.end()) return "weft_net_load printed no " + name;
  *value = found->second;
  return "";
}

// Reports why the measurement cannot run, if something is missing; returns
// whether it can.
bool Prerequisites(::benchmark::State& state, const Launch& launch,
                   bool needs_load_tool) {
  if (!launch.missing.empty()) {
    ReportNotMeasured(state, launch.missing);
    return false;
  }
  if (needs_load_tool && !bench::net::IsExecutable(ProgramBeside("weft_net_load"))) {
    ReportNotMeasured(state, "weft_net_load not built");
    return false;
  }
  return true;
}

void MeasureHello(::benchmark::State& state, Contender contender, const Sizes& sizes) {
  const Launch launch = HttpLaunch(contender);
  const std::string wrk = bench::net::FindProgram("wrk");
  if (wrk.empty()) return ReportNotMeasured(state, "wrk not installed");
  if (!Prerequisites(state, launch, false)) return;
  const std::string name = kHelloThroughput.id + "/" + ContenderName(contender);
  for (auto _ : state) {
    std::string error;
    std::unique_ptr<Server> server = StartServer(launch, &error);
    bench::net::WrkResult result;
    if (server)
      error = bench::net::CheckHelloResponse(server->port(), std::chrono::seconds(10));
    if (error.empty()) {
      error = bench::net::RunWrk(
          {wrk, server->port(), 1, sizes.wrk_connections, sizes.wrk_seconds}, &result);
    }
    StopServer(server, name);
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    ReportValue(state, result.requests_per_second);
    ReportValue(state, kHelloP99, result.p99_us);
  }
}

std::string Seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", seconds);
  return text;
}

void MeasureEcho(::benchmark::State& state, Contender contender, const Sizes& sizes) {
  const Launch launch = EchoLaunch(contender);
  if (!Prerequisites(state, launch, true)) return;
  const std::string name = kEchoThroughput.id + "/" + ContenderName(contender);
  for (auto _ : state) {
    std::string error;
    std::unique_ptr<Server> server = StartServer(launch, &error);
    std::map<std::string, double> figures;
    if (server) {
      error = RunLoadTool(
          {"--mode=pingpong", "--port=" + std::to_string(server->port()),
           "--connections=" + std::to_string(sizes.echo_connections),
           "--message_bytes=" + std::to_string(kMessageBytes),
           "--seconds=" + Seconds(sizes.echo_seconds),
           "--max_requests=" + std::to_string(sizes.echo_max_requests)},
          std::chrono::seconds(static_cast<int>(sizes.echo_seconds) + 120), &figures);
    }
    StopServer(server, name);
    double throughput = 0;
    double p99 = 0;
    if (error.empty()) error = Figure(figures, "requests_per_second", &throughput);
    if (error.empty()) error = Figure(figures, "latency_p99_us", &p99);
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    ReportValue(state, throughput);
    ReportValue(state, kEchoP99, p99);
  }
}

void MeasureIdle(::benchmark::State& state, Contender contender, const Sizes& sizes) {
  const Launch launch = EchoLaunch(contender);
  if (!Prerequisites(state, launch, true)) return;
  if (const std::string error = bench::net::RaiseDescriptorLimit(sizes.idle_connections);
      !error.empty()) {
    return state.SkipWithError(error.c_str());
  }
  const std::string name = kIdleMemory.id + "/" + ContenderName(contender);
  for (auto _ : state) {
    std::string error;
    std::unique_ptr<Server> server = StartServer(launch, &error);
    std::map<std::string, double> figures;
    if (server) {
      error = RunLoadTool(
          {"--mode=idle", "--port=" + std::to_string(server->port()),
           "--server_pid=" + std::to_string(server->pid()),
           "--connections=" + std::to_string(sizes.idle_connections),
           "--message_bytes=" + std::to_string(kMessageBytes),
           "--seconds=" + Seconds(sizes.idle_seconds)},
          std::chrono::seconds(static_cast<int>(sizes.idle_seconds) + 120), &figures);
    }
    StopServer(server, name);
    double memory = 0;
    double cpu = 0;
    if (error.empty()) error = Figure(figures, "rss_per_connection_bytes", &memory);
    if (error.empty()) error = Figure(figures, "idle_cpu_ms_per_s", &cpu);
    if (!error.empty()) {
      state.SkipWithError(error.c_str());
      break;
    }
    ReportValue(state, memory);
    ReportValue(state, kIdleCpu, cpu);
  }
}

}  // namespace

void AddNetMeasurements(const Scale& scale) {
  const Sizes sizes = SizesOf(scale);
  auto add = [&sizes](const Workload& workload, const Workload& also, Contender contender,
                      void (*measure)(::benchmark::State&, Contender, const Sizes&)) {
    AddMeasurement(workload, contender, 1,
                   [measure, contender, sizes](::benchmark::State& state) {
                     measure(state, contender, sizes);
                   },
                   /*min_time=*/0, {&also});
  };
  for (Contender c : {Contender::kWeft, Contender::kGo, Contender::kNginx}) {
    add(kHelloThroughput, kHelloP99, c, &MeasureHello);
  }
  for (Contender c :
       {Contender::kWeft, Contender::kAsio, Contender::kGo, Contender::kEpoll}) {
    add(kEchoThroughput, kEchoP99, c, &MeasureEcho);
  }
  for (Contender c : {Contender::kWeft, Contender::kGo, Contender::kAsio}) {
    add(kIdleMemory, kIdleCpu, c, &MeasureIdle);
  }
}

}  // namespace weft::showcase
