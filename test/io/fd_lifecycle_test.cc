// weft::io's descriptor lifecycle: Close while fibers and threads wait, a
// number reused or closed behind weft's back, resets and half-closes, writes
// that never raise SIGPIPE, and plain threads with no runtime at all.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/io/fd.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/descriptor_table.h"
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
using testing::FdTest;
using testing::InFiber;
using testing::Message;
using testing::PollUntil;
using testing::ReadExactly;
using testing::Side;
using testing::SideName;

// Close() from another fiber or a plain thread wakes a fiber or a thread that
// waits on the descriptor, with ECANCELED, and the descriptor is closed once
// the waiter has left.
class CloseTest : public ::testing::TestWithParam<std::tuple<Side, Side>> {
 protected:
  void SetUp() override { StartRuntime(testing::OptionsWithWorkers(2)); }
  void TearDown() override { TerminateRuntime(); }
};

TEST_P(CloseTest, WakesTheWaitersWithEcanceled) {
  const Side waiter_side = std::get<0>(GetParam());
  const Side closer_side = std::get<1>(GetParam());
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  std::atomic<int> results[3] = {0, 0, 0};
  std::atomic<int> errors[3] = {0, 0, 0};
  std::vector<std::unique_ptr<Actor>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::make_unique<Actor>(waiter_side, [&, i] {
      char c;
      results[i] = static_cast<int>(i == 2 ? io::WaitReadable(a) : io::Read(a, &c, 1));
      errors[i] = detail::Errno();
    }));
  }
  ASSERT_TRUE(
      PollUntil([&] { return detail::WaitersOn(a) == 3; }, "the waiters to park"));
  Actor closer(closer_side, [&] { EXPECT_EQ(io::Close(a), 0); });
  closer.Join();
  waiters.clear();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].load(), -1) << "waiter " << i;
    EXPECT_EQ(errors[i].load(), ECANCELED) << "waiter " << i;
  }
  // Closed for good: further calls fail with EBADF.
  char c;
  EXPECT_EQ(io::Read(a, &c, 1), -1);
  EXPECT_EQ(detail::Errno(), EBADF);
  EXPECT_EQ(io::Close(a), -1);
  EXPECT_EQ(detail::Errno(), EBADF);
  io::Close(b);
}

INSTANTIATE_TEST_SUITE_P(
    Sides, CloseTest,
    ::testing::Combine(::testing::Values(Side::kFiber, Side::kThread),
                       ::testing::Values(Side::kFiber, Side::kThread)),
    [](const auto& info) {
      return std::string(SideName(std::get<0>(info.param))) + "WaitsAnd" +
             SideName(std::get<1>(info.param)) + "Closes";
    });

// A number reused after Close() gets nothing meant for the old descriptor: the
// old peer's data and hang-up do not wake a reader of the new one.
TEST_P(FdTest, AReusedNumberGetsNothingMeantForTheOldDescriptor) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  ASSERT_EQ(io::Close(a), 0);
  int c, d;
  std::tie(c, d) = ConnectedPair();
  ASSERT_GE(c, 0);
  // The lowest free number is reused; the pair may not take it in the same
  // order, so look for it among the new pair's descriptors.
  const int reused = (c == a) ? c : (d == a ? d : -1);
  if (reused < 0) GTEST_SKIP() << "the number was not reused";
  const int reused_peer = reused == c ? d : c;
  InFiber([&] {
    io::Write(b, "old", 3);  // to the closed descriptor's peer: reset
    io::Close(b);
    char buf[8];
    EXPECT_EQ(io::Read(reused, buf, sizeof(buf), milliseconds(50)), -1);
    EXPECT_EQ(detail::Errno(), ETIMEDOUT);
    ASSERT_EQ(io::Write(reused_peer, "new", 3), 3);
    ASSERT_TRUE(ReadExactly(reused, buf, 3));
    EXPECT_EQ(std::string(buf, 3), "new");
  });
  io::Close(c);
  io::Close(d);
}

// A descriptor closed behind weft's back (::close) while a fiber waits on it:
// the next Socket() that gets its number cancels the stale wait instead of
// handing it the new descriptor's events.
TEST_P(FdTest, ANumberClosedBehindWeftsBackCancelsTheStaleWait) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  std::atomic<int> result{0}, error{0};
  Fiber reader([&] {
    char c;
    // The deadline only keeps a failing test from hanging.
    result = static_cast<int>(io::Read(a, &c, 1, std::chrono::seconds(60)));
    error = detail::Errno();
  });
  ASSERT_TRUE(PollUntil([&] { return detail::WaitersOn(a) == 1; }, "the reader to park"));
  // Closed behind weft's back, and the number taken again by Socket() (in a
  // fiber, so that no poller is made in between; numbers below it that are
  // free go first, to sockets kept open until the end).
  int fresh = -1;
  std::vector<int> below;
  InFiber([&] {
    ASSERT_EQ(::close(a), 0);
    for (int i = 0; i < 64 && fresh != a; ++i) {
      if (fresh >= 0) below.push_back(fresh);
      fresh = io::Socket(AF_INET, SOCK_STREAM, 0);
    }
  });
  for (int fd : below) io::Close(fd);
  ASSERT_EQ(fresh, a) << "the lowest free number was not reused";
  reader.Join();
  EXPECT_EQ(result.load(), -1);
  EXPECT_EQ(error.load(), ECANCELED);
  io::Close(fresh);
  io::Close(b);
}

TEST_P(FdTest, PeerResetAndHalfClose) {
  InFiber([&] {
    {
      int a, b;
      std::tie(a, b) = ConnectedPair();
      ASSERT_GE(a, 0);
      linger reset{1, 0};
      ASSERT_EQ(setsockopt(b, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)), 0);
      io::Close(b);
      char c;
      EXPECT_EQ(io::Read(a, &c, 1), -1);
      EXPECT_EQ(detail::Errno(), ECONNRESET);
      io::Close(a);
    }
    {
      int a, b;
      std::tie(a, b) = ConnectedPair();
      ASSERT_GE(a, 0);
      ASSERT_EQ(shutdown(b, SHUT_WR), 0);
      char c;
      EXPECT_EQ(io::Read(a, &c, 1), 0);  // end of stream
      // The other direction still works.
      ASSERT_EQ(io::Write(a, "half", 4), 4);
      char buf[4];
      ASSERT_TRUE(ReadExactly(b, buf, 4));
      EXPECT_EQ(std::string(buf, 4), "half");
      io::Close(a);
      io::Close(b);
    }
  });
}

// With SIGPIPE at its default action (which ends the process), writes to a
// socket or a pipe whose reader is gone fail with EPIPE and raise nothing.
TEST_P(FdTest, WritesNeverRaiseSigpipe) {
  struct sigaction old_action;
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigaction(SIGPIPE, &default_action, &old_action);
  InFiber([&] {
    int a, b;
    std::tie(a, b) = ConnectedPair();
    ASSERT_GE(a, 0);
    io::Close(b);
    const std::string chunk(1 << 16, 'p');
    ssize_t result = 0;
    for (int i = 0; i < 100 && result >= 0; ++i) {
      result = io::Write(a, chunk.data(), chunk.size());
    }
    EXPECT_EQ(result, -1);
    EXPECT_TRUE(detail::Errno() == EPIPE || detail::Errno() == ECONNRESET)
        << std::strerror(detail::Errno());
    io::Close(a);

    int pipe_fds[2];
    ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    ::close(pipe_fds[0]);
    EXPECT_EQ(io::Write(pipe_fds[1], "x", 1), -1);
    EXPECT_EQ(detail::Errno(), EPIPE);
    io::Close(pipe_fds[1]);
  });
  sigset_t pending;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  sigaction(SIGPIPE, &old_action, nullptr);
}

INSTANTIATE_TEST_SUITE_P(Workers, FdTest,
                         ::testing::Values(std::size_t{1}, std::size_t{2},
                                           std::size_t{4}),
                         testing::WorkerCountName);

// Plain threads with no runtime at all: the fallback poller serves them.
TEST(FdWithoutRuntime, PlainThreadsEchoAndClose) {
  int a, b;
  std::tie(a, b) = ConnectedPair();
  ASSERT_GE(a, 0);
  std::thread echo([&] {
    char buf[256];
    for (;;) {
      const ssize_t n = io::Read(b, buf, sizeof(buf));
      if (n <= 0) break;
      ASSERT_EQ(io::Write(b, buf, static_cast<std::size_t>(n)), n);
    }
  });
  for (int i = 0; i < 100; ++i) {
    const std::string sent = Message(1 + i * 37 % 200, i);
    ASSERT_EQ(io::Write(a, sent.data(), sent.size()), static_cast<ssize_t>(sent.size()));
    std::string got(sent.size(), '\0');
    ASSERT_TRUE(ReadExactly(a, got.data(), got.size()));
    ASSERT_EQ(got, sent);
  }
  io::Close(a);
  echo.join();
  // Close from another thread wakes a waiting thread.
  int c, d;
  std::tie(c, d) = ConnectedPair();
  std::atomic<int> error{0};
  std::thread waiter([&] {
    char x;
    if (io::Read(c, &x, 1) < 0) error = detail::Errno();
  });
  ASSERT_TRUE(PollUntil([&] { return detail::WaitersOn(c) == 1; }, "the waiter to park"));
  EXPECT_EQ(io::Close(c), 0);
  waiter.join();
  EXPECT_EQ(error.load(), ECANCELED);
  io::Close(b);
  io::Close(d);
}

// Descriptors registered by fibers outlive the runtime: after it stops, a
// plain thread still uses them, and fibers of the next runtime too.
TEST(FdWithoutRuntime, DescriptorsOutliveTheRuntime) {
  StartRuntime(testing::OptionsWithWorkers(2));
  int a = -1, b = -1;
  InFiber([&] { std::tie(a, b) = ConnectedPair(); });
  ASSERT_GE(a, 0);
  TerminateRuntime();
  std::thread reader([&] {
    char c;
    EXPECT_EQ(io::Read(a, &c, 1, std::chrono::seconds(60)), 1);
  });
  ASSERT_EQ(io::Write(b, "1", 1), 1);
  reader.join();
  StartRuntime(testing::OptionsWithWorkers(2));
  InFiber([&] {
    char c;
    Fiber writer([&] { EXPECT_EQ(io::Write(b, "2", 1), 1); });
    EXPECT_EQ(io::Read(a, &c, 1, std::chrono::seconds(60)), 1);
    EXPECT_EQ(c, '2');
    writer.Join();
  });
  TerminateRuntime();
  io::Close(a);
  io::Close(b);
}

}  // namespace
}  // namespace weft
