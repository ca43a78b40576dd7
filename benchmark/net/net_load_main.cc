// weft_net_load: the load generator of the echo workloads W11 and W12
// (docs/benchmarks.md), the same program for every server. One thread, one
// epoll instance, connections to 127.0.0.1 only; bounded in connections,
// round trips and seconds, it stops by itself.
//
//   weft_net_load --mode=pingpong --port=P [--connections=1000] [--message_bytes=64]
//                 [--seconds=10] [--max_requests=100000000]
//   weft_net_load --mode=idle --port=P --server_pid=PID [--connections=10000]
//                 [--seconds=2]
//
// Both modes first open every connection and make each do one round trip (not
// timed), so that every connection is known to be accepted and served by the
// server. Every echo is checked byte for byte; a wrong one ends the run with an
// error, never a figure.
//
// pingpong (W11): every connection sends a message, waits for all of its echo
// and sends the next, until --seconds pass or --max_requests round trips are
// done. Prints the round trips per second and their latency percentiles (each
// from the send to the echo's last byte).
//
// idle (W12): with the connections open and idle, samples the server process
// --server_pid: its resident memory (/proc/PID/status VmRSS) before the
// connections were opened and after --seconds of idleness, and the CPU time
// (user + system, all threads; the process's CPU clock, in nanoseconds) it
// used over those seconds; then checks that the server closed no connection and
// sent nothing unasked.
//
// Output: one `name value` line per figure on stdout; on failure one line
// `error: <what went wrong>` and exit status 1 (2: bad arguments). The
// connections are reset at the end (no TIME_WAIT left behind).
#include <gflags/gflags.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "benchmark/net/echo_clients.h"

DEFINE_string(mode, "", "pingpong (W11) or idle (W12)");
DEFINE_int32(port, 0, "The echo server's port on 127.0.0.1");
DEFINE_int32(connections, 0, "Connections; 0: 1000 for pingpong, 10000 for idle");
DEFINE_int32(message_bytes, 64, "Bytes per message");
DEFINE_double(seconds, 0,
              "pingpong: the length of the run; idle: how long the connections stay idle "
              "while the server's CPU time is measured. 0: 10 for pingpong, 2 for idle");
DEFINE_uint64(max_requests, 100'000'000,
              "pingpong: the run ends after this many round trips");
DEFINE_int32(server_pid, 0, "idle: the server's process id, for its memory and CPU time");
DEFINE_double(open_timeout_seconds, 60,
              "How long opening the connections (and their first round trip) may take");

namespace weft::bench::net {

namespace {

constexpr double kMaxSeconds = 600;  // --seconds at most
// Descriptors beyond the connections: standard streams, epoll, /proc files.
constexpr int kSpareDescriptors = 64;

// Prints the error line and returns the exit status of a failed run.
int Failed(const std::string& what) {
  std::printf("error: %s\n", what.c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "weft_net_load: %s\n", what.c_str());
  return 1;
}

int UsageError(const std::string& what) {
  std::fprintf(stderr, "weft_net_load: %s\n", what.c_str());
  return 2;
}

// Raises this process's soft limit on descriptors to what `connections` need.
std::string RaiseDescriptorLimit(int connections) {
  const rlim_t needed = static_cast<rlim_t>(connections) + kSpareDescriptors;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return "getrlimit(RLIMIT_NOFILE) failed";
  if (limit.rlim_cur >= needed) return "";
  if (limit.rlim_max < needed) {
    return "the hard RLIMIT_NOFILE is " + std::to_string(limit.rlim_max) + "; " +
           std::to_string(connections) + " connections need " + std::to_string(needed) +
           " (raise it with ulimit -Hn as root)";
  }
  limit.rlim_cur = needed;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) return "setrlimit(RLIMIT_NOFILE) failed";
  return "";
}

// The resident set of process `pid` in bytes, or -1.
long long ResidentBytes(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      long long kib = -1;
      fields >> kib;
      return kib < 0 ? -1 : kib * 1024;
    }
  }
  return -1;
}

// The CPU time process `pid` has used, user and system, all its threads (also
// those that have ended), in seconds; -1 if it cannot be read. The process's
// CPU clock counts nanoseconds; /proc/PID/stat's utime and stime, the fallback,
// count clock ticks (10 ms), too coarse for a figure of a few ms per second.
double ProcessCpuSeconds(int pid) {
  clockid_t clock;
  timespec now{};
  if (clock_getcpuclockid(pid, &clock) == 0 && clock_gettime(clock, &now) == 0) {
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)),
                   std::istreambuf_iterator<char>());
  // The command name may hold spaces: fields are counted after its ')'.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

EchoClientOptions ClientOptions(int default_connections) {
  EchoClientOptions options;
  options.port = FLAGS_port;
  options.connections = FLAGS_connections == 0 ? default_connections : FLAGS_connections;
  options.message_bytes = FLAGS_message_bytes;
  options.open_timeout = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(FLAGS_open_timeout_seconds));
  return options;
}

int RunPingPong(double seconds) {
  const EchoClientOptions options = ClientOptions(1000);
  if (std::string error = RaiseDescriptorLimit(options.connections); !error.empty())
    return Failed(error);
  EchoClients clients(options);
  if (std::string error = clients.Open(); !error.empty()) return Failed(error);
  PingPongResult result;
  const auto duration =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  if (std::string error = clients.PingPong(duration, FLAGS_max_requests,
                                           std::chrono::seconds(10), &result);
      !error.empty()) {
    return Failed(error);
  }
  clients.Close();
  if (result.requests == 0 || result.seconds <= 0)
    return Failed("no round trip completed");
  std::printf("connections %d\n", options.connections);
  std::printf("message_bytes %d\n", options.message_bytes);
  std::printf("requests %llu\n", static_cast<unsigned long long>(result.requests));
  std::printf("seconds %.6f\n", result.seconds);
  std::printf("requests_per_second %.1f\n",
              static_cast<double>(result.requests) / result.seconds);
  for (const double p : {50.0, 90.0, 99.0, 99.9}) {
    std::printf("latency_p%g_us %.2f\n", p, result.latencies.PercentileNs(p) / 1e3);
  }
  std::printf("latency_max_us %.2f\n",
              static_cast<double>(result.latencies.max_ns()) / 1e3);
  return 0;
}

int RunIdle(double seconds) {
  const EchoClientOptions options = ClientOptions(10'000);
  const int pid = FLAGS_server_pid;
  if (pid <= 0) return UsageError("--mode=idle needs --server_pid");
  if (std::string error = RaiseDescriptorLimit(options.connections); !error.empty())
    return Failed(error);
  const long long rss_before = ResidentBytes(pid);
  if (rss_before < 0)
    return Failed("cannot read /proc/" + std::to_string(pid) + "/status");

  EchoClients clients(options);
  if (std::string error = clients.Open(); !error.empty()) return Failed(error);

  const double cpu_before = ProcessCpuSeconds(pid);
  const Clock::time_point wall_before = Clock::now();
  // The measurement interval itself: nothing is asked of the server.
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double cpu_after = ProcessCpuSeconds(pid);
  const double wall = std::chrono::duration<double>(Clock::now() - wall_before).count();
  const long long rss_after = ResidentBytes(pid);
  if (cpu_before < 0 || cpu_after < 0 || rss_after < 0) {
    return Failed("cannot read the CPU time or memory of process " + std::to_string(pid));
  }
  if (std::string error = clients.CheckQuiet(); !error.empty()) return Failed(error);
  clients.Close();

  std::printf("connections %d\n", options.connections);
  std::printf("rss_before_bytes %lld\n", rss_before);
  std::printf("rss_after_bytes %lld\n", rss_after);
  std::printf("rss_per_connection_bytes %.1f\n",
              static_cast<double>(rss_after - rss_before) / options.connections);
  std::printf("idle_seconds %.6f\n", wall);
  std::printf("idle_cpu_ms_per_s %.4f\n", (cpu_after - cpu_before) * 1e3 / wall);
  return 0;
}

}  // namespace

}  // namespace weft::bench::net

int main(int argc, char** argv) {
  gflags::SetUsageMessage(
      "weft_net_load --mode=pingpong|idle --port=P ...: the load generator of W11 and "
      "W12");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  using namespace weft::bench::net;
  if (argc > 1) return UsageError(std::string("unexpected argument ") + argv[1]);
  if (FLAGS_port < 1 || FLAGS_port > 65535) {
    return UsageError("--port is " + std::to_string(FLAGS_port) +
                      "; it must be 1 to 65535");
  }
  if (FLAGS_seconds < 0 || FLAGS_seconds > kMaxSeconds) {
    return UsageError("--seconds must be 0 (the default) to 600");
  }
  if (FLAGS_mode == "pingpong")
    return RunPingPong(FLAGS_seconds == 0 ? 10 : FLAGS_seconds);
  if (FLAGS_mode == "idle") return RunIdle(FLAGS_seconds == 0 ? 2 : FLAGS_seconds);
  return UsageError("--mode is \"" + FLAGS_mode + "\"; it must be pingpong or idle");
}
