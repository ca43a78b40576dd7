// Accept with the io_uring socket engine, where a listener's multishot accept
// (runtime/io/detail/accept_stream.h) takes connections for the calls that
// wait: each connection reaches exactly one caller, fibers and plain threads
// alike, with its peer's address; Close() closes the connections the stream
// held; a closed listener refuses connections once Close() returned;
// connections survive the runtime's end; and with multishot accept
// turned off the one-shot requests do the same.
#include "runtime/io/detail/accept_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/io/fd.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"
#include "test/io/io_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::ConnectTo;
using testing::Listen;
using testing::PollUntil;
using testing::ReadExactly;
using testing::Scaled;

// What a client sends first: its number and the port it connects from.
struct Hello {
  std::uint32_t id;
  std::uint16_t port;
};

std::uint16_t LocalPort(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

// Connects to `port` and says hello; the connected socket, or -1.
int ConnectAndSayHello(std::uint16_t port, std::uint32_t id) {
  const int fd = ConnectTo(port);
  if (fd < 0) return -1;
  const Hello hello{id, LocalPort(fd)};
  if (io::Write(fd, &hello, sizeof(hello)) != static_cast<ssize_t>(sizeof(hello))) {
    io::Close(fd);
    return -1;
  }
  return fd;
}

// Connecting to `port`, whose listener was closed, is refused (or reset at
// once, ClosedListenerRefuses).
void ExpectRefused(std::uint16_t port, int round) {
  EXPECT_TRUE(testing::ClosedListenerRefuses(port, /*ring_engine=*/true))
      << "round " << round;
}

// Has a fiber wait in Accept on `listener` (which arms its stream when
// multishot accept is on) and connects to `port` for it; returns the client's
// side of the connection it accepted, or -1.
int ConnectToAWaitingAcceptor(int listener, std::uint16_t port) {
  Fiber acceptor([&] {
    const int fd = io::Accept(listener, nullptr, nullptr);
    EXPECT_GE(fd, 0) << std::strerror(errno);
    if (fd >= 0) io::Close(fd);
  });
  EXPECT_TRUE(
      PollUntil([&] { return detail::WaitersOn(listener) == 1; }, "the acceptor"));
  const int client = ConnectTo(port);
  acceptor.Join();
  return client;
}

std::uint64_t MultishotAccepts() { return GetRuntimeStats().file_io.multishot_accepts; }

// Parameter: whether multishot accept is on.
class AcceptStreamTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::IoEngineSkipReason("io_uring"); !why.empty()) {
      GTEST_SKIP() << why;
    }
    detail::SetMultishotAcceptForTesting(GetParam());
    StartOurRuntime();
  }

  void TearDown() override {
    if (started_) TerminateRuntime();
    detail::SetMultishotAcceptForTesting(true);  // the default
  }

  void StartOurRuntime() {
    RuntimeOptions options = testing::OptionsWithWorkers(2);
    options.io_engine = "io_uring";
    StartRuntime(options);
    started_ = true;
  }

  void StopOurRuntime() {
    TerminateRuntime();
    started_ = false;
  }

  bool started_ = false;
};

// Acceptor fibers and a plain thread share a listener while clients connect
// from fibers and threads: every connection is accepted once, with the
// address of its peer, and the acceptors still waiting when the last one came
// are cancelled by Close().
TEST_P(AcceptStreamTest, EveryConnectionReachesOneAcceptorWithItsPeersAddress) {
  const std::uint32_t connections = static_cast<std::uint32_t>(Scaled(400, 60));
  std::uint16_t port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  std::unique_ptr<std::atomic<int>[]> seen(new std::atomic<int>[connections]);
  for (std::uint32_t i = 0; i < connections; ++i) seen[i] = 0;
  std::atomic<std::uint32_t> accepted{0};
  std::atomic<int> wrong_address{0}, failed_reads{0}, cancelled{0};
  auto acceptor = [&] {
    for (;;) {
      sockaddr_in peer{};
      socklen_t len = sizeof(peer);
      const int fd = io::Accept(listener, reinterpret_cast<sockaddr*>(&peer), &len);
      if (fd < 0) {
        if (errno == ECANCELED || errno == EBADF) cancelled.fetch_add(1);
        return;
      }
      Hello hello{};
      if (!ReadExactly(fd, &hello, sizeof(hello)) || hello.id >= connections) {
        failed_reads.fetch_add(1);
      } else {
        seen[hello.id].fetch_add(1);
        if (len != sizeof(peer) || peer.sin_family != AF_INET ||
            ntohs(peer.sin_port) != hello.port ||
            peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
          wrong_address.fetch_add(1);
        }
      }
      io::Close(fd);
      if (accepted.fetch_add(1) + 1 == connections) io::Close(listener);
    }
  };
  std::vector<Fiber> acceptors;
  for (int i = 0; i < 3; ++i) acceptors.emplace_back(acceptor);
  std::thread thread_acceptor(acceptor);
  // Clients: half from fibers, half from a plain thread, all connected at once
  // so that the acceptors find the backlog both empty and full.
  std::vector<int> clients(connections, -1);
  std::vector<Fiber> fiber_clients;
  for (std::uint32_t i = 0; i < connections / 2; ++i) {
    fiber_clients.emplace_back([&, i] { clients[i] = ConnectAndSayHello(port, i); });
  }
  std::thread thread_clients([&] {
    for (std::uint32_t i = connections / 2; i < connections; ++i) {
      clients[i] = ConnectAndSayHello(port, i);
    }
  });
  for (Fiber& fiber : fiber_clients) fiber.Join();
  thread_clients.join();
  for (Fiber& fiber : acceptors) fiber.Join();
  thread_acceptor.join();
  for (std::uint32_t i = 0; i < connections; ++i) {
    EXPECT_GE(clients[i], 0) << "client " << i << " could not connect";
    EXPECT_EQ(seen[i].load(), 1) << "connection " << i;
    if (clients[i] >= 0) io::Close(clients[i]);
  }
  EXPECT_EQ(accepted.load(), connections);
  EXPECT_EQ(failed_reads.load(), 0);
  EXPECT_EQ(wrong_address.load(), 0);
  EXPECT_EQ(cancelled.load(), 4);  // every acceptor ended by the Close()
  if (GetParam()) {
    EXPECT_GT(MultishotAccepts(), 0u) << "no connection came through a multishot accept";
  } else {
    EXPECT_EQ(MultishotAccepts(), 0u);
  }
}

// Connections a listener's stream accepted and no call took are closed with
// the listener, as the kernel closes its backlog: their clients see the end
// of the stream rather than waiting forever.
TEST_P(AcceptStreamTest, ClosingTheListenerClosesTheConnectionsItHeld) {
  std::uint16_t port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  // A waiting Accept arms the stream.
  const int first_client = ConnectToAWaitingAcceptor(listener, port);
  ASSERT_GE(first_client, 0);
  const std::uint64_t before = MultishotAccepts();
  constexpr int kHeld = 5;
  std::vector<int> held;
  for (int i = 0; i < kHeld; ++i) {
    held.push_back(ConnectTo(port));
    ASSERT_GE(held.back(), 0) << std::strerror(errno);
  }
  if (GetParam()) {
    // Nothing else accepts: the stream, which still stands, takes them all.
    ASSERT_TRUE(PollUntil([&] { return MultishotAccepts() >= before + kHeld; },
                          "the stream to take the connections"));
  }
  Fiber([&] { EXPECT_EQ(io::Close(listener), 0); }).Join();
  for (const int fd : held) {
    char c;
    const ssize_t n = io::Read(fd, &c, 1, Deadline(testing::kGenerousTimeout));
    const int error = errno;
    EXPECT_TRUE(n == 0 || (n < 0 && (error == ECONNRESET || error == EPIPE)))
        << "read returned " << n << " (" << std::strerror(error) << ")";
    io::Close(fd);
  }
  io::Close(first_client);
}

// Once Close() and the Accept it cancelled have returned, the listener
// refuses connections: the kernel held the socket until the stream's
// request ended, and Close() and the cancelled call return only after that.
TEST_P(AcceptStreamTest, AfterCloseAndTheCallItCancelledTheListenerRefuses) {
  const int rounds = Scaled(40, 10);
  for (int round = 0; round < rounds; ++round) {
    std::uint16_t port = 0;
    const int listener = Listen(&port);
    ASSERT_GE(listener, 0);
    int result = 0, error = 0;
    Fiber acceptor([&] {
      result = io::Accept(listener, nullptr, nullptr);
      error = errno;
    });
    ASSERT_TRUE(
        PollUntil([&] { return detail::WaitersOn(listener) == 1; }, "the acceptor"));
    ASSERT_EQ(io::Close(listener), 0);
    acceptor.Join();
    EXPECT_EQ(result, -1);
    EXPECT_EQ(error, ECANCELED) << std::strerror(error);
    ExpectRefused(port, round);
  }
}

// So does a listener whose stream stands with no call waiting (it accepted
// a connection and its acceptor is busy with it): once Close() returns.
TEST_P(AcceptStreamTest, AfterCloseWithNoCallWaitingTheListenerRefuses) {
  const int rounds = Scaled(40, 10);
  for (int round = 0; round < rounds; ++round) {
    std::uint16_t port = 0;
    const int listener = Listen(&port);
    ASSERT_GE(listener, 0);
    const int first_client = ConnectToAWaitingAcceptor(listener, port);
    ASSERT_GE(first_client, 0);
    ASSERT_EQ(io::Close(listener), 0);
    ExpectRefused(port, round);
    io::Close(first_client);
  }
}

// A stream still standing when the runtime terminates loses nothing: the
// connections it had taken, and those that came after, are accepted by the
// next runtime.
TEST_P(AcceptStreamTest, ConnectionsOutliveTheRuntime) {
  std::uint16_t port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  const int first_client = ConnectToAWaitingAcceptor(listener, port);
  ASSERT_GE(first_client, 0);
  // While the stream stands (with multishot accept on), before and after
  // the runtime's end.
  std::vector<int> clients;
  clients.push_back(ConnectAndSayHello(port, 0));
  StopOurRuntime();
  clients.push_back(ConnectAndSayHello(port, 1));
  StartOurRuntime();
  clients.push_back(ConnectAndSayHello(port, 2));
  for (const int fd : clients) ASSERT_GE(fd, 0) << std::strerror(errno);
  std::vector<int> ids;
  Fiber([&] {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      const int fd =
          io::Accept(listener, nullptr, nullptr, Deadline(testing::kGenerousTimeout));
      ASSERT_GE(fd, 0) << std::strerror(errno);
      Hello hello{};
      EXPECT_TRUE(ReadExactly(fd, &hello, sizeof(hello)));
      ids.push_back(static_cast<int>(hello.id));
      io::Close(fd);
    }
    io::Close(listener);
  }).Join();
  EXPECT_EQ(ids, (std::vector<int>{0, 1, 2}));
  for (const int fd : clients) io::Close(fd);
  io::Close(first_client);
}

INSTANTIATE_TEST_SUITE_P(Multishot, AcceptStreamTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Multishot")
                                             : std::string("OneShot");
                         });

}  // namespace
}  // namespace weft
