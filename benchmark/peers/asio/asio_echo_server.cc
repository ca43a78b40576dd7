// weft_asio_echo: the Asio peer of the echo workloads W11 and W12
// (docs/benchmarks.md). Standalone Asio (libasio-dev), written the way Asio's
// own examples and its documentation's "io_context per thread" design
// recommend: `--threads` threads, each running its own io_context; the acceptor
// lives on the first, and each accepted connection goes to the next context in
// turn, where it stays. A connection is a session object holding its socket and
// a 1 KiB buffer (the size of Asio's echo example, and of every echo server of
// the workloads); it always has one operation pending: a read, or the write of
// what it read. An idle connection (W12) is one pending async_read_some.
//
//   weft_asio_echo [--port=0] [--threads=2]
//
// Binds 127.0.0.1 only (port 0: the kernel picks one), prints exactly one line,
// `listening 127.0.0.1:<port>`, once it accepts connections, and exits with
// status 0 on SIGTERM or SIGINT.
#include <gflags/gflags.h>

#include <asio.hpp>
#include <cstdio>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

DEFINE_int32(port, 0, "Port on 127.0.0.1 to listen on; 0 lets the kernel pick one");
DEFINE_int32(threads, 2, "Threads, each running its own io_context");

namespace {

constexpr std::size_t kBufferBytes = 1024;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

  // Runs on the socket's own io_context.
  void Read() {
    socket_.async_read_some(
        asio::buffer(buffer_),
        [self = shared_from_this()](std::error_code error, std::size_t bytes) {
          if (!error) self->Write(bytes);
        });
  }

 private:
  void Write(std::size_t bytes) {
    asio::async_write(socket_, asio::buffer(buffer_, bytes),
                      [self = shared_from_this()](std::error_code error, std::size_t) {
                        if (!error) self->Read();
                      });
  }

  asio::ip::tcp::socket socket_;
  char buffer_[kBufferBytes];
};

class Server {
 public:
  explicit Server(int threads) : contexts_(threads) {
    for (auto& context : contexts_) {
      // Hint 1: one thread runs each context.
      context = std::make_unique<asio::io_context>(1);
    }
  }

  // Binds and listens, and from then on ends Run() at SIGTERM or SIGINT;
  // returns the port.
  unsigned short Listen(unsigned short port) {
    signals_ = std::make_unique<asio::signal_set>(*contexts_[0], SIGTERM, SIGINT);
    signals_->async_wait([this](std::error_code, int) {
      for (auto& context : contexts_) context->stop();
    });
    acceptor_ = std::make_unique<asio::ip::tcp::acceptor>(
        *contexts_[0],
        asio::ip::tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port));
    Accept();
    return acceptor_->local_endpoint().port();
  }

  // Runs every context on its own thread until SIGTERM or SIGINT.
  void Run() {
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& context : contexts_) guards.push_back(asio::make_work_guard(*context));
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
      threads.emplace_back([context = contexts_[i].get()] { context->run(); });
    }
    contexts_[0]->run();
    for (std::thread& thread : threads) thread.join();
  }

 private:
  void Accept() {
    asio::io_context& home = *contexts_[next_context_];
    next_context_ = (next_context_ + 1) % contexts_.size();
    acceptor_->async_accept(
        home, [this](std::error_code error, asio::ip::tcp::socket socket) {
          if (!error) {
            socket.set_option(asio::ip::tcp::no_delay(true), error);
            const auto executor = socket.get_executor();
            auto session = std::make_shared<Session>(std::move(socket));
            // The first read is started by the session's own thread, like all the
            // others.
            asio::post(executor, [session] { session->Read(); });
          }
          Accept();
        });
  }

  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::unique_ptr<asio::signal_set> signals_;
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::size_t next_context_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("weft_asio_echo [--port=0] [--threads=2]: an Asio echo server");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    std::fprintf(stderr, "weft_asio_echo: --port is %d; it must be 0 to 65535\n",
                 FLAGS_port);
    return 2;
  }
  if (FLAGS_threads < 1 || FLAGS_threads > 256) {
    std::fprintf(stderr, "weft_asio_echo: --threads is %d; it must be 1 to 256\n",
                 FLAGS_threads);
    return 2;
  }
  try {
    Server server(FLAGS_threads);
    const unsigned short port = server.Listen(static_cast<unsigned short>(FLAGS_port));
    std::printf("listening 127.0.0.1:%u\n", port);
    std::fflush(stdout);
    server.Run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft_asio_echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
