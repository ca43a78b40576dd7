// Reads with the io_uring socket engine, where a TCP connection's multishot
// receive (runtime/io/detail/receive_stream.h) takes the bytes for the reads
// that come: every byte reaches the readers once and in order, whatever the
// sizes of the reads; a stream holds a bounded number of bytes and leaves the
// rest in the socket; peeks and WaitReadable see what it holds; the end of
// the stream comes after its bytes; Close() drops what it held and resets the
// connection; Unix sockets never get a stream; and with multishot receives
// turned off the one-shot requests do the same.
#include "runtime/io/detail/receive_stream.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/io/fd.h"
#include "runtime/runtime.h"
#include "runtime/runtime_stats.h"
#include "runtime/this_fiber.h"
#include "test/io/io_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::ConnectedPair;
using testing::PollUntil;
using testing::ReadExactly;
using testing::Scaled;

std::uint64_t MultishotReceives() { return GetRuntimeStats().file_io.multishot_receives; }
std::uint64_t MultishotReceivedBytes() {
  return GetRuntimeStats().file_io.multishot_received_bytes;
}

// The bytes of message `i` of connection `c`: its numbers, then filler
// whose length varies, so that messages straddle reads of any size.
std::string Message(int c, int i) {
  std::string text = std::to_string(c) + ":" + std::to_string(i) + ":";
  text.append(static_cast<std::size_t>((c * 7 + i * 13) % 61),
              static_cast<char>('a' + i % 26));
  return text + ";";
}

// Parameter: whether multishot receives are on.
class ReceiveStreamTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::IoEngineSkipReason("io_uring"); !why.empty()) {
      GTEST_SKIP() << why;
    }
    detail::SetMultishotReceiveForTesting(GetParam());
    RuntimeOptions options = testing::OptionsWithWorkers(2);
    options.io_engine = "io_uring";
    StartRuntime(options);
    started_ = true;
  }

  void TearDown() override {
    if (started_) TerminateRuntime();
    detail::SetMultishotReceiveForTesting(true);  // the default
  }

  // With multishot receives on, some reads came through a stream; off, none.
  void ExpectStreamsUsed(std::uint64_t before) {
    if (GetParam()) {
      EXPECT_GT(MultishotReceives(), before)
          << "no bytes came through a multishot receive";
    } else {
      EXPECT_EQ(MultishotReceives(), before);
    }
  }

  bool started_ = false;
};

// Connections whose readers use reads of 1 to 64 bytes (plain, vectored,
// recv, recvfrom, recvmsg) while writers on fibers and plain threads send
// numbered messages: each reader gets its connection's bytes exactly, in
// order, while the fibers migrate between the workers.
TEST_P(ReceiveStreamTest, EveryByteReachesTheReaderOnceAndInOrder) {
  const int connections = static_cast<int>(Scaled(32, 8));
  const int messages = static_cast<int>(Scaled(300, 60));
  const std::uint64_t before = MultishotReceives();
  std::vector<std::pair<int, int>> pairs;
  std::vector<std::string> expected(static_cast<std::size_t>(connections));
  for (int c = 0; c < connections; ++c) {
    pairs.push_back(ConnectedPair());
    ASSERT_GE(pairs.back().first, 0);
    ASSERT_GE(pairs.back().second, 0);
    for (int i = 0; i < messages; ++i)
      expected[static_cast<std::size_t>(c)] += Message(c, i);
  }
  std::vector<std::string> got(static_cast<std::size_t>(connections));
  std::vector<Fiber> readers;
  for (int c = 0; c < connections; ++c) {
    readers.emplace_back([&, c] {
      const int fd = pairs[static_cast<std::size_t>(c)].second;
      std::string& out = got[static_cast<std::size_t>(c)];
      const std::size_t want = expected[static_cast<std::size_t>(c)].size();
      for (int i = 0; out.size() < want; ++i) {
        char buf[64];
        const std::size_t n = 1 + static_cast<std::size_t>((c + i) % 64);
        ssize_t r = -1;
        switch (i % 5) {
          case 0:
            r = io::Read(fd, buf, n, Deadline(testing::kGenerousTimeout));
            break;
          case 1: {
            const std::size_t half = n / 2;
            iovec iov[2] = {{buf, half}, {buf + half, n - half}};
            r = io::ReadV(fd, iov, 2, Deadline(testing::kGenerousTimeout));
            break;
          }
          case 2:
            r = io::Recv(fd, buf, n, 0, Deadline(testing::kGenerousTimeout));
            break;
          case 3:
            r = io::RecvFrom(fd, buf, n, 0, nullptr, nullptr,
                             Deadline(testing::kGenerousTimeout));
            break;
          default: {
            iovec iov{buf, n};
            msghdr msg{};
            msg.msg_iov = &iov;
            msg.msg_iovlen = 1;
            r = io::RecvMsg(fd, &msg, 0, Deadline(testing::kGenerousTimeout));
            break;
          }
        }
        ASSERT_GT(r, 0) << "connection " << c << ": " << std::strerror(errno);
        out.append(buf, static_cast<std::size_t>(r));
      }
    });
  }
  std::vector<std::thread> thread_writers;
  std::vector<Fiber> fiber_writers;
  for (int c = 0; c < connections; ++c) {
    auto write_all = [&, c] {
      const int fd = pairs[static_cast<std::size_t>(c)].first;
      for (int i = 0; i < messages; ++i) {
        const std::string m = Message(c, i);
        ASSERT_EQ(io::Write(fd, m.data(), m.size()), static_cast<ssize_t>(m.size()));
        if (i % 16 == 0 && c % 2 == 0) this_fiber::Yield();
      }
    };
    if (c % 2 == 0) {
      fiber_writers.emplace_back(write_all);
    } else {
      thread_writers.emplace_back(write_all);
    }
  }
  for (Fiber& f : fiber_writers) f.Join();
  for (std::thread& t : thread_writers) t.join();
  for (Fiber& r : readers) r.Join();
  for (int c = 0; c < connections; ++c) {
    EXPECT_EQ(got[static_cast<std::size_t>(c)], expected[static_cast<std::size_t>(c)])
        << "connection " << c;
    io::Close(pairs[static_cast<std::size_t>(c)].first);
    io::Close(pairs[static_cast<std::size_t>(c)].second);
  }
  ExpectStreamsUsed(before);
}

// A reader that stops reading: its stream takes a bounded number of bytes
// and the rest wait in the socket, so the writer is pushed back (its
// non-blocking sends end in EAGAIN); then every byte is read, in order.
TEST_P(ReceiveStreamTest, AStreamNobodyReadsHoldsABoundedAmountAndPushesBack) {
  const auto connected = ConnectedPair();
  const int client = connected.first;
  const int server = connected.second;
  ASSERT_GE(client, 0);
  ASSERT_GE(server, 0);
  const std::uint64_t bytes_before = MultishotReceivedBytes();
  // A read that waits arms the stream; it takes the first byte.
  Fiber first([fd = server] {
    char c = 1;
    EXPECT_EQ(io::Read(fd, &c, 1, Deadline(testing::kGenerousTimeout)), 1);
    EXPECT_EQ(c, static_cast<char>(0));
  });
  ASSERT_TRUE(PollUntil([&, fd = server] { return detail::WaitersOn(fd) == 1; },
                        "the reader to wait"));
  // Fill the stream, then the socket buffers on both sides: done once many
  // sends in a row found no room (a stream still taking bytes makes some).
  std::size_t sent = 0;
  std::vector<char> chunk(4096);
  for (int refused = 0; refused < 2000;) {
    for (std::size_t i = 0; i < chunk.size(); ++i) {
      chunk[i] = static_cast<char>((sent + i) % 251);
    }
    const ssize_t n = io::Send(client, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n < 0) {
      ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
      ++refused;
      std::this_thread::yield();
      continue;
    }
    refused = 0;
    sent += static_cast<std::size_t>(n);
    ASSERT_LT(sent, std::size_t{64} << 20) << "the writer was never pushed back";
  }
  first.Join();
  if (GetParam()) {
    // 32 KiB, and what the kernel had put in the ring's provided buffers by
    // the time the stream's cancellation took effect.
    const std::uint64_t bound =
        32 * 1024 +
        std::uint64_t{detail::FileRing::kProvidedCount} * detail::FileRing::kProvidedSize;
    EXPECT_LE(MultishotReceivedBytes() - bytes_before, bound)
        << "the stream took more than its bound while nobody read";
  }
  // Every byte after the first, in order.
  std::vector<char> in(sent);
  ASSERT_TRUE(
      ReadExactly(server, in.data() + 1, sent - 1, Deadline(testing::kGenerousTimeout)));
  for (std::size_t i = 1; i < sent; ++i) {
    ASSERT_EQ(in[i], static_cast<char>(i % 251)) << "byte " << i << " of " << sent;
  }
  io::Close(client);
  io::Close(server);
}

// A reader that keeps up but never empties the stream (it always leaves the
// first message's 100 bytes behind): the stream's buffer stays about the
// size of what it holds, not of everything that went through it.
TEST_P(ReceiveStreamTest, AReaderThatNeverEmptiesTheStreamKeepsItsBufferSmall) {
  const auto connected = ConnectedPair();
  const int client = connected.first;
  const int server = connected.second;
  ASSERT_GE(client, 0);
  ASSERT_GE(server, 0);
  const int rounds = static_cast<int>(Scaled(2000, 400));
  std::size_t largest = 0;
  Fiber([&] {
    Fiber writer([&] {
      ASSERT_TRUE(
          PollUntil([&] { return detail::WaitersOn(server) == 1; }, "the reader"));
      const std::string first(101, 'f');
      ASSERT_EQ(io::Write(client, first.data(), first.size()), 101);
    });
    char buf[1000];
    ASSERT_EQ(io::Read(server, buf, 1, Deadline(testing::kGenerousTimeout)), 1);
    writer.Join();
    const std::string message(1000, 'm');
    for (int i = 0; i < rounds; ++i) {
      const std::uint64_t before = MultishotReceivedBytes();
      ASSERT_EQ(io::Write(client, message.data(), message.size()), 1000);
      if (GetParam()) {
        // All of it in the stream first, so that the read leaves 100 bytes.
        ASSERT_TRUE(PollUntil([&] { return MultishotReceivedBytes() >= before + 1000; },
                              "the stream to take the message"));
      }
      ASSERT_TRUE(
          ReadExactly(server, buf, sizeof(buf), Deadline(testing::kGenerousTimeout)));
      largest = std::max(largest, detail::ReceiveStreamFootprintForTesting(
                                      detail::DescriptorSlot(server)));
    }
  }).Join();
  EXPECT_LE(largest, std::size_t{64} * 1024)
      << "the stream's buffer grew with the bytes that went through it";
  io::Close(client);
  io::Close(server);
}

// Bytes a stream holds are readable for WaitReadable and a peek, which
// leaves them for the read; after the peer's end, the reads get the bytes
// and then 0.
TEST_P(ReceiveStreamTest, PeeksAndWaitReadableSeeTheBytesAndTheEndComesAfterThem) {
  const auto connected = ConnectedPair();
  const int client = connected.first;
  const int server = connected.second;
  ASSERT_GE(client, 0);
  ASSERT_GE(server, 0);
  const std::uint64_t before = MultishotReceives();
  Fiber([&, fd = server] {
    Fiber writer([&, peer = client] {
      ASSERT_TRUE(PollUntil([&] { return detail::WaitersOn(fd) == 1; }, "the reader"));
      ASSERT_EQ(io::Write(peer, "hello", 5), 5);
      ASSERT_TRUE(PollUntil([&] { return detail::WaitersOn(fd) == 1; }, "the reader"));
      ASSERT_EQ(io::Write(peer, "world", 5), 5);
      io::Close(peer);
    });
    char buf[16];
    // Arms the stream (with multishot on) and waits.
    ASSERT_EQ(io::Read(fd, buf, 1, Deadline(testing::kGenerousTimeout)), 1);
    EXPECT_EQ(buf[0], 'h');
    ASSERT_EQ(io::WaitReadable(fd, Deadline(testing::kGenerousTimeout)), 0);
    ASSERT_EQ(io::Recv(fd, buf, 2, MSG_PEEK, Deadline(testing::kGenerousTimeout)), 2);
    EXPECT_EQ(std::string(buf, 2), "el");
    ASSERT_EQ(io::Read(fd, buf, 4, Deadline(testing::kGenerousTimeout)), 4);
    EXPECT_EQ(std::string(buf, 4), "ello");
    // Nothing held: the next read waits (the writer sees it waiting).
    ASSERT_TRUE(ReadExactly(fd, buf, 5, Deadline(testing::kGenerousTimeout)));
    EXPECT_EQ(std::string(buf, 5), "world");
    EXPECT_EQ(io::Read(fd, buf, sizeof(buf), Deadline(testing::kGenerousTimeout)), 0);
    EXPECT_EQ(io::Read(fd, buf, sizeof(buf), Deadline(testing::kGenerousTimeout)), 0);
    writer.Join();
  }).Join();
  io::Close(server);
  ExpectStreamsUsed(before);
}

// Close() while a read waits on the stream (even rounds) or while the
// stream holds bytes nobody read (odd rounds): a waiting read is cancelled,
// Close() returns once the stream ended, and the peer sees the connection
// go (the end of the stream, or a reset for the unread bytes).
TEST_P(ReceiveStreamTest, CloseEndsTheStreamAndThePeerSeesTheConnectionGo) {
  const int rounds = static_cast<int>(Scaled(40, 10));
  for (int round = 0; round < rounds; ++round) {
    const auto connected = ConnectedPair();
    const int client = connected.first;
    const int server = connected.second;
    ASSERT_GE(client, 0);
    ASSERT_GE(server, 0);
    const bool waiting = round % 2 == 0;
    ssize_t result = 0;
    int error = 0;
    std::atomic<bool> got_first{false};
    Fiber reader([&, fd = server] {
      char c;
      EXPECT_EQ(io::Read(fd, &c, 1, Deadline(testing::kGenerousTimeout)), 1);
      got_first = true;
      if (!waiting) return;
      result = io::Read(fd, &c, 1);
      error = errno;
    });
    ASSERT_TRUE(PollUntil([&, fd = server] { return detail::WaitersOn(fd) == 1; },
                          "the reader to wait"));
    const std::uint64_t bytes_before = MultishotReceivedBytes();
    ASSERT_EQ(io::Write(client, "a", 1), 1);
    if (waiting) {
      ASSERT_TRUE(
          PollUntil([&, fd = server] { return got_first && detail::WaitersOn(fd) == 1; },
                    "the reader to wait again"));
    } else {
      reader.Join();
      ASSERT_EQ(io::Write(client, "bcdef", 5), 5);
      if (GetParam()) {
        ASSERT_TRUE(
            PollUntil([&] { return MultishotReceivedBytes() >= bytes_before + 6; },
                      "the stream to take the bytes"));
      }
    }
    ASSERT_EQ(io::Close(server), 0);
    if (waiting) {
      reader.Join();
      EXPECT_EQ(result, -1);
      EXPECT_EQ(error, ECANCELED) << std::strerror(error);
    }
    char c;
    const ssize_t n = io::Read(client, &c, 1, Deadline(testing::kGenerousTimeout));
    const int read_error = errno;
    EXPECT_TRUE(n == 0 || (n < 0 && read_error == ECONNRESET))
        << "round " << round << ": read returned " << n << " ("
        << std::strerror(read_error) << ")";
    io::Close(client);
  }
}

// A Unix socket may carry descriptors, which a receive without ancillary
// data would drop: it never gets a stream, and a descriptor passed with
// its bytes arrives.
TEST_P(ReceiveStreamTest, UnixSocketsKeepTheirAncillaryData) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
  const std::uint64_t before = MultishotReceives();
  Fiber([&] {
    Fiber sender([&] {
      ASSERT_TRUE(
          PollUntil([&] { return detail::WaitersOn(pair[1]) == 1; }, "the receiver"));
      char byte = 'x';
      iovec iov{&byte, 1};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
      cmsg->cmsg_level = SOL_SOCKET;
      cmsg->cmsg_type = SCM_RIGHTS;
      cmsg->cmsg_len = CMSG_LEN(sizeof(int));
      const int passed = pair[0];
      std::memcpy(CMSG_DATA(cmsg), &passed, sizeof(int));
      ASSERT_EQ(io::SendMsg(pair[0], &msg, 0), 1) << std::strerror(errno);
    });
    // A plain read first, which would arm a stream on a TCP connection.
    char byte = 0;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ASSERT_EQ(io::WaitReadable(pair[1], Deadline(testing::kGenerousTimeout)), 0);
    ASSERT_EQ(io::RecvMsg(pair[1], &msg, 0, Deadline(testing::kGenerousTimeout)), 1);
    EXPECT_EQ(byte, 'x');
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    ASSERT_NE(cmsg, nullptr) << "the passed descriptor was dropped";
    int received = -1;
    std::memcpy(&received, CMSG_DATA(cmsg), sizeof(int));
    EXPECT_GE(received, 0);
    if (received >= 0) close(received);
    sender.Join();
    // And a plain read waits without a stream.
    Fiber writer([&] {
      ASSERT_TRUE(
          PollUntil([&] { return detail::WaitersOn(pair[1]) == 1; }, "the reader"));
      ASSERT_EQ(io::Write(pair[0], "y", 1), 1);
    });
    ASSERT_EQ(io::Read(pair[1], &byte, 1, Deadline(testing::kGenerousTimeout)), 1);
    EXPECT_EQ(byte, 'y');
    writer.Join();
  }).Join();
  EXPECT_EQ(MultishotReceives(), before);
  io::Close(pair[0]);
  io::Close(pair[1]);
}

// WEFT_IO_URING_MULTISHOT=0 turns multishot receives (and accepts) off for
// the runtimes started while it is set: reads still get every byte, through
// one request each; a value other than 0 or 1 is refused, naming them.
TEST(ReceiveStreamEnvironment, ZeroTurnsMultishotOffAndOtherValuesAreRefused) {
  if (const std::string why = testing::IoEngineSkipReason("io_uring"); !why.empty()) {
    GTEST_SKIP() << why;
  }
  const char* saved = std::getenv("WEFT_IO_URING_MULTISHOT");
  const std::string saved_value = saved != nullptr ? saved : "";
  RuntimeOptions options = testing::OptionsWithWorkers(2);
  options.io_engine = "io_uring";
  ASSERT_EQ(setenv("WEFT_IO_URING_MULTISHOT", "yes", 1), 0);
  try {
    StartRuntime(options);
    ADD_FAILURE() << "StartRuntime accepted WEFT_IO_URING_MULTISHOT=yes";
    TerminateRuntime();
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("WEFT_IO_URING_MULTISHOT is \"yes\""), std::string::npos) << what;
    EXPECT_NE(what.find("\"0\""), std::string::npos) << what;
    EXPECT_NE(what.find("\"1\""), std::string::npos) << what;
  }
  ASSERT_EQ(setenv("WEFT_IO_URING_MULTISHOT", "0", 1), 0);
  StartRuntime(options);
  Fiber([] {
    const auto connected = ConnectedPair();
    const int client = connected.first;
    const int server = connected.second;
    ASSERT_GE(client, 0);
    ASSERT_GE(server, 0);
    Fiber writer([&] {
      ASSERT_TRUE(
          PollUntil([&] { return detail::WaitersOn(server) == 1; }, "the reader"));
      ASSERT_EQ(io::Write(client, "ping", 4), 4);
    });
    char buf[4];
    ASSERT_TRUE(ReadExactly(server, buf, 4, Deadline(testing::kGenerousTimeout)));
    EXPECT_EQ(std::string(buf, 4), "ping");
    writer.Join();
    io::Close(client);
    io::Close(server);
  }).Join();
  EXPECT_EQ(MultishotReceives(), 0u);
  TerminateRuntime();
  if (saved != nullptr) {
    setenv("WEFT_IO_URING_MULTISHOT", saved_value.c_str(), 1);
  } else {
    unsetenv("WEFT_IO_URING_MULTISHOT");
  }
}

INSTANTIATE_TEST_SUITE_P(Multishot, ReceiveStreamTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Multishot")
                                             : std::string("OneShot");
                         });

}  // namespace
}  // namespace weft
