// weft::io's descriptor level: round trips with fibers and plain threads on
// either side, many connections, partial writes, deadlines, EMFILE, readers
// and acceptors sharing a descriptor, invalid descriptors, vectored calls and
// datagrams. Close, reuse, resets and plain threads without a runtime are in
// fd_lifecycle_test.cc.
#include "runtime/io/fd.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "test/io/fd_test_util.h"
#include "test/io/io_test_util.h"
#include "test/sync/sync_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::Actor;
using testing::ConnectedPair;
using testing::ConnectTo;
using testing::FdTest;
using testing::InFiber;
using testing::Listen;
using testing::Message;
using testing::PollUntil;
using testing::ReadExactly;
using testing::Scaled;
using testing::Side;
using testing::SideName;

// Parameters: workers, the client's side, the server's side.
class EchoTest : public ::testing::TestWithParam<std::tuple<std::size_t, Side, Side>> {
 protected:
  void SetUp() override { StartRuntime(testing::OptionsWithWorkers(workers())); }
  void TearDown() override { TerminateRuntime(); }
  std::size_t workers() const { return std::get<0>(GetParam()); }
  Side client() const { return std::get<1>(GetParam()); }
  Side server() const { return std::get<2>(GetParam()); }
};

// Every byte sent comes back once, in order, whatever the message sizes
// (1 byte to 256 KiB: many partial reads and writes).
TEST_P(EchoTest, EveryByteComesBackInOrder) {
  testing::Watchdog watchdog("the echo round trips");
  std::uint16_t port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  const std::size_t connections = 4;
  const std::size_t rounds = Scaled(40, 8);
  std::atomic<std::size_t> echoed{0};
  std::vector<std::unique_ptr<Actor>> servers;
  Actor acceptor(server(), [&] {
    for (std::size_t c = 0; c < connections; ++c) {
      const int fd = io::Accept(listener, nullptr, nullptr);
      ASSERT_GE(fd, 0) << std::strerror(detail::Errno());
      servers.push_back(std::make_unique<Actor>(server(), [&, fd] {
        char buf[65536];
        for (;;) {
          const ssize_t n = io::Read(fd, buf, sizeof(buf));
          ASSERT_GE(n, 0) << std::strerror(detail::Errno());
          if (n == 0) break;
          ASSERT_EQ(io::Write(fd, buf, static_cast<std::size_t>(n)), n);
          echoed += static_cast<std::size_t>(n);
        }
        EXPECT_EQ(io::Close(fd), 0);
      }));
    }
  });
  std::vector<std::unique_ptr<Actor>> clients;
  for (std::size_t c = 0; c < connections; ++c) {
    clients.push_back(std::make_unique<Actor>(client(), [&, c] {
      const int fd = ConnectTo(port);
      ASSERT_GE(fd, 0) << std::strerror(detail::Errno());
      for (std::size_t r = 0; r < rounds; ++r) {
        const std::size_t size = std::size_t{1} << ((r + c) % 19);  // 1 B .. 256 KiB
        const std::string sent = Message(size, r + c);
        // Write and read concurrently: a large message does not fit in the
        // socket buffers, and the echo blocks until it is read.
        Actor writer(client(), [&] {
          EXPECT_EQ(io::Write(fd, sent.data(), sent.size()),
                    static_cast<ssize_t>(sent.size()));
        });
        std::string received(size, '\0');
        ASSERT_TRUE(ReadExactly(fd, received.data(), size))
            << std::strerror(detail::Errno());
        writer.Join();
        ASSERT_EQ(received, sent) << "round " << r;
      }
      EXPECT_EQ(shutdown(fd, SHUT_WR), 0);
      char end;
      EXPECT_EQ(io::Read(fd, &end, 1), 0);  // the server closed after our FIN
      EXPECT_EQ(io::Close(fd), 0);
    }));
  }
  clients.clear();
  acceptor.Join();
  servers.clear();
  EXPECT_EQ(io::Close(listener), 0);
}

INSTANTIATE_TEST_SUITE_P(WorkersAndSides, EchoTest, testing::WorkersAndSides(),
                         testing::WorkersAndSidesName());

// The client side of TenThousandConcurrentConnections, in a forked child:
// only async-signal-safe calls (plain blocking system calls) on memory made
// before the fork. Connects `n` sockets, sends each its index, reads every
// echo, reports how many came back right on `report_fd`, then keeps every
// connection open until `release_fd` says otherwise.
[[noreturn]] void RunForkedClients(std::uint16_t port, int* fds, std::size_t n,
                                   int report_fd, int release_fd) {
  const sockaddr_in addr = testing::Loopback(port);
  for (std::size_t i = 0; i < n; ++i) {
    fds[i] = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0 ||
        ::connect(fds[i], reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      _exit(2);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    const auto value = static_cast<std::uint32_t>(i);
    if (::write(fds[i], &value, sizeof(value)) != sizeof(value)) _exit(3);
  }
  std::uint32_t right = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t echo = 0;
    std::size_t got = 0;
    while (got < sizeof(echo)) {
      const ssize_t r =
          ::read(fds[i], reinterpret_cast<char*>(&echo) + got, sizeof(echo) - got);
      if (r <= 0) _exit(4);
      got += static_cast<std::size_t>(r);
    }
    if (echo == i) ++right;
  }
  if (::write(report_fd, &right, sizeof(right)) != sizeof(right)) _exit(5);
  char release;
  if (::read(release_fd, &release, 1) < 0) _exit(6);
  for (std::size_t i = 0; i < n; ++i) ::close(fds[i]);
  _exit(0);
}

// Ten thousand connections open at once, each served by its own parked fiber:
// every one gets its echo. The clients are a forked child (two ends of ten
// thousand connections need more descriptors than one process may have on
// some machines); the server side, all in weft, is what is tested.
TEST_P(FdTest, TenThousandConcurrentConnections) {
  const std::size_t connections = Scaled(10000, 1000);
  if (testing::RaiseOpenFileLimit(connections + 256) < connections + 64) {
    GTEST_SKIP() << "the hard limit on open files is below " << connections + 64;
  }
  testing::Watchdog watchdog("ten thousand connections");
  std::uint16_t port = 0;
  const int listener = Listen(&port, 4096);
  ASSERT_GE(listener, 0);
  std::atomic<std::size_t> served{0}, open{0}, ended{0};
  Fiber acceptor([&] {
    for (std::size_t c = 0; c < connections; ++c) {
      const int fd = io::Accept(listener, nullptr, nullptr);
      ASSERT_GE(fd, 0) << std::strerror(detail::Errno());
      ++open;
      ASSERT_TRUE(StartFiberDetached([&, fd] {
        std::uint32_t value = 0;
        if (ReadExactly(fd, &value, sizeof(value)) &&
            io::Write(fd, &value, sizeof(value)) == sizeof(value)) {
          ++served;
        }
        char end;
        EXPECT_EQ(io::Read(fd, &end, 1), 0);  // parked until the client closes
        --open;
        io::Close(fd);
        ++ended;
      }));
    }
  });
  int report[2], release[2];
  ASSERT_EQ(pipe(report), 0);
  ASSERT_EQ(pipe(release), 0);
  std::vector<int> client_fds(connections);
  const pid_t child = fork();
  ASSERT_GE(child, 0) << std::strerror(detail::Errno());
  if (child == 0) {
    RunForkedClients(port, client_fds.data(), connections, report[1], release[0]);
  }
  ::close(report[1]);
  ::close(release[0]);
  std::uint32_t right = 0;
  ASSERT_EQ(::read(report[0], &right, sizeof(right)), static_cast<ssize_t>(sizeof(right)))
      << "the client process failed";
  EXPECT_EQ(right, connections);
  ASSERT_TRUE(PollUntil([&] { return served.load() == connections; }, "every echo"));
  EXPECT_EQ(open.load(), connections);  // every connection is open at once
  ASSERT_EQ(::write(release[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  acceptor.Join();
  ASSERT_TRUE(
      PollUntil([&] { return ended.load() == connections; }, "every server fiber"));
  ::close(report[0]);
  ::close(release[1]);
  io::Close(listener);
}

// 16 MiB written at once to a reader that takes small bites with pauses: the
// writer waits for room many times; nothing is lost or reordered.
TEST_P(FdTest, LargeWriteToASlowReader) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  const std::size_t size = Scaled(16 << 20, 4 << 20);
  std::string sent(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    sent[i] = static_cast<char>(i * 2654435761u >> 24);
  std::atomic<ssize_t> written{0};
  Fiber writer([&] { written = io::Write(a, sent.data(), sent.size()); });
  std::string received;
  received.reserve(size);
  char buf[4096];
  std::size_t reads = 0;
  InFiber([&] {
    while (received.size() < size) {
      const ssize_t n = io::Read(b, buf, sizeof(buf));
      ASSERT_GT(n, 0) << std::strerror(detail::Errno());
      received.append(buf, static_cast<std::size_t>(n));
      if (++reads % 64 == 0) this_fiber::SleepFor(std::chrono::microseconds(200));
    }
  });
  writer.Join();
  EXPECT_EQ(written.load(), static_cast<ssize_t>(size));
  EXPECT_TRUE(received == sent) << "the bytes differ";
  io::Close(a);
  io::Close(b);
}

TEST_P(FdTest, ReadTimesOutAndStillReadsWhatIsThere) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  InFiber([&] {
    char c;
    EXPECT_EQ(io::Read(a, &c, 1, milliseconds(20)), -1);
    EXPECT_EQ(detail::Errno(), ETIMEDOUT);
    // A deadline that has passed already: at once.
    EXPECT_EQ(io::Read(a, &c, 1, milliseconds(-5)), -1);
    EXPECT_EQ(detail::Errno(), ETIMEDOUT);
    ASSERT_EQ(io::Write(b, "x", 1), 1);
    ASSERT_EQ(io::WaitReadable(a, milliseconds(60000)), 0);
    // Data already there is read whatever the deadline.
    EXPECT_EQ(io::Read(a, &c, 1, std::chrono::steady_clock::now() - milliseconds(1)), 1);
    EXPECT_EQ(c, 'x');
  });
  io::Close(a);
  io::Close(b);
}

// A write to a peer that does not read fills the buffers, then times out: it
// returns the count written so far.
TEST_P(FdTest, WriteTimesOutWithTheCountWritten) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  InFiber([&] {
    const std::string big(64 << 20, 'w');
    const ssize_t n = io::Write(a, big.data(), big.size(), milliseconds(50));
    ASSERT_GT(n, 0);
    EXPECT_LT(n, static_cast<ssize_t>(big.size()));
    // The kernel may still grow the buffers a little; once nothing fits, a
    // write fails: -1 and ETIMEDOUT.
    ssize_t more = 0;
    for (int i = 0; i < 100; ++i) {
      more = io::Write(a, big.data(), big.size(), milliseconds(20));
      if (more < 0) break;
      EXPECT_LT(more, static_cast<ssize_t>(big.size()));
    }
    EXPECT_EQ(more, -1);
    EXPECT_EQ(detail::Errno(), ETIMEDOUT);
  });
  io::Close(a);
  io::Close(b);
}

TEST_P(FdTest, AcceptTimesOut) {
  std::uint16_t port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  InFiber([&] {
    EXPECT_EQ(io::Accept(listener, nullptr, nullptr, milliseconds(20)), -1);
    EXPECT_EQ(detail::Errno(), ETIMEDOUT);
  });
  io::Close(listener);
}

// A listener whose accept queue is full drops new handshakes, so a connect
// waits until its deadline.
TEST_P(FdTest, ConnectToAFullBacklogTimesOut) {
  std::uint16_t port = 0;
  const int listener = Listen(&port, 0);
  ASSERT_GE(listener, 0);
  std::vector<int> connected;
  bool timed_out = false;
  InFiber([&] {
    for (int attempt = 0; attempt < 64 && !timed_out; ++attempt) {
      const int fd = ConnectTo(port, milliseconds(200));
      if (fd >= 0) {
        connected.push_back(fd);
      } else {
        ASSERT_EQ(detail::Errno(), ETIMEDOUT) << std::strerror(detail::Errno());
        timed_out = true;
      }
    }
  });
  EXPECT_TRUE(timed_out) << connected.size() << " connections were all accepted";
  for (int fd : connected) io::Close(fd);
  io::Close(listener);
}

// Accept fails with EMFILE when no descriptor is left; the pending connection
// is still there once one is.
TEST_P(FdTest, AcceptReportsEmfileAndLosesNoConnection) {
  std::uint16_t port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  InFiber([&] {
    const int client = ConnectTo(port);
    ASSERT_GE(client, 0);
    rlimit old_limit{};
    getrlimit(RLIMIT_NOFILE, &old_limit);
    std::vector<int> fillers;
    rlimit low = old_limit;
    low.rlim_cur = static_cast<rlim_t>(client + 16);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (;;) {
      const int fd = dup(client);
      if (fd < 0) break;
      fillers.push_back(fd);
    }
    EXPECT_EQ(io::Accept(listener, nullptr, nullptr), -1);
    const int accept_error = detail::Errno();
    for (int fd : fillers) ::close(fd);
    setrlimit(RLIMIT_NOFILE, &old_limit);
    EXPECT_EQ(accept_error, EMFILE);
    const int server = io::Accept(listener, nullptr, nullptr, milliseconds(60000));
    ASSERT_GE(server, 0) << std::strerror(detail::Errno());
    ASSERT_EQ(io::Write(client, "k", 1), 1);
    char c;
    EXPECT_EQ(io::Read(server, &c, 1), 1);
    io::Close(server);
    io::Close(client);
  });
  io::Close(listener);
}

// One write of K bytes to a socket that K fibers read a byte at a time: one
// edge, and every reader gets its byte (each woken reader passes the turn on).
TEST_P(FdTest, ManyReadersShareOneEdge) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  const int readers = 32;
  std::atomic<int> bytes{0};
  std::vector<Fiber> fibers;
  for (int i = 0; i < readers; ++i) {
    fibers.emplace_back([&] {
      char c;
      if (io::Read(a, &c, 1, std::chrono::seconds(60)) == 1) ++bytes;
    });
  }
  ASSERT_TRUE(
      PollUntil([&] { return detail::WaitersOn(a) == static_cast<std::size_t>(readers); },
                "the readers"));
  const std::string all(readers, 'r');
  InFiber([&] { ASSERT_EQ(io::Write(b, all.data(), all.size()), readers); });
  for (Fiber& f : fibers) f.Join();
  EXPECT_EQ(bytes.load(), readers);
  io::Close(a);
  io::Close(b);
}

// Several fibers accept on one listener while connections come in pairs (two
// connections may share one edge): a fiber whose accept failed just before
// the edge must not park while a connection waits. Every connection is
// accepted, each once, with no further connection to wake anyone.
TEST_P(FdTest, SeveralAcceptorsLoseNoConnection) {
  std::uint16_t port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  const int rounds = static_cast<int>(Scaled(300, 50));
  const int acceptors = 4;
  std::atomic<int> accepted{0};
  std::atomic<bool> done{false};
  std::vector<Fiber> fibers;
  for (int i = 0; i < acceptors; ++i) {
    fibers.emplace_back([&] {
      while (!done.load()) {
        const int fd = io::Accept(listener, nullptr, nullptr);
        if (fd < 0) {
          EXPECT_EQ(detail::Errno(), ECANCELED);  // the listener closed at the end
          return;
        }
        ++accepted;
        io::Close(fd);
      }
    });
  }
  std::vector<int> clients;
  for (int round = 0; round < rounds; ++round) {
    const int before = accepted.load();
    std::thread second([&] { clients.push_back(ConnectTo(port)); });
    const int first = ConnectTo(port);
    second.join();
    clients.push_back(first);
    // Nothing else arrives until both are accepted.
    ASSERT_TRUE(PollUntil([&] { return accepted.load() == before + 2; },
                          "both connections of a pair to be accepted"))
        << "round " << round << ": " << accepted.load() - before << " of 2";
  }
  done = true;
  io::Close(listener);
  for (Fiber& f : fibers) f.Join();
  EXPECT_EQ(accepted.load(), 2 * rounds);
  for (int fd : clients) io::Close(fd);
}

// A fiber waiting on a socket resumes wherever its group runs it (it hops
// workers when it yields in between); every message arrives.
TEST_P(FdTest, WaitingFibersMoveBetweenWorkers) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  const int messages = static_cast<int>(Scaled(2000, 200));
  std::atomic<int> received{0};
  Fiber reader([&] {
    for (int i = 0; i < messages; ++i) {
      int value = -1;
      ASSERT_TRUE(ReadExactly(a, &value, sizeof(value)));
      ASSERT_EQ(value, i);
      ++received;
      this_fiber::Yield();
    }
  });
  InFiber([&] {
    for (int i = 0; i < messages; ++i) {
      ASSERT_EQ(io::Write(b, &i, sizeof(i)), static_cast<ssize_t>(sizeof(i)));
      if (i % 7 == 0) this_fiber::Yield();
    }
  });
  reader.Join();
  EXPECT_EQ(received.load(), messages);
  io::Close(a);
  io::Close(b);
}

TEST_P(FdTest, InvalidDescriptorsGetThePosixError) {
  InFiber([&] {
    char c;
    EXPECT_EQ(io::Read(-1, &c, 1), -1);
    EXPECT_EQ(detail::Errno(), EBADF);
    EXPECT_EQ(io::Write(1 << 29, &c, 1), -1);
    EXPECT_EQ(detail::Errno(), EBADF);
    EXPECT_EQ(io::WaitReadable(-7), -1);
    EXPECT_EQ(detail::Errno(), EBADF);
    EXPECT_EQ(io::Close(-1), -1);
    EXPECT_EQ(detail::Errno(), EBADF);
    int pipe_fds[2];
    ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    EXPECT_EQ(io::Accept(pipe_fds[0], nullptr, nullptr), -1);
    EXPECT_EQ(detail::Errno(), ENOTSOCK);
    const sockaddr_in addr = testing::Loopback(9);
    EXPECT_EQ(
        io::Connect(pipe_fds[1], reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)),
        -1);
    EXPECT_EQ(detail::Errno(), ENOTSOCK);
    EXPECT_EQ(io::Close(pipe_fds[0]), 0);
    EXPECT_EQ(io::Close(pipe_fds[1]), 0);
    EXPECT_EQ(io::Read(pipe_fds[0], &c, 1), -1);
    EXPECT_EQ(detail::Errno(), EBADF);
    // A listening socket has no peer to read from.
    std::uint16_t port = 0;
    const int listener = Listen(&port);
    EXPECT_EQ(io::Read(listener, &c, 1), -1);
    EXPECT_EQ(detail::Errno(), ENOTCONN);
    io::Close(listener);
  });
}

TEST_P(FdTest, DontWaitAsksForEagain) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  InFiber([&] {
    char c;
    EXPECT_EQ(io::Recv(a, &c, 1, MSG_DONTWAIT), -1);
    EXPECT_TRUE(detail::Errno() == EAGAIN || detail::Errno() == EWOULDBLOCK);
    ASSERT_EQ(io::Send(b, "ab", 2, 0), 2);
    char buf[2];
    EXPECT_EQ(io::Recv(a, buf, 2, MSG_WAITALL), 2);
  });
  io::Close(a);
  io::Close(b);
}

TEST_P(FdTest, VectoredAndMessageCallsMoveEveryByte) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  InFiber([&] {
    std::string part1(300000, '1'), part2(5, '2'), part3(200000, '3');
    iovec out[3] = {{part1.data(), part1.size()},
                    {part2.data(), part2.size()},
                    {part3.data(), part3.size()}};
    const std::size_t total = part1.size() + part2.size() + part3.size();
    Fiber writer([&] { EXPECT_EQ(io::WriteV(a, out, 3), static_cast<ssize_t>(total)); });
    std::string in(total, '\0');
    std::size_t done = 0;
    while (done < total) {
      iovec vec{in.data() + done, total - done};
      const ssize_t n = io::ReadV(b, &vec, 1);
      ASSERT_GT(n, 0);
      done += static_cast<std::size_t>(n);
    }
    writer.Join();
    EXPECT_TRUE(in == part1 + part2 + part3);

    msghdr msg{};
    iovec one{part2.data(), part2.size()};
    msg.msg_iov = &one;
    msg.msg_iovlen = 1;
    EXPECT_EQ(io::SendMsg(b, &msg, 0), 5);
    char buf[5];
    iovec into{buf, sizeof(buf)};
    msghdr received{};
    received.msg_iov = &into;
    received.msg_iovlen = 1;
    EXPECT_EQ(io::RecvMsg(a, &received, MSG_WAITALL), 5);
    EXPECT_EQ(std::string(buf, 5), "22222");
  });
  io::Close(a);
  io::Close(b);
}

TEST_P(FdTest, DatagramsWithAddresses) {
  InFiber([&] {
    const int server = io::Socket(AF_INET, SOCK_DGRAM, 0);
    const int client = io::Socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(server, 0);
    sockaddr_in addr = testing::Loopback(0);
    ASSERT_EQ(bind(server, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    socklen_t len = sizeof(addr);
    getsockname(server, reinterpret_cast<sockaddr*>(&addr), &len);
    Fiber echo([&] {
      char buf[64];
      sockaddr_in from{};
      socklen_t from_len = sizeof(from);
      const ssize_t n = io::RecvFrom(server, buf, sizeof(buf), 0,
                                     reinterpret_cast<sockaddr*>(&from), &from_len);
      ASSERT_EQ(n, 5);
      EXPECT_EQ(
          io::SendTo(server, buf, 5, 0, reinterpret_cast<sockaddr*>(&from), from_len), 5);
    });
    EXPECT_EQ(io::SendTo(client, "hello", 5, 0, reinterpret_cast<sockaddr*>(&addr), len),
              5);
    char buf[64];
    EXPECT_EQ(io::RecvFrom(client, buf, sizeof(buf), 0, nullptr, nullptr), 5);
    EXPECT_EQ(std::string(buf, 5), "hello");
    echo.Join();
    io::Close(server);
    io::Close(client);
  });
}

INSTANTIATE_TEST_SUITE_P(Workers, FdTest,
                         ::testing::Values(std::size_t{1}, std::size_t{2},
                                           std::size_t{4}),
                         testing::WorkerCountName);

}  // namespace
}  // namespace weft
