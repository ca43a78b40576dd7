// weft_rpc_server: the server side of the example RPC protocol (frame.h).
//
//   weft_rpc_server --port=0 --workers=2
//   weft_rpc_client --port=<the port it printed>
//
// The layout of an RPC server core on weft:
//   - an acceptor fiber per listener;
//   - a fiber per connection that reads request frames, one after another;
//   - a fiber per request that runs the handler and writes the reply. Slow
//     handlers hold up nothing else on the connection, so replies go out in
//     the order handlers finish, not the order requests came; a FiberMutex
//     per connection keeps two replies from interleaving on the socket.
// Handlers are plain blocking code: "sleep" calls this_fiber::SleepFor, and
// "fanout" calls two backends at once through rpc::Channel (each call a
// Future), waits for both with WhenAll, and replies with both results.
//
// The backends run in this same process: two more RpcServer instances, each
// on its own 127.0.0.1 port (chosen by the system, logged on stderr), reached
// over TCP through a Channel each, exactly as remote services would be. That
// keeps the example one program with one command line; pointing the channels
// at other hosts changes nothing else.
//
// Command line, stdout and signals as weft_echo_server's (see there):
//   --port=N (0..65535, 0: any free port)  --workers=N (1..1024)  --weft_*
// The first stdout line is "listening 127.0.0.1:<port>" (the front server);
// logs go to stderr; SIGTERM or SIGINT: orderly shutdown, exit 0; a flag out
// of range: exit 2.
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "examples/rpc/channel.h"
#include "examples/rpc/frame.h"
#include "examples/server_support.h"
#include "gflags/gflags.h"
#include "runtime/fiber.h"
#include "runtime/future/blocking_get.h"
#include "runtime/future/when_all.h"
#include "runtime/io/tcp.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_mutex.h"
#include "runtime/this_fiber.h"

DEFINE_int32(port, 0,
             "TCP port to listen on at 127.0.0.1, 0..65535 (0: pick a free port)");
DEFINE_int32(workers, 2,
             "fiber worker threads (RuntimeOptions::concurrency_hint), 1..1024");

namespace {

constexpr char kProgram[] = "weft_rpc_server";

// How long "fanout" gives its backends: a stuck backend costs a request this
// much at most.
constexpr std::chrono::seconds kBackendTimeout{1};

class RpcServer {
 public:
  // `name` goes into log lines. `backends` are what "fanout" calls: two
  // channels, or none (then "fanout" fails with RpcError::kBadRequest).
  RpcServer(std::string name, std::vector<rpc::Channel*> backends)
      : name_(std::move(name)), backends_(std::move(backends)) {}

  std::error_code Listen(std::uint16_t port) {
    return listener_.Listen("127.0.0.1", port, SOMAXCONN);
  }
  std::uint16_t port() const { return listener_.LocalPort(); }

  void Start() {
    acceptor_ = weft::Fiber([this] { AcceptLoop(); });
  }

  // Stops accepting and ends every connection. Requests being handled run to
  // the end (their replies fail to go out); ~Runtime waits for them.
  void Stop() {
    stopping_ = true;
    listener_.Close();  // a waiting Accept() returns operation_canceled
    acceptor_.Join();
    registry_.ShutdownAll();
  }

 private:
  // Shared by the connection's reader fiber and its request fibers; the last
  // of them to finish closes the socket.
  struct Connection {
    Connection(weft::io::TcpStream s, examples::ConnectionRegistry& r)
        : stream(std::move(s)), registry(r) {}
    // Unregisters before ~TcpStream closes the socket: the registry never
    // shuts down a descriptor number that may have been reused.
    ~Connection() { registry.Remove(stream.fd()); }

    weft::io::TcpStream stream;
    weft::FiberMutex write_mutex;  // one reply frame at a time
    examples::ConnectionRegistry& registry;
  };

  void AcceptLoop() {
    for (;;) {
      auto [stream, error] = listener_.Accept();
      if (error) {
        // Stop() closed the listener (see weft_echo_server).
        if (stopping_ || error == std::errc::operation_canceled ||
            error == weft::io::Error::kNotOpen) {
          return;
        }
        // Out of descriptors and the like: Accept() has backed off already.
        std::fprintf(stderr, "%s: %s: accept: %s\n", kProgram, name_.c_str(),
                     error.message().c_str());
        continue;
      }
      auto connection = std::make_shared<Connection>(std::move(stream), registry_);
      if (!weft::StartFiberDetached([this, connection] { ReadRequests(connection); })) {
        std::fprintf(stderr, "%s: %s: cannot start a fiber; connection dropped\n",
                     kProgram, name_.c_str());
      }
    }
  }

  // The connection's fiber: reads requests and starts a fiber for each.
  void ReadRequests(const std::shared_ptr<Connection>& connection) {
    if (!registry_.Add(connection->stream.fd())) return;  // shutting down
    for (;;) {
      rpc::Frame request;
      const std::error_code error = rpc::ReadFrame(connection->stream, request);
      if (error == rpc::RpcError::kFrameTooLarge) {
        // The frame is not read, so the next one cannot be found: answer this
        // one and close.
        std::fprintf(stderr,
                     "%s: %s: a frame from %s is over the %u-byte payload limit; "
                     "refused, connection closed\n",
                     kProgram, name_.c_str(), connection->stream.PeerAddress().c_str(),
                     rpc::kMaxPayload);
        SendReply(*connection,
                  ErrorReply(request.id, rpc::RpcError::kFrameTooLarge,
                             "frame over the " + std::to_string(rpc::kMaxPayload) +
                                 "-byte payload limit"));
        return;
      }
      if (error) {
        if (!examples::PeerWentAway(error)) {
          std::fprintf(stderr, "%s: %s: read: %s\n", kProgram, name_.c_str(),
                       error.message().c_str());
        }
        return;
      }
      // A fiber per request: this loop goes straight back to reading.
      if (!weft::StartFiberDetached(
              [this, connection, request = std::move(request)]() mutable {
                SendReply(*connection, Handle(std::move(request)));
              })) {
        std::fprintf(stderr, "%s: %s: cannot start a fiber; connection closed\n",
                     kProgram, name_.c_str());
        return;
      }
    }
  }

  static rpc::Frame ErrorReply(std::uint64_t id, rpc::RpcError error, std::string why) {
    return rpc::Frame{id, static_cast<std::uint8_t>(error), std::move(why)};
  }

  // Runs in the request's own fiber; may block (park) as long as it likes.
  rpc::Frame Handle(rpc::Frame request) {
    const std::uint64_t id = request.id;
    switch (static_cast<rpc::Method>(request.code)) {
      case rpc::Method::kEcho:
        return rpc::Frame{id, 0, std::move(request.payload)};
      case rpc::Method::kSleep: {
        if (request.payload.size() != 4) {
          return ErrorReply(id, rpc::RpcError::kBadRequest,
                            "sleep takes a 4-byte big-endian count of milliseconds");
        }
        const auto ms = static_cast<std::uint32_t>(rpc::GetBigEndian(
            reinterpret_cast<const unsigned char*>(request.payload.data()), 4));
        if (ms > rpc::kMaxSleepMs) {
          return ErrorReply(id, rpc::RpcError::kBadRequest,
                            "sleep: " + std::to_string(ms) + " ms is over the limit of " +
                                std::to_string(rpc::kMaxSleepMs) + " ms");
        }
        weft::this_fiber::SleepFor(
            std::chrono::milliseconds(ms));  // parks this fiber only
        return rpc::Frame{id, 0, {}};
      }
      case rpc::Method::kFanout:
        return Fanout(std::move(request));
    }
    return ErrorReply(id, rpc::RpcError::kUnknownMethod,
                      "unknown method " + std::to_string(request.code));
  }

  // Calls "echo" on both backends at once and replies with both replies.
  rpc::Frame Fanout(rpc::Frame request) {
    if (backends_.size() != 2) {
      return ErrorReply(request.id, rpc::RpcError::kBadRequest,
                        "fanout: " + name_ + " has no backends");
    }
    // One deadline for both calls, fixed now.
    const weft::Deadline deadline = kBackendTimeout;
    weft::Future<rpc::Reply> first =
        backends_[0]->Call(rpc::Method::kEcho, request.payload, deadline);
    weft::Future<rpc::Reply> second =
        backends_[1]->Call(rpc::Method::kEcho, request.payload, deadline);
    // Both calls are in flight; this fiber parks until both have ended.
    auto [a, b] = weft::BlockingGet(weft::WhenAll(std::move(first), std::move(second)));
    for (const rpc::Reply* reply : {&a, &b}) {
      if (reply->error) {
        return ErrorReply(request.id, rpc::RpcError::kBackendFailed,
                          "fanout: backend " + std::to_string(reply == &a ? 1 : 2) +
                              ": " + reply->error.message());
      }
    }
    return rpc::Frame{request.id, 0, std::move(a.payload) + b.payload};
  }

  void SendReply(Connection& connection, const rpc::Frame& reply) {
    std::lock_guard<weft::FiberMutex> lock(connection.write_mutex);
    if (const std::error_code error = rpc::WriteFrame(connection.stream, reply)) {
      if (!examples::PeerWentAway(error)) {
        std::fprintf(stderr, "%s: %s: write: %s\n", kProgram, name_.c_str(),
                     error.message().c_str());
      }
      // A frame cut short leaves the stream out of step: end the connection.
      ::shutdown(connection.stream.fd(), SHUT_RDWR);
    }
  }

  const std::string name_;
  const std::vector<rpc::Channel*> backends_;
  weft::io::TcpListener listener_;
  weft::Fiber acceptor_;
  std::atomic<bool> stopping_{false};
  examples::ConnectionRegistry registry_;
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("weft_rpc_server --port=N --workers=N [--weft_...]");
  gflags::ParseCommandLineFlags(&argc, &argv, /*remove_flags=*/true);
  examples::CheckNoArguments(kProgram, argc, argv);
  examples::CheckFlagRange(kProgram, "port", FLAGS_port, 0, 65535);
  examples::CheckFlagRange(kProgram, "workers", FLAGS_workers, 1, 1024);
  const weft::RuntimeOptions options = examples::RuntimeOptionsOrExit(kProgram, FLAGS_workers);

  const sigset_t signals = examples::BlockTerminationSignals();  // before any thread starts
  examples::RaiseOpenFileLimit(kProgram);

  // Everything the fibers use is declared before the runtime, so that it
  // outlives them: ~Runtime waits for every fiber first.
  RpcServer backend1("backend 1", {});
  RpcServer backend2("backend 2", {});
  rpc::Channel channel1, channel2;
  RpcServer front("front", {&channel1, &channel2});
  weft::Runtime runtime(options);

  if (std::error_code error = backend1.Listen(0); error || (error = backend2.Listen(0))) {
    std::fprintf(stderr, "%s: cannot listen for the backends: %s\n", kProgram,
                 error.message().c_str());
    return 1;
  }
  if (const std::error_code error =
          front.Listen(static_cast<std::uint16_t>(FLAGS_port))) {
    std::fprintf(stderr, "%s: cannot listen on 127.0.0.1:%d: %s\n", kProgram, FLAGS_port,
                 error.message().c_str());
    return 1;
  }
  // The kernel completes these connections before anyone accepts them.
  if (std::error_code error =
          channel1.Connect("127.0.0.1", backend1.port(), std::chrono::seconds(5));
      error ||
      (error = channel2.Connect("127.0.0.1", backend2.port(), std::chrono::seconds(5)))) {
    std::fprintf(stderr, "%s: cannot connect to the backends: %s\n", kProgram,
                 error.message().c_str());
    channel1.Close();  // stops its reader fiber, which ~Runtime would wait for
    return 1;
  }
  backend1.Start();
  backend2.Start();
  front.Start();
  std::fprintf(stderr, "%s: backends on 127.0.0.1:%u and 127.0.0.1:%u\n", kProgram,
               static_cast<unsigned>(backend1.port()),
               static_cast<unsigned>(backend2.port()));
  std::printf("listening 127.0.0.1:%u\n", static_cast<unsigned>(front.port()));
  std::fflush(stdout);

  const int signal = examples::WaitForSignal(signals);
  std::fprintf(stderr, "%s: %s, shutting down\n", kProgram, strsignal(signal));
  // Outside in: no new requests, then no backend calls, then the backends.
  front.Stop();
  channel1.Close();  // "fanout" calls still waiting fail now
  channel2.Close();
  backend1.Stop();
  backend2.Stop();
  return 0;  // ~Runtime waits for the request fibers still finishing
}
