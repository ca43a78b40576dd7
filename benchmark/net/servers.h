// The servers of the network workloads W10-W12 (docs/benchmarks.md), each
// started as a child process on a free port of 127.0.0.1 for one measurement
// and stopped by its process id when the measurement ends, also on errors.
//
// Every server but nginx follows one convention, which weft's example servers
// follow too: it takes the port to listen on as an argument (0: the kernel
// picks one), binds 127.0.0.1 only, prints exactly one line
// `listening 127.0.0.1:<port>` on stdout (flushed) once it accepts
// connections, and exits with status 0 on SIGTERM or SIGINT. nginx cannot
// print that line; NginxServer writes its configuration into a temporary
// directory instead and knows it is ready once it has answered a request.
#ifndef WEFT_BENCHMARK_NET_SERVERS_H_
#define WEFT_BENCHMARK_NET_SERVERS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "benchmark/net/subprocess.h"

namespace weft::bench::net {

// A running server. The destructor stops it, if Stop() has not.
class Server {
 public:
  virtual ~Server() = default;
  virtual int port() const = 0;
  // The process whose memory and CPU time are the server's (nginx: its master).
  virtual pid_t pid() const = 0;
  // Stops the server by its process id (SIGTERM, then SIGKILL after a grace
  // period). Returns "" if it ended cleanly, otherwise what happened.
  virtual std::string Stop() = 0;
};

// How long a server may take to start listening.
inline constexpr std::chrono::seconds kStartTimeout{20};

// Starts `command` and waits up to kStartTimeout for its `listening
// 127.0.0.1:<port>` line. Returns nullptr and sets *error if it cannot be
// started, prints anything else first, or does not print it in time; the
// child is stopped then.
std::unique_ptr<Server> StartListeningServer(const Subprocess::Command& command,
                                             std::string* error);

// Starts nginx (the program at `nginx`) with `workers` worker processes
// answering every request on a free port of 127.0.0.1 with the 13-byte body
// "Hello, World!" (text/plain, keep-alive), from a configuration written into
// a fresh temporary directory that also holds its pid file, error log and
// temporary paths, and is removed when the server is stopped. Returns nullptr
// and sets *error if nginx does not start, or does not answer a request
// within kStartTimeout.
std::unique_ptr<Server> StartNginx(const std::string& nginx, int workers,
                                   std::string* error);

// Starts redis-server (the program at `redis_server`) on a free port of
// 127.0.0.1, without persistence, with its working directory and log file in a
// fresh temporary directory that is removed when the server is stopped, and
// --maxclients 4000. Returns nullptr and sets *error if it does not start, or
// does not answer PING within kStartTimeout.
std::unique_ptr<Server> StartRedis(const std::string& redis_server, std::string* error);

// Sends one `GET / HTTP/1.1` to 127.0.0.1:port and checks the answer: status
// 200 and the body "Hello, World!". Returns "" or what is wrong. Waits up to
// `timeout`.
std::string CheckHelloResponse(int port, std::chrono::milliseconds timeout);

}  // namespace weft::bench::net

#endif  // WEFT_BENCHMARK_NET_SERVERS_H_
