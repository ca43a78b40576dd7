// The hooked C library calls (hook/, runtime/io/detail/hooked_calls.cc), in a
// program linked with weft::hook: each blocking call parks the fiber, the
// user's view of blocking mode and timeouts is kept, close wakes waiters,
// signals do not surface as EINTR, plain threads and regular files go to the
// C library, errno survives a fiber moving between workers.
#include <arpa/inet.h>
#include <netdb.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "hook/hook.h"
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
using testing::TwoWorkers;

// errno after a call that may park is read through detail::Errno(): the
// fiber may resume on another worker (every time, in chaos mode), and a
// function that read errno before the call may keep the first thread's
// address of it (glibc declares __errno_location() const; docs/io.md).

struct SocketPair {
  int a = -1, b = -1;
  SocketPair(int type = SOCK_STREAM) {
    int fds[2];
    EXPECT_EQ(socketpair(AF_UNIX, type, 0, fds), 0);
    a = fds[0];
    b = fds[1];
  }
  ~SocketPair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

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
      reads("read", [](int fd) { char c; return read(fd, &c, 1); }),
      reads("readv",
            [](int fd) {
              char c;
              iovec v{&c, 1};
              return readv(fd, &v, 1);
            }),
      reads("recv", [](int fd) { char c; return recv(fd, &c, 1, 0); }),
      reads("recvfrom", [](int fd) { char c; return recvfrom(fd, &c, 1, 0, nullptr, nullptr); }),
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
              return select(fd + 1, &set, nullptr, nullptr, nullptr) == 1 && FD_ISSET(fd, &set)
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
  cases.push_back(writes("write", [](int fd) { return write(fd, payload, sizeof(payload)); }));
  cases.push_back(writes("writev", [](int fd) {
    iovec v[2] = {{payload, 100}, {payload, sizeof(payload) - 100}};
    return writev(fd, v, 2);
  }));
  cases.push_back(writes("send", [](int fd) { return send(fd, payload, sizeof(payload), 0); }));
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
  ASSERT_TRUE(PollUntil([&] { return entered.load() == kFibers; }, "the fibers to start"));
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
  ASSERT_TRUE(PollUntil([&] { return detail::WaitersOn(fd) == 3; }, "the readers to park"));
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

// The fiber workers' thread ids (their names are weft-g<group>-w<index>).
std::vector<pid_t> WorkerThreads() {
  std::vector<pid_t> workers;
  DIR* tasks = opendir("/proc/self/task");
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name.rfind("weft-g", 0) == 0 && name.find("-w") != std::string::npos) {
      workers.push_back(static_cast<pid_t>(std::stol(entry->d_name)));
    }
  }
  closedir(tasks);
  return workers;
}

std::atomic<int> signals_seen{0};
void CountSignal(int) { signals_seen.fetch_add(1); }

// A handler without SA_RESTART: a thread blocked in read would see EINTR. A
// fiber parked in a hooked call is not the thread the signal interrupted, so
// its call goes on; the plain thread's call (straight to the C library) is
// interrupted as the C library's would be.
TEST(HookSignals, NoSpuriousEintrForParkedFibers) {
  struct sigaction action {}, old {};
  action.sa_handler = &CountSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  ASSERT_EQ(sigaction(SIGUSR1, &action, &old), 0);
  {
    Runtime runtime(TwoWorkers());
    SocketPair pair, polled;
    std::vector<pid_t> workers;
    ASSERT_TRUE(PollUntil(
        [&] {
          workers = WorkerThreads();
          return workers.size() == 2;
        },
        "both worker threads to be named"));
    std::atomic<long> read_result{0}, poll_result{0}, sleep_result{-1};
    std::atomic<int> read_errno{0};
    Fiber reader([&] {
      char c;
      read_result = read(pair.a, &c, 1);
      read_errno = detail::Errno();
    });
    Fiber poller([&] {
      pollfd p{polled.a, POLLIN, 0};
      poll_result = poll(&p, 1, -1);
    });
    Fiber sleeper([&] {
      timespec req{0, 300'000'000};
      sleep_result = nanosleep(&req, nullptr);
    });
    // From here on every fiber is joined whatever fails (a joinable Fiber
    // must not be destroyed), so the checks are EXPECTs.
    EXPECT_TRUE(PollUntil(
        [&] { return detail::WaitersOn(pair.a) == 1 && detail::WaitersOn(polled.a) == 1; },
        "the waiters"));
    // Signal until a handler has run. Each round also starts an empty fiber:
    // under TSan a signal that arrives while its thread sleeps in a raw futex
    // syscall is held back until the thread next runs instrumented code, so
    // the workers are woken to take it.
    const int before = signals_seen.load();
    EXPECT_TRUE(PollUntil(
        [&] {
          for (pid_t worker : workers) syscall(SYS_tgkill, getpid(), worker, SIGUSR1);
          for (std::size_t i = 0; i < workers.size(); ++i) StartFiberDetached([] {});
          return signals_seen.load() >= before + 1;
        },
        "a signal handler to run on a worker"));
    sleeper.Join();
    EXPECT_EQ(sleep_result.load(), 0);
    EXPECT_EQ(send(pair.b, "s", 1, 0), 1);
    EXPECT_EQ(send(polled.b, "s", 1, 0), 1);
    reader.Join();
    poller.Join();
    EXPECT_EQ(read_result.load(), 1) << "errno " << read_errno.load();
    EXPECT_EQ(poll_result.load(), 1);

    // The plain thread's read is the C library's: EINTR.
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    std::atomic<bool> started{false};
    std::atomic<long> plain_result{0};
    std::atomic<int> plain_errno{0};
    std::thread plain([&] {
      started = true;
      char c;
      plain_result = read(fds[0], &c, 1);
      plain_errno = errno;
    });
    ASSERT_TRUE(PollUntil([&] { return started.load(); }, "the thread"));
    // Signal until the read returns (the thread may not be in read yet).
    ASSERT_TRUE(PollUntil(
        [&] {
          pthread_kill(plain.native_handle(), SIGUSR1);
          return plain_result.load() != 0;
        },
        "the plain thread's read to be interrupted"));
    plain.join();
    EXPECT_EQ(plain_result.load(), -1);
    EXPECT_EQ(plain_errno.load(), EINTR);
    EXPECT_FALSE(Adopted(fds[0]));
    close(fds[0]);
    close(fds[1]);
  }
  sigaction(SIGUSR1, &old, nullptr);
}

TEST(HookPassThrough, PlainThreadsGoToTheCLibrary) {
  Runtime runtime(TwoWorkers());
  SocketPair pair;
  std::thread([&] {
    ASSERT_EQ(send(pair.b, "p", 1, 0), 1);
    char c;
    EXPECT_EQ(read(pair.a, &c, 1), 1);
    pollfd p{pair.a, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 10), 0);
    EXPECT_EQ(usleep(1000), 0);
  }).join();
  EXPECT_FALSE(Adopted(pair.a));
  EXPECT_FALSE(Adopted(pair.b));
  EXPECT_EQ(KernelFlags(pair.a) & O_NONBLOCK, 0);
}

TEST(HookPassThrough, RegularFilesGoToTheCLibrary) {
  Runtime runtime(TwoWorkers());
  char path[] = "/tmp/weft_hook_file_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  Fiber([&] {
    EXPECT_EQ(write(fd, "hello", 5), 5);
    EXPECT_EQ(lseek(fd, 0, SEEK_SET), 0);
    char buffer[8] = {};
    EXPECT_EQ(read(fd, buffer, sizeof(buffer)), 5);
    EXPECT_STREQ(buffer, "hello");
    pollfd p{fd, POLLIN | POLLOUT, 0};
    EXPECT_EQ(poll(&p, 1, -1), 1);
    // poll with a regular file and an idle socket: the file is ready.
    SocketPair pair;
    pollfd mixed[2] = {{pair.a, POLLIN, 0}, {fd, POLLIN, 0}};
    EXPECT_EQ(poll(mixed, 2, -1), 1);
    EXPECT_NE(mixed[1].revents & POLLIN, 0);
  }).Join();
  EXPECT_FALSE(Adopted(fd));
  EXPECT_EQ(KernelFlags(fd) & O_NONBLOCK, 0);
  close(fd);
}

// Errors set by hooked calls that parked, read at once by the fiber; in chaos
// mode every park resumes on another worker when one is free.
TEST(HookMigration, ErrnoIsTheCallersAfterMigrating) {
  RuntimeOptions options = TwoWorkers();
  options.chaos_migration = true;
  Runtime runtime(options);
  constexpr int kFibers = 8;
  const int rounds = static_cast<int>(testing::Scaled(40, 8));
  std::atomic<int> moved{0}, wrong_read{0}, wrong_sleep{0}, wrong_poll{0};
  std::vector<Fiber> fibers;
  for (int f = 0; f < kFibers; ++f) {
    fibers.emplace_back([&] {
      SocketPair pair;
      const timeval tv{0, 2'000};
      setsockopt(pair.a, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      for (int i = 0; i < rounds; ++i) {
        const long before = testing::OsThreadId();
        // errno through out-of-line accessors: glibc declares
        // __errno_location() const, so code that touched errno before a call
        // that migrates may keep the first thread's address (docs/io.md).
        char c;
        detail::SetErrno(0);
        if (read(pair.a, &c, 1) != -1 || detail::Errno() != EAGAIN) wrong_read.fetch_add(1);
        timespec nap{0, 100'000};
        detail::SetErrno(12345);
        if (nanosleep(&nap, nullptr) != 0 || detail::Errno() != 12345) wrong_sleep.fetch_add(1);
        pollfd p{pair.a, POLLIN, 0};
        detail::SetErrno(0);
        if (poll(&p, 1, 1) != 0 || detail::Errno() != 0) wrong_poll.fetch_add(1);
        if (testing::OsThreadId() != before) moved.fetch_add(1);
      }
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(wrong_read.load(), 0);
  EXPECT_EQ(wrong_sleep.load(), 0);
  EXPECT_EQ(wrong_poll.load(), 0);
  EXPECT_GT(moved.load(), 0) << "chaos mode never moved a fiber inside a hooked call";
}

}  // namespace
}  // namespace weft

namespace weft {
namespace {

// Lookups from many fibers that move between workers: each answer is the
// caller's own (getaddrinfo's list, gethostbyname's per-fiber buffer,
// gethostbyname_r's buffer), h_errno and errno are set on the thread that
// returns to the caller.
TEST(HookDns, LookupsFromMigratingFibersGetTheirOwnAnswers) {
  RuntimeOptions options = testing::TwoWorkers();
  options.chaos_migration = true;
  Runtime runtime(options);
  constexpr int kFibers = 200;
  std::atomic<int> good{0}, bad{0};
  std::vector<Fiber> fibers;
  for (int f = 0; f < kFibers; ++f) {
    fibers.emplace_back([&, f] {
      const in_addr_t loopback = htonl(INADDR_LOOPBACK);
      if (f % 3 == 0) {
        addrinfo hints{};
        hints.ai_family = AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* list = nullptr;
        const int code = getaddrinfo("localhost", "80", &hints, &list);
        const bool ok =
            code == 0 && list != nullptr &&
            reinterpret_cast<sockaddr_in*>(list->ai_addr)->sin_addr.s_addr == loopback &&
            ntohs(reinterpret_cast<sockaddr_in*>(list->ai_addr)->sin_port) == 80;
        if (list != nullptr) freeaddrinfo(list);
        (ok ? good : bad).fetch_add(1);
      } else if (f % 3 == 1) {
        hostent* host = gethostbyname("localhost");
        // Yield: another fiber's lookup on this worker must not overwrite it.
        this_fiber::Yield();
        const bool ok = host != nullptr && host->h_addrtype == AF_INET &&
                        host->h_addr_list[0] != nullptr &&
                        std::memcmp(host->h_addr_list[0], &loopback, 4) == 0;
        (ok ? good : bad).fetch_add(1);
      } else {
        hostent host, *result = nullptr;
        char buffer[512];
        int error = -1;
        const int rc = gethostbyname_r("localhost", &host, buffer, sizeof(buffer), &result,
                                       &error);
        const bool ok = rc == 0 && result == &host && error == 0 &&
                        std::memcmp(host.h_addr_list[0], &loopback, 4) == 0;
        (ok ? good : bad).fetch_add(1);
      }
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(good.load(), kFibers);
  EXPECT_EQ(bad.load(), 0);
}

TEST(HookDns, ErrorsAreTheCLibrarys) {
  Runtime runtime(testing::TwoWorkers());
  Fiber([] {
    hostent host, *result = &host;
    char tiny[4];
    int error = 0;
    EXPECT_EQ(gethostbyname_r("localhost", &host, tiny, sizeof(tiny), &result, &error), ERANGE);
    EXPECT_EQ(result, nullptr);
    char buffer[512];
    EXPECT_EQ(gethostbyname_r("name-that-does-not-resolve.invalid", &host, buffer,
                              sizeof(buffer), &result, &error),
              0);
    EXPECT_EQ(result, nullptr);
    EXPECT_EQ(error, HOST_NOT_FOUND);
    EXPECT_EQ(gethostbyname("name-that-does-not-resolve.invalid"), nullptr);
    EXPECT_EQ(h_errno, HOST_NOT_FOUND);
    addrinfo* list = nullptr;
    const int code = getaddrinfo("name-that-does-not-resolve.invalid", nullptr, nullptr, &list);
    EXPECT_TRUE(code == EAI_NONAME || code == EAI_AGAIN) << gai_strerror(code);
  }).Join();
}

}  // namespace
}  // namespace weft
