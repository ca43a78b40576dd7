// Close() and deadlines racing the completion of socket calls, with each I/O
// engine (epoll, and the io_uring socket engine whose calls wait in the
// workers' rings), with and without fibers migrating while they wait.
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/io/fd.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/descriptor_table.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "test/io/io_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::ConnectedPair;
using testing::PollUntil;
using testing::ReadExactly;
using testing::Scaled;

// Parameters: the engine and whether chaos migration moves fibers while they
// wait.
class EngineRaceTest : public ::testing::TestWithParam<std::tuple<const char*, bool>> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::IoEngineSkipReason(Engine()); !why.empty()) {
      GTEST_SKIP() << why;
    }
    RuntimeOptions options = testing::OptionsWithWorkers(2);
    options.io_engine = Engine();
    options.chaos_migration = std::get<1>(GetParam());
    StartRuntime(options);
    started_ = true;
  }

  void TearDown() override {
    if (started_) TerminateRuntime();
  }

  std::string Engine() const { return std::get<0>(GetParam()); }

 private:
  bool started_ = false;
};

// A read waiting for data is cancelled by Close() from another fiber: it
// fails with ECANCELED, and the descriptor is really closed: the peer sees
// the end of the stream (a request left in a ring would keep the socket
// open).
TEST_P(EngineRaceTest, CloseEndsAWaitingReadAndThePeerSeesTheEnd) {
  const int rounds = static_cast<int>(Scaled(50, 10));
  Fiber([&] {
    for (int round = 0; round < rounds; ++round) {
      auto [a, b] = ConnectedPair();
      ASSERT_GE(a, 0);
      std::atomic<long> result{0};
      std::atomic<int> error{0};
      Fiber reader([&, fd = a] {
        char c;
        result = io::Read(fd, &c, 1);
        error = detail::Errno();
      });
      ASSERT_TRUE(PollUntil([&, fd = a] { return detail::WaitersOn(fd) == 1; },
                            "the reader to wait"));
      EXPECT_EQ(io::Close(a), 0);
      reader.Join();
      EXPECT_EQ(result.load(), -1);
      EXPECT_EQ(error.load(), ECANCELED) << "round " << round;
      char c;
      EXPECT_EQ(io::Read(b, &c, 1, milliseconds(10'000)), 0)
          << "round " << round << ": the peer did not see the end: errno "
          << detail::Errno();
      EXPECT_EQ(io::Close(b), 0);
    }
  }).Join();
}

// Readers with short deadlines, a writer and a closer race on one
// connection: every call ends, each with a count, ETIMEDOUT, ECANCELED or
// EBADF, and what the readers got is a prefix of what was written, in order,
// each byte once.
TEST_P(EngineRaceTest, DeadlinesWritesAndCloseRaceWithoutLossOrDuplication) {
  const int rounds = static_cast<int>(Scaled(200, 30));
  Fiber([&] {
    for (int round = 0; round < rounds; ++round) {
      auto [a, b] = ConnectedPair();
      ASSERT_GE(a, 0);
      std::string received;
      std::atomic<bool> unexpected_error{false};
      std::atomic<int> last_errno{0};
      FiberLatch done(3);
      // One reader at a time, so that the order of its reads is the order of
      // the bytes.
      Fiber reader([&, fd = a] {
        for (int i = 0;; ++i) {
          char buf[7];
          const ssize_t n =
              io::Read(fd, buf, sizeof(buf), milliseconds(1 + (i + round) % 3));
          if (n > 0) {
            received.append(buf, static_cast<std::size_t>(n));
            continue;
          }
          const int e = detail::Errno();
          if (n == -1 && e == ETIMEDOUT) continue;
          if (n == 0 || e == ECANCELED || e == EBADF) break;
          last_errno = e;
          unexpected_error = true;
          break;
        }
        done.CountDown();
      });
      std::string sent;
      Fiber writer([&, fd = b] {
        for (int i = 0; i < 40; ++i) {
          const std::string piece = std::to_string(round) + ":" + std::to_string(i) + ";";
          if (io::Write(fd, piece.data(), piece.size()) !=
              static_cast<ssize_t>(piece.size())) {
            break;
          }
          sent += piece;
          if (i % 8 == 0) this_fiber::Yield();
        }
        done.CountDown();
      });
      Fiber closer([&, fd = a] {
        for (int i = 0; i < round % 5; ++i) this_fiber::Yield();
        EXPECT_EQ(io::Close(fd), 0);
        done.CountDown();
      });
      done.Wait();
      reader.Join();
      writer.Join();
      closer.Join();
      EXPECT_FALSE(unexpected_error.load()) << "errno " << last_errno.load();
      ASSERT_LE(received.size(), sent.size()) << "round " << round;
      EXPECT_EQ(received, sent.substr(0, received.size())) << "round " << round;
      EXPECT_EQ(io::Close(b), 0);
    }
  }).Join();
}

// Many connections, each echoed by its own fiber with a deadline per call,
// while the fibers migrate: every message comes back whole and in order.
TEST_P(EngineRaceTest, EchoesWithDeadlinesLoseNothing) {
  const int connections = static_cast<int>(Scaled(64, 16));
  const int messages = static_cast<int>(Scaled(100, 20));
  std::atomic<int> failures{0};
  Fiber([&] {
    std::vector<Fiber> fibers;
    for (int c = 0; c < connections; ++c) {
      auto [client, server] = ConnectedPair();
      ASSERT_GE(client, 0);
      fibers.emplace_back([&, fd = server] {
        char buf[64];
        for (;;) {
          const ssize_t n = io::Read(fd, buf, sizeof(buf), std::chrono::seconds(30));
          if (n <= 0) break;
          if (io::Write(fd, buf, static_cast<std::size_t>(n), std::chrono::seconds(30)) !=
              n) {
            break;
          }
        }
        io::Close(fd);
      });
      fibers.emplace_back([&, c, fd = client] {
        for (int m = 0; m < messages; ++m) {
          const std::string message = std::to_string(c) + "/" + std::to_string(m) + "\n";
          std::string back(message.size(), '\0');
          if (io::Write(fd, message.data(), message.size(), std::chrono::seconds(30)) !=
                  static_cast<ssize_t>(message.size()) ||
              !ReadExactly(fd, back.data(), back.size(), std::chrono::seconds(30)) ||
              back != message) {
            failures.fetch_add(1);
            break;
          }
        }
        io::Close(fd);
      });
    }
    for (Fiber& fiber : fibers) fiber.Join();
  }).Join();
  EXPECT_EQ(failures.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Engines, EngineRaceTest,
    ::testing::Combine(::testing::Values("epoll", "io_uring"), ::testing::Bool()),
    [](const ::testing::TestParamInfo<std::tuple<const char*, bool>>& info) {
      return std::string(std::get<0>(info.param) == std::string("epoll") ? "Epoll"
                                                                         : "IoUring") +
             (std::get<1>(info.param) ? "Chaos" : "");
    });

}  // namespace
}  // namespace weft
