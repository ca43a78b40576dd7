// The hooked C library calls (hook/, runtime/io/detail/hooked_calls.cc) where
// the thread under the fiber matters, in a program linked with weft::hook:
// signals do not surface as EINTR in parked fibers, plain threads and regular
// files go to the C library, errno and DNS answers are the caller's after the
// fiber moved between workers. The blocking calls, the user's mode, timeouts
// and close are in hook_test.cc.
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/this_fiber.h"
#include "test/hook/hook_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using testing::Adopted;
using testing::KernelFlags;
using testing::PollUntil;
using testing::SocketPair;
using testing::TwoWorkers;

// errno after a call that may park is read through detail::Errno(): the
// fiber may resume on another worker (every time, in chaos mode), and a
// function that read errno before the call may keep the first thread's
// address of it (glibc declares __errno_location() const; docs/io.md).

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
  struct sigaction action {};
  struct sigaction old {};
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
        [&] {
          return detail::WaitersOn(pair.a) == 1 && detail::WaitersOn(polled.a) == 1;
        },
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
        if (read(pair.a, &c, 1) != -1 || detail::Errno() != EAGAIN)
          wrong_read.fetch_add(1);
        timespec nap{0, 100'000};
        detail::SetErrno(12345);
        if (nanosleep(&nap, nullptr) != 0 || detail::Errno() != 12345)
          wrong_sleep.fetch_add(1);
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
        const int rc =
            gethostbyname_r("localhost", &host, buffer, sizeof(buffer), &result, &error);
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
    EXPECT_EQ(gethostbyname_r("localhost", &host, tiny, sizeof(tiny), &result, &error),
              ERANGE);
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
    const int code =
        getaddrinfo("name-that-does-not-resolve.invalid", nullptr, nullptr, &list);
    EXPECT_TRUE(code == EAI_NONAME || code == EAI_AGAIN) << gai_strerror(code);
  }).Join();
}

}  // namespace
}  // namespace weft
