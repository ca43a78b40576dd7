// weft_accept_bench: connection churn against a weft server, for each way
// Accept can wait: epoll, the io_uring socket engine with one accept request
// per waiting call, and the io_uring socket engine with a multishot accept
// standing on the listener (runtime/io/detail/accept_stream.h). Rounds
// alternate the three, so that the shared machine's drift falls on each alike.
//
// The server (2 workers) runs one acceptor fiber, or --acceptors of them, and a
// fiber per connection that echoes one message and closes once the client has.
// The clients are --clients plain threads, outside weft, each in a loop:
// connect to 127.0.0.1, send --message_bytes, read the echo, close with a
// reset (no TIME_WAIT left behind). Prints connections per second and the 99th
// percentile of a connection's life (connect to echo) for each engine, the
// median over the rounds.
//
//   weft_accept_bench [--seconds=2] [--rounds=3] [--clients=2] [--acceptors=1]
//                     [--message_bytes=64]
#include <arpa/inet.h>
#include <gflags/gflags.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/bench_main.h"
#include "runtime/fiber.h"
#include "runtime/io/detail/accept_stream.h"
#include "runtime/io/fd.h"
#include "runtime/runtime.h"

DEFINE_double(seconds, 2, "Seconds per measurement.");
DEFINE_uint32(rounds, 3, "Rounds; each measures every engine once.");
DEFINE_uint32(clients, 2, "Client threads, each with one connection at a time.");
DEFINE_uint32(acceptors, 1, "Fibers accepting on the listener.");
DEFINE_uint32(message_bytes, 64, "Bytes each connection sends and gets back.");

namespace {

using Clock = std::chrono::steady_clock;

struct Engine {
  const char* name;
  const char* io_engine;
  bool multishot;
};

constexpr Engine kEngines[] = {
    {"epoll", "epoll", false},
    {"io_uring, one accept per call", "io_uring", false},
    {"io_uring, multishot accept", "io_uring", true},
};

struct Round {
  double per_second = 0;
  double p99_us = 0;
  std::string error;
};

bool ReadAll(int fd, char* buf, std::size_t n) {
  while (n > 0) {
    const ssize_t got = read(fd, buf, n);
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      return false;
    }
    buf += got;
    n -= static_cast<std::size_t>(got);
  }
  return true;
}

// One client thread's loop; its connections' lives go to `lives_ns`.
std::string Client(std::uint16_t port, Clock::time_point end,
                   std::vector<std::int64_t>* lives_ns) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::vector<char> message(FLAGS_message_bytes, 'x'), echo(FLAGS_message_bytes);
  while (Clock::now() < end) {
    const auto start = Clock::now();
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return std::string("socket: ") + std::strerror(errno);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int error = errno;
      close(fd);
      return std::string("connect: ") + std::strerror(error);
    }
    if (write(fd, message.data(), message.size()) != static_cast<ssize_t>(message.size()) ||
        !ReadAll(fd, echo.data(), echo.size()) || echo != message) {
      close(fd);
      return "the echo did not come back whole";
    }
    lives_ns->push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
    const linger reset{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close(fd);
  }
  return "";
}

Round Measure(const Engine& engine) {
  Round round;
  weft::RuntimeOptions options = weft::RuntimeOptions::FromFlags();
  options.concurrency_hint = 2;
  options.io_engine = engine.io_engine;
  weft::detail::SetMultishotAcceptForTesting(engine.multishot);
  weft::StartRuntime(options);
  std::atomic<int> listener{-1};
  std::atomic<std::uint16_t> port{0};
  weft::Fiber([&] {
    const int fd = weft::io::Socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(fd, 1024) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      weft::io::Close(fd);
      return;
    }
    port = ntohs(addr.sin_port);
    listener = fd;
  }).Join();
  if (listener < 0) {
    weft::TerminateRuntime();
    round.error = "cannot listen on 127.0.0.1";
    return round;
  }
  std::vector<weft::Fiber> acceptors;
  for (std::uint32_t i = 0; i < FLAGS_acceptors; ++i) {
    acceptors.emplace_back([&] {
      for (;;) {
        const int fd = weft::io::Accept(listener, nullptr, nullptr);
        if (fd < 0) {
          if (errno == EMFILE || errno == ENFILE || errno == ECONNABORTED) continue;
          return;  // the listener closed
        }
        weft::StartFiberDetached([fd] {
          std::vector<char> buf(FLAGS_message_bytes);
          std::size_t got = 0;
          while (got < buf.size()) {
            const ssize_t n = weft::io::Read(fd, buf.data() + got, buf.size() - got);
            if (n <= 0) break;
            got += static_cast<std::size_t>(n);
          }
          if (got == buf.size()) weft::io::Write(fd, buf.data(), buf.size());
          char end;
          weft::io::Read(fd, &end, 1);  // the client's close
          weft::io::Close(fd);
        });
      }
    });
  }
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(FLAGS_seconds));
  std::vector<std::vector<std::int64_t>> lives(FLAGS_clients);
  std::vector<std::string> errors(FLAGS_clients);
  std::vector<std::thread> clients;
  for (std::uint32_t i = 0; i < FLAGS_clients; ++i) {
    clients.emplace_back([&, i] { errors[i] = Client(port, end, &lives[i]); });
  }
  for (std::thread& client : clients) client.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  weft::Fiber([&] { weft::io::Close(listener); }).Join();
  for (weft::Fiber& acceptor : acceptors) acceptor.Join();
  weft::TerminateRuntime();
  weft::detail::SetMultishotAcceptForTesting(true);  // the default
  std::vector<std::int64_t> all;
  for (std::uint32_t i = 0; i < FLAGS_clients; ++i) {
    if (!errors[i].empty()) round.error = errors[i];
    all.insert(all.end(), lives[i].begin(), lives[i].end());
  }
  if (all.empty()) {
    if (round.error.empty()) round.error = "no connection completed";
    return round;
  }
  std::sort(all.begin(), all.end());
  round.per_second = static_cast<double>(all.size()) / elapsed;
  round.p99_us = static_cast<double>(all[all.size() * 99 / 100]) / 1000.0;
  return round;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

int Run(const weft::bench::Mode& mode) {
  if (mode.quick) {
    FLAGS_seconds = std::min(FLAGS_seconds, 0.5);
    FLAGS_rounds = 1;
  }
  constexpr std::size_t kCount = sizeof(kEngines) / sizeof(kEngines[0]);
  std::vector<double> per_second[kCount], p99[kCount];
  for (std::uint32_t r = 0; r < FLAGS_rounds; ++r) {
    for (std::size_t e = 0; e < kCount; ++e) {
      const Round round = Measure(kEngines[e]);
      if (!round.error.empty()) {
        std::fprintf(stderr, "weft_accept_bench: %s: %s\n", kEngines[e].name,
                     round.error.c_str());
        return 1;
      }
      per_second[e].push_back(round.per_second);
      p99[e].push_back(round.p99_us);
    }
  }
  std::printf("connection churn: %u client threads, %u acceptor fiber(s), %u-byte echo, "
              "%.1f s x %u rounds (medians)\n",
              FLAGS_clients, FLAGS_acceptors, FLAGS_message_bytes, FLAGS_seconds,
              FLAGS_rounds);
  std::printf("%-32s %14s %10s %10s\n", "engine", "connections/s", "p99 us", "vs epoll");
  const double base = Median(per_second[0]);
  for (std::size_t e = 0; e < kCount; ++e) {
    const double rate = Median(per_second[e]);
    std::printf("%-32s %14.0f %10.1f %9.2fx\n", kEngines[e].name, rate, Median(p99[e]),
                rate / base);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::bench::Program program;
  program.about =
      "weft_accept_bench: connection churn (connect, one echo, close) from plain client "
      "threads against a weft server, with Accept waiting through epoll, through one "
      "io_uring accept request per call, and through a multishot accept: connections "
      "per second and p99 of a connection's life.\n";
  program.quick = "one round of 0.5 s per engine";
  program.runtime_flags = "; concurrency_hint (2) and io_engine are set per measurement";
  program.own_flags =
      "  [--seconds=2] [--rounds=3] [--clients=2] [--acceptors=1] [--message_bytes=64]\n"
      "          time per measurement, rounds (each measures every engine), client\n"
      "          threads, acceptor fibers, bytes echoed per connection\n";
  program.google_benchmark = false;
  return weft::bench::Main(program, argc, argv, Run);
}
