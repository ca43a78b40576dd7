// The hooked C library calls (hook/, runtime/io/detail/hooked_calls.cc), in a
// program linked with weft::hook: each blocking call parks the fiber (sleeps
// too), the user's view of blocking mode and timeouts is kept, close wakes
// waiters. Signals, plain threads, regular files, and fibers moving between
// workers are in hook_thread_test.cc.
#include "hook/hook.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/sync/fiber_latch.h"
#include "runtime/this_fiber.h"
#include "test/hook/hook_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::Adopted;
using testing::AWorkerIsFree;
using testing::KernelFlags;
using testing::PollUntil;
using testing::SocketPair;
using testing::TwoWorkers;

// errno after a call that may park is read through detail::Errno(): the
// fiber may resume on another worker (every time, in chaos mode), and a
// function that read errno before the call may keep the first thread's
// address of it (glibc declares __errno_location() const; docs/io.md).

// A listening TCP socket on 127.0.0.1, made with the C library.
int Listener(sockaddr_in* address) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  *address = sockaddr_in{};
  address->sin_family = AF_INET;
  address->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(*address);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(address), len), 0);
  EXPECT_EQ(listen(fd, 64), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(address), &len), 0);
  return fd;
}

TEST(HookLibrary, IsEnabledOnceTheRuntimeStarted) {
  Runtime runtime(TwoWorkers());
  EXPECT_TRUE(hook::Enabled());
}

// One blocking call per case on the descriptor `a` of a socket pair (or a
// listener), released from the test thread through `b`.
struct BlockingCase {
  std::string name;
  // Runs in the fiber; returns the call's result (> 0 or 0 as the case says).
  std::function<long(SocketPair&, int listener)> call;
  // Makes the call complete, from the test thread.
  std::function<void(SocketPair&, const sockaddr_in&)> release;
  // Whether `release` is called again until the call completes. A byte sent
  // or a connection made stays until the fiber takes it, so those cases are
  // released once: sending a byte on every poll while a slow fiber (ASan, a
  // loaded machine) had not yet woken filled the Unix socket's send buffer
  // with one-byte messages until the test's own send failed with EAGAIN. A
  // writer may need its peer drained more than once, and draining again is
  // harmless.
  bool until_done = false;
};

void SendByte(SocketPair& pair, const sockaddr_in&) {
  ASSERT_EQ(send(pair.b, "x", 1, MSG_DONTWAIT), 1);
}

void Connect(SocketPair&, const sockaddr_in& address) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)), 0);
  close(fd);
}

// Fills a's send buffer so that the next write waits, and releases it by
// draining b until the writer is done.
void FillSendBuffer(int fd) {
  const int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  char chunk[4096] = {};
  while (send(fd, chunk, sizeof(chunk), MSG_DONTWAIT) > 0) {
  }
}

std::vector<BlockingCase> Cases() {
  auto reads = [](const char* name, std::function<long(int)> op) {
    return BlockingCase{name, [op](SocketPair& p, int) { return op(p.a); }, SendByte};
  };
  std::vector<BlockingCase> cases = {
      reads("read",
            [](int fd) {
              char c;
              return read(fd, &c, 1);
            }),
      reads("readv",
            [](int fd) {
              char c;
              iovec v{&c, 1};
              return readv(fd, &v, 1);
            }),
      reads("recv",
            [](int fd) {
              char c;
              return recv(fd, &c, 1, 0);
            }),
      reads("recvfrom",
            [](int fd) {
              char c;
              return recvfrom(fd, &c, 1, 0, nullptr, nullptr);
            }),
      reads("recvmsg",
            [](int fd) {
              char c;
              iovec v{&c, 1};
              msghdr m{};
              m.msg_iov = &v;
              m.msg_iovlen = 1;
              return recvmsg(fd, &m, 0);
            }),
      reads("poll",
            [](int fd) {
              pollfd p{fd, POLLIN, 0};
              return poll(&p, 1, -1) == 1 && (p.revents & POLLIN) ? 1L : -1L;
            }),
      reads("poll_two",
            [](int fd) {
              int pipe_fds[2];
              if (pipe(pipe_fds) != 0) return -1L;
              pollfd p[2] = {{pipe_fds[0], POLLIN, 0}, {fd, POLLIN | POLLPRI, 0}};
              const int n = poll(p, 2, -1);
              close(pipe_fds[0]);
              close(pipe_fds[1]);
              return n == 1 && (p[1].revents & POLLIN) && p[0].revents == 0 ? 1L : -1L;
            }),
      reads("select",
            [](int fd) {
              fd_set set;
              FD_ZERO(&set);
              FD_SET(fd, &set);
              return select(fd + 1, &set, nullptr, nullptr, nullptr) == 1 &&
                             FD_ISSET(fd, &set)
                         ? 1L
                         : -1L;
            }),
  };
  auto writes = [](const char* name, std::function<long(int)> op) {
    return BlockingCase{name,
                        [op](SocketPair& p, int) {
                          FillSendBuffer(p.a);
                          return op(p.a);
                        },
                        [](SocketPair& p, const sockaddr_in&) {
                          char sink[65536];
                          while (recv(p.b, sink, sizeof(sink), MSG_DONTWAIT) > 0) {
                          }
                        },
                        /*until_done=*/true};
  };
  static char payload[1 << 16];
  cases.push_back(
      writes("write", [](int fd) { return write(fd, payload, sizeof(payload)); }));
  cases.push_back(writes("writev", [](int fd) {
    iovec v[2] = {{payload, 100}, {payload, sizeof(payload) - 100}};
    return writev(fd, v, 2);
  }));
  cases.push_back(
      writes("send", [](int fd) { return send(fd, payload, sizeof(payload), 0); }));
  cases.push_back(writes("sendto", [](int fd) {
    return sendto(fd, payload, sizeof(payload), 0, nullptr, 0);
  }));
  cases.push_back(writes("sendmsg", [](int fd) {
    iovec v{payload, sizeof(payload)};
    msghdr m{};
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    return sendmsg(fd, &m, 0);
  }));
  cases.push_back(BlockingCase{"accept",
                               [](SocketPair&, int listener) -> long {
                                 const int fd = accept(listener, nullptr, nullptr);
                                 if (fd < 0) return -1;
                                 // The user asked for a blocking, inheritable socket.
                                 const bool ok = (fcntl(fd, F_GETFL) & O_NONBLOCK) == 0 &&
                                                 fcntl(fd, F_GETFD) == 0;
                                 close(fd);
                                 return ok ? 1 : -1;
                               },
                               Connect});
  cases.push_back(BlockingCase{"accept4",
                               [](SocketPair&, int listener) -> long {
                                 const int fd = accept4(listener, nullptr, nullptr,
                                                        SOCK_NONBLOCK | SOCK_CLOEXEC);
                                 if (fd < 0) return -1;
                                 const bool ok = (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0 &&
                                                 fcntl(fd, F_GETFD) == FD_CLOEXEC;
                                 close(fd);
                                 return ok ? 1 : -1;
                               },
                               Connect});
  return cases;
}

class HookBlockingCall : public ::testing::TestWithParam<BlockingCase> {};

// Three fibers per worker block in the call; a fourth fiber still runs; each
// call completes once released, with the result the C library would give.
TEST_P(HookBlockingCall, ParksTheFiberNotTheWorker) {
  Runtime runtime(TwoWorkers());
  constexpr int kFibers = 6;
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<int> listeners;
  std::vector<sockaddr_in> addresses(kFibers);
  for (int i = 0; i < kFibers; ++i) {
    pairs.push_back(std::make_unique<SocketPair>());
    listeners.push_back(Listener(&addresses[i]));
  }
  std::atomic<int> entered{0};
  std::vector<long> results(kFibers, 0);
  std::unique_ptr<std::atomic<bool>[]> done(new std::atomic<bool>[kFibers]);
  std::vector<bool> released(kFibers, false);
  std::vector<Fiber> fibers;
  for (int i = 0; i < kFibers; ++i) {
    done[i] = false;
    fibers.emplace_back([&, i] {
      entered.fetch_add(1);
      results[i] = GetParam().call(*pairs[i], listeners[i]);
      done[i] = true;
    });
  }
  ASSERT_TRUE(
      PollUntil([&] { return entered.load() == kFibers; }, "the fibers to start"));
  EXPECT_TRUE(AWorkerIsFree());
  testing::WaitOrAbort(PollUntil(
      [&] {
        bool all = true;
        for (int i = 0; i < kFibers; ++i) {
          if (done[i]) continue;
          all = false;
          if (released[i] && !GetParam().until_done) continue;
          GetParam().release(*pairs[i], addresses[i]);
          released[i] = true;
        }
        return all;
      },
      "every blocked call to complete once released"));
  for (Fiber& fiber : fibers) fiber.Join();
  for (int i = 0; i < kFibers; ++i) EXPECT_GT(results[i], 0) << "fiber " << i;
  for (int fd : listeners) close(fd);
}

INSTANTIATE_TEST_SUITE_P(EveryCall, HookBlockingCall, ::testing::ValuesIn(Cases()),
                         [](const auto& info) { return info.param.name; });

TEST(HookBlockingCall, ConnectCompletesAndHonoursTheUsersMode) {
  Runtime runtime(TwoWorkers());
  sockaddr_in address;
  const int listener = Listener(&address);
  Fiber([&] {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    // A non-blocking connect still says EINPROGRESS or succeeds at once.
    const int nb = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    const int rc = connect(nb, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    EXPECT_TRUE(rc == 0 || detail::Errno() == EINPROGRESS) << detail::Errno();
    close(nb);
  }).Join();
  close(listener);
}

TEST(HookBlockingCall, EventfdReadParks) {
  Runtime runtime(TwoWorkers());
  const int fd = eventfd(0, 0);
  std::vector<Fiber> fibers;
  std::atomic<int> got{0};
  for (int i = 0; i < 3; ++i) {
    fibers.emplace_back([&] {
      std::uint64_t value = 0;
      if (read(fd, &value, sizeof(value)) == sizeof(value)) got.fetch_add(1);
    });
  }
  ASSERT_TRUE(
      PollUntil([&] { return detail::WaitersOn(fd) == 3; }, "the readers to park"));
  EXPECT_TRUE(AWorkerIsFree());
  for (int i = 0; i < 3; ++i) {
    const std::uint64_t one = 1;
    ASSERT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
    ASSERT_TRUE(PollUntil([&] { return got.load() == i + 1; }, "a reader to get it"));
  }
  for (Fiber& fiber : fibers) fiber.Join();
  close(fd);
}

TEST(HookUserMode, NonBlockingSocketStillFailsWithEagain) {
  Runtime runtime(TwoWorkers());
  SocketPair pair;
  Fiber([&] {
    char c;
    EXPECT_EQ(fcntl(pair.a, F_SETFL, fcntl(pair.a, F_GETFL) | O_NONBLOCK), 0);
    EXPECT_NE(fcntl(pair.a, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(read(pair.a, &c, 1), -1);
    EXPECT_EQ(detail::Errno(), EAGAIN);
    EXPECT_EQ(recv(pair.a, &c, 1, 0), -1);
    EXPECT_EQ(detail::Errno(), EAGAIN);
    // Back to blocking: the user sees blocking, the kernel keeps O_NONBLOCK.
    EXPECT_EQ(fcntl(pair.a, F_SETFL, fcntl(pair.a, F_GETFL) & ~O_NONBLOCK), 0);
    EXPECT_EQ(fcntl(pair.a, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(KernelFlags(pair.a) & O_NONBLOCK, 0);
    // ioctl(FIONBIO) is the other way to say it.
    int on = 1;
    EXPECT_EQ(ioctl(pair.a, FIONBIO, &on), 0);
    EXPECT_NE(fcntl(pair.a, F_GETFL) & O_NONBLOCK, 0);
    EXPECT_EQ(read(pair.a, &c, 1), -1);
    EXPECT_EQ(detail::Errno(), EAGAIN);
    on = 0;
    EXPECT_EQ(ioctl(pair.a, FIONBIO, &on), 0);
    EXPECT_EQ(fcntl(pair.a, F_GETFL) & O_NONBLOCK, 0);
  }).Join();
}

TEST(HookUserMode, ModeSetBeforeTheFirstHookedCallIsTheUsers) {
  Runtime runtime(TwoWorkers());
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_NONBLOCK), 0);
  Fiber([&] {
    char c;
    EXPECT_EQ(read(fds[0], &c, 1), -1);
    EXPECT_EQ(detail::Errno(), EAGAIN);
    EXPECT_NE(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0);
  }).Join();
  close(fds[0]);
  close(fds[1]);
}

TEST(HookTimeouts, ReceiveTimeoutIsADeadline) {
  Runtime runtime(TwoWorkers());
  SocketPair before, after;
  const timeval tv{0, 100'000};
  ASSERT_EQ(setsockopt(before.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
  Fiber([&] {
    char c;
    auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(read(before.a, &c, 1), -1);
    EXPECT_EQ(detail::Errno(), EAGAIN);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(90));
    // Set after weft adopted the socket.
    pollfd p{after.a, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 1), 0);
    ASSERT_TRUE(Adopted(after.a));
    ASSERT_EQ(setsockopt(after.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
    start = std::chrono::steady_clock::now();
    EXPECT_EQ(recv(after.a, &c, 1, 0), -1);
    EXPECT_EQ(detail::Errno(), EAGAIN);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(90));
    // Data already there is read whatever the timeout.
    ASSERT_EQ(send(after.b, "y", 1, 0), 1);
    EXPECT_EQ(read(after.a, &c, 1), 1);
  }).Join();
}

TEST(HookTimeouts, LongTimeoutsAreNotClampedAndZeroMeansNone) {
  Runtime runtime(TwoWorkers());
  SocketPair pair;
  Fiber([&] {
    pollfd p{pair.a, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 1), 0);  // a waiting call: weft adopts the socket
    ASSERT_TRUE(Adopted(pair.a));
    const timeval hour{3600, 0};
    ASSERT_EQ(setsockopt(pair.a, SOL_SOCKET, SO_RCVTIMEO, &hour, sizeof(hour)), 0);
    ASSERT_EQ(setsockopt(pair.a, SOL_SOCKET, SO_SNDTIMEO, &hour, sizeof(hour)), 0);
    detail::DescriptorState& slot = detail::DescriptorSlot(pair.a);
    EXPECT_EQ(slot.receive_timeout_ns.load(), 3600LL * 1'000'000'000);
    EXPECT_EQ(slot.send_timeout_ns.load(), 3600LL * 1'000'000'000);
    const timeval none{0, 0};
    ASSERT_EQ(setsockopt(pair.a, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none)), 0);
    EXPECT_EQ(slot.receive_timeout_ns.load(), 0);
  }).Join();
  // With no timeout a read waits as long as it takes: release it later.
  std::atomic<long> got{0};
  Fiber reader([&] {
    char c;
    got = read(pair.a, &c, 1);
  });
  ASSERT_TRUE(PollUntil([&] { return detail::WaitersOn(pair.a) == 1; }, "the reader"));
  ASSERT_EQ(send(pair.b, "z", 1, 0), 1);
  reader.Join();
  EXPECT_EQ(got.load(), 1);
}

TEST(HookTimeouts, SendTimeoutIsADeadlineForWrites) {
  Runtime runtime(TwoWorkers());
  SocketPair pair;
  const timeval tv{0, 100'000};
  ASSERT_EQ(setsockopt(pair.a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
  Fiber([&] {
    FillSendBuffer(pair.a);
    static char big[1 << 16];
    EXPECT_EQ(write(pair.a, big, sizeof(big)), -1);
    EXPECT_EQ(detail::Errno(), EAGAIN);
  }).Join();
}

TEST(HookClose, WakesEveryWaiter) {
  Runtime runtime(TwoWorkers());
  SocketPair pair;
  std::vector<Fiber> readers;
  std::atomic<int> badf{0};
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      char c;
      if (read(pair.a, &c, 1) == -1 && detail::Errno() == EBADF) badf.fetch_add(1);
    });
  }
  ASSERT_TRUE(PollUntil([&] { return detail::WaitersOn(pair.a) == 3; }, "the readers"));
  Fiber([&] { EXPECT_EQ(close(pair.a), 0); }).Join();
  for (Fiber& fiber : readers) fiber.Join();
  EXPECT_EQ(badf.load(), 3);
  pair.a = -1;
}

TEST(HookClose, FromAPlainThreadWakesFibers) {
  Runtime runtime(TwoWorkers());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<int> badf{0};
  Fiber reader([&] {
    char c;
    if (read(fds[0], &c, 1) == -1 && detail::Errno() == EBADF) badf.fetch_add(1);
  });
  ASSERT_TRUE(PollUntil([&] { return detail::WaitersOn(fds[0]) == 1; }, "the reader"));
  EXPECT_EQ(close(fds[0]), 0);
  reader.Join();
  EXPECT_EQ(badf.load(), 1);
  EXPECT_FALSE(Adopted(fds[0]));
  close(fds[1]);
}

TEST(HookSleep, SleepsParkTheFiber) {
  Runtime runtime(TwoWorkers());
  std::atomic<int> asleep{0}, woke{0};
  std::vector<Fiber> sleepers;
  for (int i = 0; i < 6; ++i) {
    sleepers.emplace_back([&, i] {
      asleep.fetch_add(1);
      if (i % 3 == 0) {
        EXPECT_EQ(sleep(1), 0u);
      } else if (i % 3 == 1) {
        EXPECT_EQ(usleep(1'000'000), 0);
      } else {
        timespec req{1, 0}, rem{7, 7};
        EXPECT_EQ(nanosleep(&req, &rem), 0);
      }
      woke.fetch_add(1);
    });
  }
  ASSERT_TRUE(PollUntil([&] { return asleep.load() == 6; }, "the sleepers"));
  EXPECT_TRUE(AWorkerIsFree());
  for (Fiber& fiber : sleepers) fiber.Join();
  EXPECT_EQ(woke.load(), 6);
  Fiber([] {
    timespec bad{0, 1'000'000'000};
    EXPECT_EQ(nanosleep(&bad, nullptr), -1);
    EXPECT_EQ(detail::Errno(), EINVAL);
    timespec negative{-1, 0};
    EXPECT_EQ(nanosleep(&negative, nullptr), -1);
    EXPECT_EQ(detail::Errno(), EINVAL);
  }).Join();
}

}  // namespace
}  // namespace weft
