// The driver of W10 (docs/benchmarks.md): runs Debian's wrk, a client nobody
// here wrote, against an HTTP server on 127.0.0.1, and reads its figures.
#ifndef WEFT_BENCHMARK_NET_WRK_H_
#define WEFT_BENCHMARK_NET_WRK_H_

#include <string>

namespace weft::bench::net {

struct WrkOptions {
  std::string program;    // the path of wrk
  int port = 0;           // on 127.0.0.1
  int threads = 1;        // -t
  int connections = 256;  // -c
  int seconds = 10;       // -d
};

struct WrkResult {
  double requests_per_second = 0;  // "Requests/sec:"
  double p99_us = 0;               // the 99% line of --latency
  double requests = 0;             // "<n> requests in <t>s"
};

// Runs `wrk -t<threads> -c<connections> -d<seconds>s --latency
// http://127.0.0.1:<port>/` and parses its output; wrk is killed if it runs
// 30 s past its duration. Returns "" or what went wrong, including any socket
// error or non-2xx answer that wrk counted: a run with errors gives no figure.
std::string RunWrk(const WrkOptions& options, WrkResult* result);

// Parses the output of wrk --latency. Returns "" or what is missing or wrong.
std::string ParseWrkOutput(const std::string& output, WrkResult* result);

}  // namespace weft::bench::net

#endif  // WEFT_BENCHMARK_NET_WRK_H_
