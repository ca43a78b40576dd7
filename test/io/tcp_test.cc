// weft::io's stream level (runtime/io/tcp.h): hosts and addresses, round trips
// with fibers and plain threads on either side, ReadFull and WriteAll(V) and
// what they report when cut short, half-close, deadlines, Close while others
// wait, SIGPIPE, the error category. Ownership, Accept out of descriptors and
// Unix-domain paths are in tcp_ownership_test.cc.
//
// Sockets are bound to 127.0.0.1 or ::1; clients connect to the loopback.
#include "runtime/io/tcp.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/io/fd.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/scheduling_group/file_ring.h"
#include "runtime/this_fiber.h"
#include "test/io/io_test_util.h"
#include "test/io/tcp_test_util.h"
#include "test/sync/sync_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::Actor;
using testing::Connect;
using testing::ConnectedTcpPair;
using testing::ExpectEndOfStream;
using testing::ExpectRoundTrip;
using testing::HasError;
using testing::Ok;
using testing::PollUntil;
using testing::Scaled;
using testing::Side;
using testing::SideName;
using testing::TcpPair;

// For waits that should succeed: a bug fails the test instead of hanging it.
constexpr auto kLong = testing::kGenerousTimeout;

template <class F>
void InFiber(F&& body) {
  Fiber(std::forward<F>(body)).Join();
}

// A message of `size` bytes that differs with `seed`.
std::string Message(std::size_t size, std::size_t seed) {
  std::string text(size, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    text[i] = static_cast<char>('a' + (i * 7 + seed * 13 + i / 4099) % 26);
  }
  return text;
}

// Everything until the end of the stream, read `piece` bytes at most at a time.
std::string ReadToEnd(io::Stream& s, std::size_t piece = 65536) {
  std::string all;
  std::vector<char> buf(piece);
  for (;;) {
    const io::IoResult r = s.Read(buf.data(), buf.size(), kLong);
    EXPECT_TRUE(Ok(r.error)) << "after " << all.size() << " bytes";
    if (r.error || r.bytes == 0) return all;
    all.append(buf.data(), r.bytes);
  }
}

bool HasIpv6Loopback() {
  io::TcpListener probe;
  return !probe.Listen("::1", 0);
}

int NoDelay(const io::Stream& stream) {
  int on = -1;
  socklen_t length = sizeof(on);
  EXPECT_EQ(getsockopt(stream.fd(), IPPROTO_TCP, TCP_NODELAY, &on, &length), 0);
  return on;
}

class TcpTest : public testing::WorkerCountTest {};

TEST_P(TcpTest, ListensAndConnectsOverEveryLoopbackHost) {
  const bool ipv6 = HasIpv6Loopback();
  for (auto [host, address] :
       {std::pair{"127.0.0.1", "127.0.0.1"}, std::pair{"::1", "[::1]"},
        std::pair{"[::1]", "[::1]"}, std::pair{"localhost", "127.0.0.1"}}) {
    SCOPED_TRACE(host);
    if (!ipv6 && address[0] == '[') continue;
    InFiber([&, host = host, address = std::string(address)] {
      io::TcpListener listener;
      ASSERT_TRUE(Ok(listener.Listen(host, 0)));
      const std::uint16_t port = listener.LocalPort();
      ASSERT_NE(port, 0);
      TcpPair pair = Connect(listener, host, port);
      ASSERT_TRUE(pair.server.IsOpen());
      EXPECT_EQ(pair.client.PeerAddress(), address + ":" + std::to_string(port));
      EXPECT_EQ(pair.server.LocalAddress(), address + ":" + std::to_string(port));
      EXPECT_EQ(pair.server.PeerAddress(), pair.client.LocalAddress());
      EXPECT_EQ(pair.client.LocalAddress().rfind(address + ":", 0), 0u);
      ExpectRoundTrip(pair.client, pair.server);
      EXPECT_NE(NoDelay(pair.client), 0);  // on for Connect and Accept
      EXPECT_NE(NoDelay(pair.server), 0);
      ASSERT_TRUE(Ok(pair.client.SetNoDelay(false)));
      EXPECT_EQ(NoDelay(pair.client), 0);
    });
  }
}

// The tests bind only loopback addresses, so "" is never listened on: a
// connection to it (0.0.0.0, which Linux takes for this host) arrives, and
// listening on it overlaps a listener on 127.0.0.1 with the same port.
TEST_P(TcpTest, AnEmptyHostIsTheAnyIpv4Address) {
  InFiber([&] {
    io::TcpListener listener;
    ASSERT_TRUE(Ok(listener.Listen("127.0.0.1", 0)));
    TcpPair pair = Connect(listener, "", listener.LocalPort());
    ExpectRoundTrip(pair.client, pair.server);
    io::TcpListener any;
    EXPECT_TRUE(
        HasError(any.Listen("", listener.LocalPort()), std::errc::address_in_use));
    EXPECT_FALSE(any.IsOpen());
  });
}

TEST_P(TcpTest, HostNamesAreNotResolvedHere) {
  InFiber([&] {
    for (const char* host : {"example.com", "127.0.0.256", "[::1", "::1]", "1.2.3"}) {
      SCOPED_TRACE(host);
      io::TcpListener listener;
      const std::error_code error = listener.Listen(host, 0);
      EXPECT_TRUE(HasError(error, io::Error::kNotAnAddress));
      EXPECT_NE(error.message().find("Resolve"), std::string::npos) << error.message();
      EXPECT_FALSE(listener.IsOpen());
      io::TcpStream stream;
      EXPECT_TRUE(HasError(stream.Connect(host, 80, kLong), io::Error::kNotAnAddress));
      EXPECT_FALSE(stream.IsOpen());
    }
  });
}

// "localhost" is 127.0.0.1, then ::1 if that refused; a port nobody listens
// on refuses either way.
TEST_P(TcpTest, LocalhostTriesIpv4ThenIpv6) {
  const bool ipv6 = HasIpv6Loopback();
  InFiber([&] {
    io::TcpListener listener;
    ASSERT_TRUE(Ok(listener.Listen(ipv6 ? "::1" : "127.0.0.1", 0)));
    const std::uint16_t port = listener.LocalPort();
    if (ipv6) {
      TcpPair pair = Connect(listener, "localhost", port);
      EXPECT_EQ(pair.client.PeerAddress(), "[::1]:" + std::to_string(port));
      ExpectRoundTrip(pair.client, pair.server);
    }
    ASSERT_TRUE(Ok(listener.Close()));
    for (const char* host : {"localhost", "127.0.0.1", "::1"}) {
      if (!ipv6 && host[0] == ':') continue;
      io::TcpStream stream;
      EXPECT_TRUE(
          HasError(stream.Connect(host, port, kLong), std::errc::connection_refused))
          << host;
      EXPECT_FALSE(stream.IsOpen());
    }
  });
}

// Parameters: workers, the client's side, the server's side.
class TcpRoundTripTest
    : public ::testing::TestWithParam<std::tuple<std::size_t, Side, Side>> {
 protected:
  void SetUp() override {
    StartRuntime(testing::OptionsWithWorkers(std::get<0>(GetParam())));
  }
  void TearDown() override { TerminateRuntime(); }
  Side client() const { return std::get<1>(GetParam()); }
  Side server() const { return std::get<2>(GetParam()); }
};

// Messages of 1 byte to 256 KiB, written while the echo is read: every byte
// comes back once, in order; the server sees each client's end of stream.
TEST_P(TcpRoundTripTest, EveryByteComesBackInOrder) {
  testing::Watchdog watchdog("the round trips");
  io::TcpListener listener;
  ASSERT_TRUE(Ok(listener.Listen("127.0.0.1", 0)));
  const std::size_t connections = 3, rounds = Scaled(30, 6);
  std::atomic<std::size_t> echoed{0}, ended{0}, sent_total{0};
  std::vector<std::unique_ptr<Actor>> echoes;
  Actor acceptor(server(), [&] {
    for (std::size_t c = 0; c < connections; ++c) {
      auto accepted = listener.Accept(kLong);
      ASSERT_TRUE(Ok(accepted.error));
      auto stream = std::make_shared<io::TcpStream>(std::move(accepted.stream));
      echoes.push_back(std::make_unique<Actor>(server(), [&, stream] {
        std::vector<char> buf(65536);
        for (;;) {
          const io::IoResult r = stream->Read(buf.data(), buf.size(), kLong);
          ASSERT_TRUE(Ok(r.error));
          if (r.bytes == 0) break;
          ASSERT_TRUE(Ok(stream->WriteAll(buf.data(), r.bytes, kLong).error));
          echoed += r.bytes;
        }
        ++ended;
        EXPECT_TRUE(Ok(stream->Close()));
      }));
    }
  });
  std::vector<std::unique_ptr<Actor>> clients;
  for (std::size_t c = 0; c < connections; ++c) {
    clients.push_back(std::make_unique<Actor>(client(), [&, c] {
      io::TcpStream stream;
      ASSERT_TRUE(Ok(stream.Connect("127.0.0.1", listener.LocalPort(), kLong)));
      for (std::size_t r = 0; r < rounds; ++r) {
        const std::string sent = Message(std::size_t{1} << ((r + c) % 19), r + c);
        Actor writer(client(), [&] {
          const io::IoResult w = stream.WriteAll(sent, kLong);
          EXPECT_TRUE(Ok(w.error));
          EXPECT_EQ(w.bytes, sent.size());
        });
        std::string received(sent.size(), '\0');
        const io::IoResult got = stream.ReadFull(received.data(), received.size(), kLong);
        writer.Join();
        ASSERT_TRUE(Ok(got.error));
        ASSERT_TRUE(received == sent) << "round " << r << " of connection " << c;
        sent_total += sent.size();
      }
      ASSERT_TRUE(Ok(stream.ShutdownWrite()));
      ExpectEndOfStream(stream);  // the server closed after our end of stream
    }));
  }
  clients.clear();
  acceptor.Join();
  echoes.clear();
  EXPECT_EQ(ended.load(), connections);
  EXPECT_EQ(echoed.load(), sent_total.load());
}

INSTANTIATE_TEST_SUITE_P(WorkersAndSides, TcpRoundTripTest, testing::WorkersAndSides(),
                         testing::WorkersAndSidesName());

// Four-byte pieces read as 8 and 12 bytes; after ShutdownWrite, the 4 bytes
// that came where 10 were asked for, and the end (ReadFull: kEndOfStream;
// Read: 0 bytes, no error). The half-closed side still reads the way back.
TEST_P(TcpTest, ReadFullReadsExactlyTheCountOrWhatCameBeforeTheEnd) {
  InFiber([&] {
    TcpPair pair = ConnectedTcpPair();
    const std::string sent = Message(24, 1);
    Actor writer(Side::kFiber, [&] {
      for (std::size_t i = 0; i < sent.size(); i += 4) {
        EXPECT_TRUE(Ok(pair.client.WriteAll(sent.substr(i, 4), kLong).error));
        this_fiber::Yield();
      }
      EXPECT_TRUE(Ok(pair.client.ShutdownWrite()));
    });
    char first[8], second[12], rest[10];
    const io::IoResult a = pair.server.ReadFull(first, sizeof(first), kLong);
    const io::IoResult b = pair.server.ReadFull(second, sizeof(second), kLong);
    EXPECT_TRUE(Ok(pair.server.ReadFull(first, 0, kLong).error));  // nothing asked
    io::IoResult r = pair.server.ReadFull(rest, sizeof(rest), kLong);
    writer.Join();
    EXPECT_TRUE(Ok(a.error));
    EXPECT_TRUE(Ok(b.error));
    EXPECT_EQ(a.bytes + b.bytes, sizeof(first) + sizeof(second));
    EXPECT_TRUE(HasError(r.error, io::Error::kEndOfStream));
    EXPECT_EQ(r.bytes, 4u);
    EXPECT_EQ(std::string(first, 8) + std::string(second, 12) + std::string(rest, 4),
              sent);
    ExpectEndOfStream(pair.server);
    ExpectEndOfStream(pair.server);  // and it stays ended
    r = pair.server.ReadFull(rest, 1, kLong);
    EXPECT_TRUE(HasError(r.error, io::Error::kEndOfStream));
    EXPECT_EQ(r.bytes, 0u);
    ASSERT_TRUE(Ok(pair.server.WriteAll("back", kLong).error));
    r = pair.client.ReadFull(rest, 4, kLong);
    EXPECT_TRUE(Ok(r.error));
    EXPECT_EQ(std::string(rest, r.bytes), "back");
    ASSERT_TRUE(Ok(pair.server.Close()));
    ExpectEndOfStream(pair.client);
  });
}

// 8 MiB in one WriteAll, then a WriteAllV of four buffers (one empty), to a
// reader that takes 1000 bytes at a time: the writer waits for room many
// times; every byte arrives once and in order.
TEST_P(TcpTest, WriteAllAndWriteAllVDeliverEveryByteInOrder) {
  testing::Watchdog watchdog("the large writes");
  InFiber([&] {
    TcpPair pair = ConnectedTcpPair();
    const std::string big = Message(Scaled(8 << 20, 1 << 20), 2);
    std::string head = "head", body = Message(Scaled(3 << 20, 1 << 20), 3),
                tail = Message(777, 4);
    const iovec iov[4] = {{head.data(), head.size()},
                          {body.data(), body.size()},
                          {nullptr, 0},
                          {tail.data(), tail.size()}};
    io::IoResult written, written_v;
    Actor writer(Side::kFiber, [&] {
      written = pair.client.WriteAll(big, kLong);
      written_v = pair.client.WriteAllV(iov, 4, kLong);
      EXPECT_TRUE(Ok(pair.client.Close()));
    });
    const std::string received = ReadToEnd(pair.server, 1000);
    writer.Join();
    EXPECT_TRUE(Ok(written.error));
    EXPECT_EQ(written.bytes, big.size());
    EXPECT_TRUE(Ok(written_v.error));
    EXPECT_EQ(written_v.bytes, head.size() + body.size() + tail.size());
    EXPECT_TRUE(received == big + head + body + tail) << "the bytes differ";
  });
}

// Writes to a peer that does not read fill the buffers and time out; the
// counts they report are exactly what the peer then reads.
TEST_P(TcpTest, WritesThatTimeOutReportTheBytesThatWent) {
  InFiber([&] {
    TcpPair pair = ConnectedTcpPair();
    std::string head = Message(100, 5), body = Message(32 << 20, 6),
                tail = Message(100, 7);
    const iovec iov[3] = {{head.data(), head.size()},
                          {body.data(), body.size()},
                          {tail.data(), tail.size()}};
    const io::IoResult v = pair.client.WriteAllV(iov, 3, milliseconds(50));
    EXPECT_TRUE(HasError(v.error, std::errc::timed_out));
    EXPECT_GT(v.bytes, head.size());  // a short write in the middle of a buffer
    EXPECT_LT(v.bytes, head.size() + body.size());
    const std::string more = Message(8 << 20, 8);
    const io::IoResult w = pair.client.WriteAll(more, milliseconds(50));
    EXPECT_TRUE(HasError(w.error, std::errc::timed_out));
    EXPECT_LT(w.bytes, more.size());
    ASSERT_TRUE(Ok(pair.client.Close()));
    const std::string received = ReadToEnd(pair.server);
    EXPECT_EQ(received.size(), v.bytes + w.bytes);
    EXPECT_TRUE(received ==
                (head + body + tail).substr(0, v.bytes) + more.substr(0, w.bytes))
        << "the bytes differ";
  });
}

// Read, ReadFull (which reports what came), Accept, and Connect to a listener
// whose accept queue is full (it drops new handshakes) time out.
TEST_P(TcpTest, ReadsAcceptsAndConnectsTimeOut) {
  InFiber([&] {
    TcpPair pair = ConnectedTcpPair();
    char buf[8];
    const auto start = steady_clock::now();
    io::IoResult r = pair.server.Read(buf, sizeof(buf), milliseconds(20));
    EXPECT_GE(
        std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count(),
        20);
    EXPECT_TRUE(HasError(r.error, std::errc::timed_out));
    EXPECT_EQ(r.bytes, 0u);
    ASSERT_TRUE(Ok(pair.client.WriteAll("abc", kLong).error));  // one segment
    ASSERT_EQ(io::WaitReadable(pair.server.fd(), kLong), 0) << std::strerror(errno);
    r = pair.server.ReadFull(buf, sizeof(buf), milliseconds(30));
    EXPECT_TRUE(HasError(r.error, std::errc::timed_out));
    EXPECT_EQ(r.bytes, 3u);
    EXPECT_EQ(std::string(buf, 3), "abc");

    io::TcpListener listener;
    ASSERT_TRUE(Ok(listener.Listen("127.0.0.1", 0, /*backlog=*/0)));
    auto [stream, error] = listener.Accept(milliseconds(20));
    EXPECT_TRUE(HasError(error, std::errc::timed_out));
    EXPECT_FALSE(stream.IsOpen());
    std::vector<io::TcpStream> connected(64);
    std::error_code connect_error;
    for (std::size_t i = 0; i < connected.size() && !connect_error; ++i) {
      connect_error =
          connected[i].Connect("127.0.0.1", listener.LocalPort(), milliseconds(200));
      EXPECT_EQ(connected[i].IsOpen(), !connect_error);
    }
    EXPECT_TRUE(HasError(connect_error, std::errc::timed_out));
  });
}

// Close() from a fiber or a plain thread wakes a fiber or a thread waiting in
// Read or in Accept with operation_canceled.
class TcpCloseTest : public testing::WaiterNotifierTest {};

TEST_P(TcpCloseTest, CloseCancelsAWaitingReadAndAWaitingAccept) {
  TcpPair pair = ConnectedTcpPair();
  io::TcpListener listener;
  ASSERT_TRUE(Ok(listener.Listen("127.0.0.1", 0)));
  const std::uint16_t port = listener.LocalPort();
  const int read_fd = pair.server.fd(), accept_fd = listener.fd();
  io::IoResult read;
  io::AcceptResult<io::TcpStream> accepted;
  Actor reader(waiter(), [&] {
    char c;
    read = pair.server.Read(&c, 1, kLong);
  });
  Actor acceptor(waiter(), [&] { accepted = listener.Accept(kLong); });
  testing::WaitOrAbort(PollUntil(
      [&] {
        return detail::WaitersOn(read_fd) == 1 && detail::WaitersOn(accept_fd) == 1;
      },
      "the reader and the acceptor to wait"));
  Actor(notifier(), [&] {
    EXPECT_TRUE(Ok(pair.server.Close()));
    EXPECT_TRUE(Ok(listener.Close()));
  }).Join();
  reader.Join();
  acceptor.Join();
  EXPECT_TRUE(HasError(read.error, std::errc::operation_canceled));
  EXPECT_EQ(read.bytes, 0u);
  EXPECT_TRUE(HasError(accepted.error, std::errc::operation_canceled));
  EXPECT_FALSE(accepted.stream.IsOpen());
  EXPECT_FALSE(pair.server.IsOpen());
  EXPECT_FALSE(listener.IsOpen());
  EXPECT_TRUE(Ok(pair.server.Close()));  // again: nothing
  char c;
  EXPECT_TRUE(HasError(pair.server.Read(&c, 1).error, io::Error::kNotOpen));
  EXPECT_TRUE(HasError(listener.Accept(kLong).error, io::Error::kNotOpen));
  ExpectEndOfStream(pair.client);
  EXPECT_TRUE(testing::ClosedListenerRefuses(port, detail::SocketRingsEnabled()));
}

WEFT_INSTANTIATE_OVER_WAITERS_AND_NOTIFIERS(TcpCloseTest);
// With SIGPIPE at its default action (which ends the process), writes to a
// peer that is gone fail with broken_pipe or connection_reset.
TEST_P(TcpTest, WritesToAClosedPeerFailWithoutSigpipe) {
  struct sigaction old_action;
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &default_action, &old_action);
  auto gone = [](const std::error_code& e) {
    return e == std::errc::broken_pipe || e == std::errc::connection_reset;
  };
  for (Side side : {Side::kFiber, Side::kThread}) {
    Actor(side, [&] {
      TcpPair pair = ConnectedTcpPair();
      ASSERT_TRUE(Ok(pair.server.Close()));
      std::string chunk(1 << 16, 'p');
      io::IoResult r;
      for (int i = 0; i < 100 && !r.error; ++i) r = pair.client.WriteAll(chunk, kLong);
      EXPECT_TRUE(gone(r.error)) << r.error.message();
      const iovec iov[2] = {{chunk.data(), chunk.size()}, {chunk.data(), 1}};
      r = pair.client.WriteAllV(iov, 2, kLong);
      EXPECT_TRUE(gone(r.error)) << r.error.message();
    }).Join();
  }
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  sigaction(SIGPIPE, &old_action, nullptr);
}

INSTANTIATE_TEST_SUITE_P(Workers, TcpTest,
                         ::testing::Values(std::size_t{1}, std::size_t{2},
                                           std::size_t{4}),
                         testing::WorkerCountName);

TEST(IoError, IsInTheWeftIoCategoryAndSaysWhatToDo) {
  const std::error_code end = io::make_error_code(io::Error::kEndOfStream);
  EXPECT_STREQ(end.category().name(), "weft::io");
  EXPECT_EQ(&end.category(), &io::IoCategory());
  EXPECT_NE(end, std::error_code(EPERM, std::system_category()));  // same value
  for (io::Error e : {io::Error::kEndOfStream, io::Error::kNotAnAddress,
                      io::Error::kPathTooLong, io::Error::kNotOpen}) {
    const std::error_code code = e;  // an error code enum converts implicitly
    EXPECT_EQ(code, io::make_error_code(e));
    EXPECT_FALSE(code.message().empty());
    EXPECT_EQ(code.message().find("unknown"), std::string::npos) << code.message();
  }
  auto message = [](io::Error e) { return io::make_error_code(e).message(); };
  EXPECT_NE(message(io::Error::kNotAnAddress).find("Resolve"), std::string::npos);
  EXPECT_NE(message(io::Error::kPathTooLong).find("shorter path"), std::string::npos);
  EXPECT_NE(message(io::Error::kNotOpen).find("listen first"), std::string::npos);
}

}  // namespace
}  // namespace weft
