// weft_echo_server: a TCP echo server with one fiber per connection.
//
//   weft_echo_server --port=0 --workers=2
//
// The shape of every weft server, in its smallest form:
//   - main() owns the runtime and waits for SIGTERM or SIGINT on a plain thread;
//   - an acceptor fiber takes connections from the listener;
//   - each connection gets a fiber that reads and writes with sequential code.
// A fiber waiting in Read() is parked: it holds its stack (the pages it has
// touched) and nothing else, no thread. The buffer is 1 KiB on that stack and
// idle connections are never closed, so 10,000 idle connections are 10,000
// parked fibers on a couple of worker threads.
//
// Command line (weft_http_hello and weft_rpc_server follow it too; a benchmark
// harness depends on it):
//   --port=N     TCP port on 127.0.0.1 (never another address), 0..65535;
//                0 picks a free port
//   --workers=N  fiber worker threads (RuntimeOptions::concurrency_hint), 1..1024
//   --weft_*     the runtime's own flags (e.g. --weft_fiber_stack_size)
// The first line on stdout is exactly "listening 127.0.0.1:<port>", flushed at
// once; everything else (logs) goes to stderr. SIGTERM or SIGINT shuts the
// server down in order and it exits 0. A flag out of range exits 2 with a
// message naming the flag and its range; a port that cannot be bound exits 1.
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "examples/server_support.h"
#include "gflags/gflags.h"
#include "runtime/fiber.h"
#include "runtime/io/tcp.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_mutex.h"

DEFINE_int32(port, 0,
             "TCP port to listen on at 127.0.0.1, 0..65535 (0: pick a free port)");
DEFINE_int32(workers, 2,
             "fiber worker threads (RuntimeOptions::concurrency_hint), 1..1024");

namespace {

constexpr char kProgram[] = "weft_echo_server";

// Reads what the client sends and writes it back until the client closes.
// No deadline on Read: idle connections stay open as long as the client wants.
void Echo(weft::io::TcpStream& stream) {
  char buffer[1024];
  for (;;) {
    const auto [n, read_error] = stream.Read(buffer, sizeof(buffer));
    if (read_error) {
      if (!examples::PeerWentAway(read_error)) {
        std::fprintf(stderr, "%s: read: %s\n", kProgram, read_error.message().c_str());
      }
      return;
    }
    if (n == 0) return;  // the client closed its end
    const auto [written, write_error] = stream.WriteAll(buffer, n);
    if (write_error) {
      if (!examples::PeerWentAway(write_error)) {
        std::fprintf(stderr, "%s: write after %zu bytes: %s\n", kProgram, written,
                     write_error.message().c_str());
      }
      return;
    }
  }
}

class EchoServer {
 public:
  std::error_code Listen(std::uint16_t port) {
    return listener_.Listen("127.0.0.1", port, SOMAXCONN);
  }
  std::uint16_t port() const { return listener_.LocalPort(); }

  void Start() {
    acceptor_ = weft::Fiber([this] { AcceptLoop(); });
  }

  // Stops accepting, then ends every connection. Their fibers finish by
  // themselves soon after; TerminateRuntime() (~Runtime) waits for them.
  void Stop() {
    stopping_ = true;   // first: the acceptor reads it after Close() wakes it
    listener_.Close();  // a waiting Accept() returns operation_canceled
    acceptor_.Join();   // no connection is registered after this
    registry_.ShutdownAll();
  }

 private:
  void AcceptLoop() {
    for (;;) {
      auto [stream, error] = listener_.Accept();
      if (error) {
        // Stop() closed the listener: a waiting Accept returns operation_canceled,
        // one started after returns kNotOpen, and one whose start raced with
        // Close() may fail some other way (EBADF); stopping_ covers that.
        if (stopping_ || error == std::errc::operation_canceled ||
            error == weft::io::Error::kNotOpen) {
          return;
        }
        // Out of descriptors and the like: Accept() has backed off already.
        std::fprintf(stderr, "%s: accept: %s\n", kProgram, error.message().c_str());
        continue;
      }
      // One fiber per connection. TcpListener::Accept has set TCP_NODELAY.
      if (!weft::StartFiberDetached(
              [this, s = std::move(stream)]() mutable { Serve(std::move(s)); })) {
        std::fprintf(stderr, "%s: cannot start a fiber; connection dropped\n", kProgram);
      }
    }
  }

  void Serve(weft::io::TcpStream stream) {
    if (!registry_.Add(stream.fd())) return;  // shutting down
    Echo(stream);
    registry_.Remove(stream.fd());
  }  // ~TcpStream closes the socket

  weft::io::TcpListener listener_;
  weft::Fiber acceptor_;
  std::atomic<bool> stopping_{false};
  examples::ConnectionRegistry registry_;
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("weft_echo_server --port=N --workers=N [--weft_...]");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  examples::CheckNoArguments(kProgram, argc, argv);
  examples::CheckFlagRange(kProgram, "port", FLAGS_port, 0, 65535);
  examples::CheckFlagRange(kProgram, "workers", FLAGS_workers, 1, 1024);
  const weft::RuntimeOptions options = examples::RuntimeOptionsOrExit(kProgram, FLAGS_workers);

  const sigset_t signals = examples::BlockTerminationSignals();  // before any thread starts
  examples::RaiseOpenFileLimit(kProgram);

  // Declared before the runtime so that it outlives it: ~Runtime waits for
  // the connection fibers, which use the server to the end.
  EchoServer server;
  weft::Runtime runtime(options);
  if (const std::error_code error =
          server.Listen(static_cast<std::uint16_t>(FLAGS_port))) {
    std::fprintf(stderr, "%s: cannot listen on 127.0.0.1:%d: %s\n", kProgram, FLAGS_port,
                 error.message().c_str());
    return 1;
  }
  std::printf("listening 127.0.0.1:%u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  server.Start();

  const int signal = examples::WaitForSignal(signals);
  std::fprintf(stderr, "%s: %s, shutting down\n", kProgram, strsignal(signal));
  server.Stop();
  return 0;  // ~Runtime: every connection fiber finishes, then the workers stop
}
