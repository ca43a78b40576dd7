// Smoke tests of the example programs (examples/): each server runs as a
// process of its own, started with --port=0, whose first stdout line names
// its port; the test talks to it over loopback with plain blocking sockets (a
// client independent of weft), then stops it with SIGTERM or SIGINT and
// checks that it exits 0. Every process is stopped by its pid (SIGKILL) when
// a check fails, and every wait is bounded generously.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "test/test_util.h"

extern char** environ;

namespace {

using weft::testing::Scaled;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Bounds on waits: only a hang exceeds them, even under ThreadSanitizer on a
// loaded 2-core machine.
constexpr auto kStartTimeout = 60s;
constexpr auto kExitTimeout = 10s;
constexpr auto kIoTimeout = 10s;

// ---- Processes ----------------------------------------------------------------

// A program run by the test. Its stdout is read through a pipe; its stderr
// too when asked, else it goes to the test's stderr (CTest shows it on
// failure). The destructor kills a process still running, so a failed
// assertion never leaves a server behind.
class Process {
 public:
  explicit Process(const std::vector<std::string>& args, bool capture_stderr = false) {
    int out[2], err[2] = {-1, -1};
    if (pipe2(out, O_CLOEXEC) != 0) return;
    if (capture_stderr && pipe2(err, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    if (capture_stderr) posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int error =
        posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    stdout_ = out[0];
    if (capture_stderr) {
      ::close(err[1]);
      stderr_ = err[0];
    }
    if (error != 0) {
      ADD_FAILURE() << "cannot start " << args[0] << ": " << std::strerror(error);
      pid_ = -1;
    }
  }

  ~Process() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (stdout_ >= 0) ::close(stdout_);
    if (stderr_ >= 0) ::close(stderr_);
  }

  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  bool running() const { return pid_ > 0; }

  // The next line on stdout without its '\n'; nullopt at the end of the
  // output or after `timeout`.
  std::optional<std::string> ReadLine(Clock::duration timeout) {
    const Clock::time_point until = Clock::now() + timeout;
    for (;;) {
      const std::size_t newline = out_.find('\n');
      if (newline != std::string::npos) {
        std::string line = out_.substr(0, newline);
        out_.erase(0, newline + 1);
        return line;
      }
      if (!ReadSome(stdout_, out_, until)) return std::nullopt;
    }
  }

  // Everything the process writes on stdout (stderr) until it closes it, or
  // until `timeout`.
  std::string ReadAllStdout(Clock::duration timeout) {
    return ReadAll(stdout_, out_, timeout);
  }
  std::string ReadAllStderr(Clock::duration timeout) {
    std::string err;
    return ReadAll(stderr_, err, timeout);
  }

  // Waits for the process to exit: its wait status, or nullopt after
  // `timeout` (the process keeps running; the destructor kills it).
  std::optional<int> Wait(Clock::duration timeout) {
    const Clock::time_point until = Clock::now() + timeout;
    for (;;) {
      int status = 0;
      const pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        pid_ = -1;
        return status;
      }
      if (done < 0 || Clock::now() >= until) return std::nullopt;
      std::this_thread::sleep_for(10ms);  // observing the exit, nothing more
    }
  }

  // Sends `signal` and waits for the exit (see Wait).
  std::optional<int> Signal(int signal, Clock::duration timeout) {
    if (pid_ <= 0) return std::nullopt;
    ::kill(pid_, signal);
    return Wait(timeout);
  }

 private:
  // Appends what `fd` has to `buffer`, waiting until `until`; false at the
  // end of the output or the deadline.
  static bool ReadSome(int fd, std::string& buffer, Clock::time_point until) {
    if (fd < 0) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now())
            .count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  static std::string ReadAll(int fd, std::string& buffer, Clock::duration timeout) {
    const Clock::time_point until = Clock::now() + timeout;
    while (ReadSome(fd, buffer, until)) {
    }
    return std::exchange(buffer, std::string());
  }

  pid_t pid_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  std::string out_;  // read from stdout, not yet returned
};

std::string ProgramPath(const char* name) {
  return std::string(WEFT_EXAMPLES_DIR) + "/" + name;
}

// A server started with --port=0 --workers=2, and the port its first stdout
// line names.
struct Server {
  std::unique_ptr<Process> process;
  std::uint16_t port = 0;
};

::testing::AssertionResult StartServer(const char* name, Server& server) {
  server.process = std::make_unique<Process>(
      std::vector<std::string>{ProgramPath(name), "--port=0", "--workers=2"});
  if (!server.process->running()) return ::testing::AssertionFailure() << "not started";
  const std::optional<std::string> line = server.process->ReadLine(kStartTimeout);
  if (!line) {
    return ::testing::AssertionFailure() << name << " printed no line on stdout within "
                                         << kStartTimeout.count() << " s";
  }
  constexpr std::string_view kPrefix = "listening 127.0.0.1:";
  const std::string digits = line->substr(std::min(line->size(), kPrefix.size()));
  if (line->rfind(kPrefix, 0) != 0 || digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(digits) == 0 || std::stoi(digits) > 65535) {
    return ::testing::AssertionFailure() << name << "'s first line is '" << *line
                                         << "', not 'listening 127.0.0.1:<port>'";
  }
  server.port = static_cast<std::uint16_t>(std::stoi(digits));
  return ::testing::AssertionSuccess();
}

// Signals the server and checks that it exits with status 0 in time.
void ExpectExitsZeroOn(int signal, Server& server) {
  const std::optional<int> status = server.process->Signal(signal, kExitTimeout);
  ASSERT_TRUE(status.has_value())
      << "no exit within " << kExitTimeout.count() << " s of " << strsignal(signal);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "wait status " << *status << " after " << strsignal(signal)
      << (WIFSIGNALED(*status)
              ? std::string(", killed by ") + strsignal(WTERMSIG(*status))
              : std::string(", exit code ") + std::to_string(WEXITSTATUS(*status)));
}

// ---- Loopback sockets ----------------------------------------------------------

// A blocking TCP socket connected to 127.0.0.1, with send and receive
// timeouts so that no call waits past kIoTimeout.
class Socket {
 public:
  explicit Socket(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    timeval timeout{};
    timeout.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(kIoTimeout).count();
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  bool connected() const { return fd_ >= 0; }

  bool Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // `n` bytes, or fewer if the stream ends, fails or times out first.
  std::string Receive(std::size_t n) {
    std::string data(n, '\0');
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::recv(fd_, data.data() + got, n - got, 0);
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    data.resize(got);
    return data;
  }

  // Sends what fits without waiting: the count, or -1 with errno (EAGAIN
  // when the socket buffer is full).
  ssize_t TrySend(std::string_view data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  // Whether the socket becomes writable within `timeout`.
  bool WaitWritable(std::chrono::milliseconds timeout) {
    pollfd p{fd_, POLLOUT, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
  }

  // Whether the peer ends the stream next (nothing more comes before it).
  bool ReceivesEnd() {
    char byte;
    return ::recv(fd_, &byte, 1, 0) == 0;
  }

 private:
  int fd_ = -1;
};

// ---- weft_echo_server ---------------------------------------------------------------

TEST(EchoServerExample, EchoesEveryByteAndExitsZeroOnSigterm) {
  Server server;
  ASSERT_TRUE(StartServer("weft_echo_server", server));
  Socket a(server.port), b(server.port);
  ASSERT_TRUE(a.connected() && b.connected());
  ASSERT_TRUE(a.Send("x"));
  EXPECT_EQ(a.Receive(1), "x");
  // 256 KiB through one connection in 4 KiB steps (so neither side's socket
  // buffer fills), interleaved with small messages on the other.
  std::string chunk(4096, '\0');
  for (int i = 0; i < 64; ++i) {
    for (std::size_t j = 0; j < chunk.size(); ++j) {
      chunk[j] = static_cast<char>((i * 131 + j * 7) & 0xff);
    }
    ASSERT_TRUE(a.Send(chunk));
    ASSERT_EQ(a.Receive(chunk.size()), chunk) << "chunk " << i;
    const std::string small = "message " + std::to_string(i);
    ASSERT_TRUE(b.Send(small));
    ASSERT_EQ(b.Receive(small.size()), small);
  }
  // Both connections are still open: shutdown must end them.
  ExpectExitsZeroOn(SIGTERM, server);
  EXPECT_TRUE(a.ReceivesEnd());
}

// A client that sends and never reads: the server's write back to it blocks
// once both directions' socket buffers are full. SIGTERM must still end that
// connection's fiber, so that the server exits.
TEST(EchoServerExample, ExitsZeroOnSigtermWhileAWriteIsBlocked) {
  Server server;
  ASSERT_TRUE(StartServer("weft_echo_server", server));
  Socket s(server.port);
  ASSERT_TRUE(s.connected());
  const std::string chunk(64 * 1024, 'z');
  std::size_t sent = 0;
  bool stuck = false;
  const Clock::time_point give_up = Clock::now() + 60s;
  while (!stuck && Clock::now() < give_up && sent < (std::size_t{1} << 30)) {
    const ssize_t n = s.TrySend(chunk);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else {
      ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
          << std::strerror(errno);
      // The server takes no more bytes: it is blocked writing to us.
      stuck = !s.WaitWritable(500ms);
    }
  }
  ASSERT_TRUE(stuck) << "the server kept reading " << sent << " bytes never read back";
  ExpectExitsZeroOn(SIGTERM, server);
}

// The server holds many idle connections at once (10,000 in a normal build),
// each answering when spoken to, and still stops in order with all of them
// open.
TEST(EchoServerExample, HoldsManyConnectionsAndExitsZeroOnSigint) {
  std::size_t connections = Scaled(10000, 500);
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < connections + 64) {
    // The server raises its own limit the same way and meets the same bound.
    connections = limit.rlim_cur > 164 ? limit.rlim_cur - 100 : 64;
    std::fprintf(stderr, "open-file limit %llu: testing %zu connections\n",
                 static_cast<unsigned long long>(limit.rlim_cur), connections);
  }
  Server server;
  ASSERT_TRUE(StartServer("weft_echo_server", server));
  std::vector<Socket> sockets;
  sockets.reserve(connections);
  for (std::size_t i = 0; i < connections; ++i) {
    sockets.emplace_back(server.port);
    ASSERT_TRUE(sockets.back().connected())
        << "connection " << i << ": " << std::strerror(errno);
  }
  for (std::size_t i = 0; i < connections; ++i) {
    const std::string message = std::to_string(i) + "\n";
    ASSERT_TRUE(sockets[i].Send(message)) << "connection " << i;
    ASSERT_EQ(sockets[i].Receive(message.size()), message) << "connection " << i;
  }
  ExpectExitsZeroOn(SIGINT, server);
}

// ---- weft_http_hello --------------------------------------------------------------

constexpr std::string_view kOk =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, "
    "World!";
constexpr std::string_view kOkHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n";
constexpr std::string_view kOkClose =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    "Connection: close\r\n\r\nHello, World!";
constexpr std::string_view kOkKeepAlive =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    "Connection: keep-alive\r\n\r\nHello, World!";
constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
    "Connection: close\r\n\r\nBad Request\n";
constexpr std::string_view kNotImplemented =
    "HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n"
    "Connection: close\r\n\r\nNot Implemented\n";

std::string Twice(std::string_view s) { return std::string(s) + std::string(s); }

TEST(HttpHelloExample, AnswersPipelinedSplitAndHttp10Requests) {
  Server server;
  ASSERT_TRUE(StartServer("weft_http_hello", server));
  {
    Socket s(server.port);
    ASSERT_TRUE(s.connected());
    // Two pipelined requests in one write: both replies, in one write.
    ASSERT_TRUE(
        s.Send("GET /a HTTP/1.1\r\nHost: localhost\r\n\r\n"
               "GET /b HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    EXPECT_EQ(s.Receive(2 * kOk.size()), Twice(kOk));
    // One request in three writes. The pauses make separate reads likely on
    // the server; the reply must be the same either way.
    ASSERT_TRUE(s.Send("GET /split HTTP/1.1\r\nHo"));
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(s.Send("st: localhost\r\n"));
    std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(s.Send("\r\n"));
    EXPECT_EQ(s.Receive(kOk.size()), kOk);
    // A body, read and dropped, with the next request (HEAD) right behind it;
    // then a body split across writes.
    ASSERT_TRUE(
        s.Send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
               "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(s.Receive(kOk.size() + kOkHead.size()),
              std::string(kOk) + std::string(kOkHead));
    ASSERT_TRUE(s.Send("PUT /q HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"));
    EXPECT_EQ(s.Receive(kOk.size()), kOk);
    ASSERT_TRUE(
        s.Send("defghij"
               "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_EQ(s.Receive(kOk.size()), kOk);
    // Connection: close is honoured: the reply says so and the server closes.
    ASSERT_TRUE(s.Send("GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
    EXPECT_EQ(s.Receive(kOkClose.size()), kOkClose);
    EXPECT_TRUE(s.ReceivesEnd());
  }
  {
    // HTTP/1.0 closes after the reply unless asked to keep the connection.
    Socket s(server.port);
    ASSERT_TRUE(s.connected());
    ASSERT_TRUE(s.Send("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_EQ(s.Receive(kOkClose.size()), kOkClose);
    EXPECT_TRUE(s.ReceivesEnd());
  }
  {
    Socket s(server.port);
    ASSERT_TRUE(s.connected());
    ASSERT_TRUE(s.Send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    EXPECT_EQ(s.Receive(kOkKeepAlive.size()), kOkKeepAlive);
    ASSERT_TRUE(s.Send("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_EQ(s.Receive(kOkClose.size()), kOkClose);
    EXPECT_TRUE(s.ReceivesEnd());
  }
  // An idle keep-alive connection is open at shutdown.
  Socket idle(server.port);
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(idle.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(idle.Receive(kOk.size()), kOk);
  ExpectExitsZeroOn(SIGTERM, server);
}

TEST(HttpHelloExample, AnswersMalformedRequestsWith400AndCloses) {
  Server server;
  ASSERT_TRUE(StartServer("weft_http_hello", server));
  struct Case {
    const char* what;
    std::string request;
    std::string reply;
  };
  const Case cases[] = {
      {"not a request line", "GARBAGE\r\n\r\n", std::string(kBadRequest)},
      {"a good request, then a bad one, in one write",
       "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /two words HTTP/1.1\r\nHost: x\r\n\r\n",
       std::string(kOk) + std::string(kBadRequest)},
      {"an unknown version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n",
       std::string(kBadRequest)},
      {"a header line without a colon", "GET / HTTP/1.1\r\nHost: x\r\nOops\r\n\r\n",
       std::string(kBadRequest)},
      {"an HTTP/1.1 request without Host", "GET / HTTP/1.1\r\n\r\n",
       std::string(kBadRequest)},
      {"a bad Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
       std::string(kBadRequest)},
      {"a header block over 8 KiB",
       "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n",
       std::string(kBadRequest)},
      {"a chunked body",
       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
       std::string(kNotImplemented)},
  };
  for (const Case& c : cases) {
    Socket s(server.port);
    ASSERT_TRUE(s.connected()) << c.what;
    ASSERT_TRUE(s.Send(c.request)) << c.what;
    EXPECT_EQ(s.Receive(c.reply.size()), c.reply) << c.what;
    EXPECT_TRUE(s.ReceivesEnd()) << c.what;
  }
  ExpectExitsZeroOn(SIGTERM, server);
}

// ---- weft_rpc_server and weft_rpc_client ---------------------------------------------

std::string FrameHeader(std::uint32_t length, std::uint64_t id, std::uint8_t code) {
  std::string header(13, '\0');
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>(length >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) header[4 + i] = static_cast<char>(id >> (56 - 8 * i));
  header[12] = static_cast<char>(code);
  return header;
}

TEST(RpcExample, ClientDemoSucceedsIncludingTheDeadlineCase) {
  Server server;
  ASSERT_TRUE(StartServer("weft_rpc_server", server));
  Process client({ProgramPath("weft_rpc_client"), "--port=" + std::to_string(server.port),
                  "--workers=2", "--calls=" + std::to_string(Scaled(200, 20))});
  ASSERT_TRUE(client.running());
  const std::string output = client.ReadAllStdout(120s);
  const std::optional<int> status = client.Wait(kExitTimeout);
  ASSERT_TRUE(status.has_value()) << "the client did not finish; its output:\n" << output;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "wait status " << *status << "; the client's output:\n"
      << output;
  EXPECT_NE(output.find("failed with timed_out"), std::string::npos) << output;
  EXPECT_NE(output.find("late reply came and was discarded"), std::string::npos)
      << output;
  EXPECT_NE(output.find("OK: every call behaved as expected"), std::string::npos)
      << output;
  ExpectExitsZeroOn(SIGTERM, server);
}

TEST(RpcExample, ServerRefusesAnOversizedFrameAndCloses) {
  Server server;
  ASSERT_TRUE(StartServer("weft_rpc_server", server));
  Socket s(server.port);
  ASSERT_TRUE(s.connected());
  // A frame announcing 1 MiB + 1 byte of payload: refused before it is read.
  ASSERT_TRUE(s.Send(FrameHeader(9 + (1u << 20) + 1, 42, /*echo*/ 1)));
  const std::string header = s.Receive(13);
  ASSERT_EQ(header.size(), 13u);
  const auto byte = [&](int i) { return static_cast<std::uint8_t>(header[i]); };
  const std::uint32_t length = std::uint32_t{byte(0)} << 24 |
                               std::uint32_t{byte(1)} << 16 |
                               std::uint32_t{byte(2)} << 8 | byte(3);
  EXPECT_EQ(header.substr(4, 8), FrameHeader(0, 42, 0).substr(4, 8)) << "the call id";
  EXPECT_EQ(byte(12), 3) << "the status: RpcError::kFrameTooLarge";
  ASSERT_GE(length, 9u);
  const std::string why = s.Receive(length - 9);
  EXPECT_NE(why.find("limit"), std::string::npos) << why;
  EXPECT_TRUE(s.ReceivesEnd());
  ExpectExitsZeroOn(SIGTERM, server);
}

// SIGTERM while requests are being handled: a "sleep" (1 s, the longest) and
// a "fanout" whose backend calls are in flight. The server still exits 0.
TEST(RpcExample, ExitsZeroOnSigtermWithCallsInFlight) {
  Server server;
  ASSERT_TRUE(StartServer("weft_rpc_server", server));
  Socket s(server.port);
  ASSERT_TRUE(s.connected());
  const std::string thousand_ms("\0\0\x03\xe8", 4);
  ASSERT_TRUE(s.Send(FrameHeader(9 + 4, 1, /*sleep*/ 2) + thousand_ms));
  ASSERT_TRUE(s.Send(FrameHeader(9 + 2, 2, /*fanout*/ 3) + "hi"));
  // The fanout's reply shows that both requests were read; the sleep is
  // still going.
  const std::string reply = s.Receive(13 + 4);
  ASSERT_EQ(reply.size(), 17u);
  EXPECT_EQ(reply.substr(4, 9), FrameHeader(0, 2, 0).substr(4, 9));
  EXPECT_EQ(reply.substr(13), "hihi");
  ExpectExitsZeroOn(SIGTERM, server);
}

// ---- The command line -----------------------------------------------------------------

TEST(ExampleCommandLine, RejectsOutOfRangeFlagsWithExitCode2) {
  struct Case {
    const char* program;
    std::vector<std::string> flags;
    std::vector<std::string> message;  // each must appear on stderr
  };
  const Case cases[] = {
      {"weft_echo_server", {"--port=70000"}, {"--port=70000", "0..65535"}},
      {"weft_echo_server", {"--workers=0"}, {"--workers=0", "1..1024"}},
      {"weft_http_hello", {"--port=70000"}, {"--port=70000", "0..65535"}},
      {"weft_http_hello", {"--port=0", "--workers=0"}, {"--workers=0", "1..1024"}},
      {"weft_rpc_server", {"--port=-1"}, {"--port=-1", "0..65535"}},
      {"weft_rpc_server", {"--workers=2000"}, {"--workers=2000", "1..1024"}},
      {"weft_rpc_client", {}, {"--port", "1..65535"}},
      {"weft_rpc_client", {"--port=1", "--calls=0"}, {"--calls=0", "1..10000"}},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args{ProgramPath(c.program)};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    Process process(args, /*capture_stderr=*/true);
    ASSERT_TRUE(process.running());
    const std::string err = process.ReadAllStderr(kStartTimeout);
    const std::optional<int> status = process.Wait(kExitTimeout);
    ASSERT_TRUE(status.has_value()) << c.program << " did not exit";
    std::string command = c.program;
    for (const std::string& flag : c.flags) command += " " + flag;
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 2)
        << command << ": wait status " << *status;
    for (const std::string& part : c.message) {
      EXPECT_NE(err.find(part), std::string::npos)
          << command << ": stderr should name '" << part << "':\n"
          << err;
    }
  }
}

}  // namespace
