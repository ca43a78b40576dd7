// weft::io's file calls (runtime/io/file.h), with each engine: the workers'
// io_uring and the blocking pool (io_uring forced off). Round trips at
// offsets, vectored, syncs, short reads at end of file, errors, fibers and
// plain threads, a ring far smaller than the requests in flight, chaos-mode
// migration while requests are in flight, and deadlines racing completions.
#include "runtime/io/file.h"

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/detail/errno.h"
#include "runtime/fiber.h"
#include "runtime/runtime.h"
#include "runtime/scheduling_group/runtime_state.h"
#include "test/test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::PollUntil;
using testing::Scaled;

// A temporary file under /tmp, removed (and closed) at the end of the test.
class TempFile {
 public:
  TempFile() {
    char path[] = "/tmp/weft_file_test_XXXXXX";
    fd_ = mkstemp(path);
    if (fd_ < 0) throw std::runtime_error("mkstemp failed");
    unlink(path);
  }
  ~TempFile() { close(fd_); }
  int fd() const { return fd_; }

 private:
  int fd_;
};

class Pipe {
 public:
  Pipe() {
    if (pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  }
  ~Pipe() {
    close(fds_[0]);
    close(fds_[1]);
  }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }

 private:
  int fds_[2];
};

// The byte at `offset` of record `record`, so that every byte says where it
// belongs.
char ByteOf(std::size_t record, std::size_t offset) {
  return static_cast<char>((record * 131 + offset * 7 + 1) % 251);
}

std::string Record(std::size_t record, std::size_t size) {
  std::string text(size, '\0');
  for (std::size_t i = 0; i < size; ++i) text[i] = ByteOf(record, i);
  return text;
}

// Writes record `i` at offset i * size and reads it back: true when every byte
// came back right.
bool WriteAndReadBack(int fd, std::size_t i, std::size_t size) {
  const std::string record = Record(i, size);
  const off_t offset = static_cast<off_t>(i * size);
  if (io::PWrite(fd, record.data(), size, offset) != static_cast<ssize_t>(size)) {
    return false;
  }
  std::string back(size, '\0');
  if (io::PRead(fd, back.data(), size, offset) != static_cast<ssize_t>(size))
    return false;
  return back == record;
}

// Parameter: RuntimeOptions::io_engine ("io_uring", or "epoll": the blocking
// pool for files).
class FileTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (const std::string why = testing::IoEngineSkipReason(GetParam()); !why.empty()) {
      GTEST_SKIP() << why;
    }
  }

  void TearDown() override {
    if (started_) TerminateRuntime();
  }

  void Start(std::size_t ring_entries = 256, bool chaos = false) {
    RuntimeOptions options = testing::OptionsWithWorkers(2);
    options.io_engine = GetParam();
    options.io_uring_entries = ring_entries;
    options.chaos_migration = chaos;
    StartRuntime(options);
    started_ = true;
  }

  bool OnRing() const { return std::string(GetParam()) == "io_uring"; }

  // The counters must say which engine served the calls.
  void ExpectServedByEngine() {
    const FileIoStats files = GetRuntimeStats().file_io;
    if (OnRing()) {
      EXPECT_EQ(files.engine, "io_uring") << files.reason;
      EXPECT_GT(files.submitted, 0u);
      EXPECT_EQ(files.submitted, files.completed);
      EXPECT_EQ(files.fallbacks, 0u);
    } else {
      EXPECT_EQ(files.engine, "blocking pool");
      EXPECT_EQ(files.submitted, 0u);
      EXPECT_GT(files.fallbacks, 0u);
    }
  }

 private:
  bool started_ = false;
};

TEST_P(FileTest, RoundTripsAtOffsetsFromFibers) {
  Start();
  TempFile file;
  std::vector<Fiber> fibers;
  std::atomic<int> failures{0};
  for (std::size_t i = 0; i < 16; ++i) {
    fibers.emplace_back([&, i] {
      if (!WriteAndReadBack(file.fd(), i, 4096 + 17)) failures.fetch_add(1);
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(failures.load(), 0);
  struct stat st;
  ASSERT_EQ(fstat(file.fd(), &st), 0);
  EXPECT_EQ(st.st_size, 16 * (4096 + 17));
  ExpectServedByEngine();
}

TEST_P(FileTest, RoundTripsFromPlainThreads) {
  Start();
  TempFile file;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t i = t; i < 64; i += 4) {
        if (!WriteAndReadBack(file.fd(), i, 512)) failures.fetch_add(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_P(FileTest, VectoredCallsScatterAndGather) {
  Start();
  TempFile file;
  Fiber([&] {
    const std::string a = Record(1, 100), b = Record(2, 3000), c = Record(3, 5);
    iovec out[3] = {{const_cast<char*>(a.data()), a.size()},
                    {const_cast<char*>(b.data()), b.size()},
                    {const_cast<char*>(c.data()), c.size()}};
    ASSERT_EQ(io::PWriteV(file.fd(), out, 3, 1000), 3105);
    // Read back through differently sized pieces.
    std::string x(7, '\0'), y(3000, '\0'), z(98, '\0');
    iovec in[3] = {{x.data(), x.size()}, {y.data(), y.size()}, {z.data(), z.size()}};
    ASSERT_EQ(io::PReadV(file.fd(), in, 3, 1000), 3105);
    EXPECT_EQ(x + y + z, a + b + c);
    // The bytes before the offset are a hole: zeros.
    char hole[16];
    ASSERT_EQ(io::PRead(file.fd(), hole, sizeof(hole), 500), 16);
    EXPECT_EQ(std::string(hole, 16), std::string(16, '\0'));
  }).Join();
  ExpectServedByEngine();
}

TEST_P(FileTest, SyncsSucceedOnFilesAndFailOnPipes) {
  Start();
  TempFile file;
  Pipe pipe;
  Fiber([&] {
    ASSERT_EQ(io::PWrite(file.fd(), "x", 1, 0), 1);
    EXPECT_EQ(io::Fsync(file.fd()), 0);
    EXPECT_EQ(io::Fdatasync(file.fd()), 0);
    EXPECT_EQ(io::Fsync(pipe.write_end()), -1);
    EXPECT_EQ(detail::Errno(), EINVAL);
  }).Join();
  EXPECT_EQ(io::Fsync(file.fd()), 0);  // a plain thread
  ExpectServedByEngine();
}

TEST_P(FileTest, ReadsAtAndPastEndOfFileAreShort) {
  Start();
  TempFile file;
  const std::string data = Record(9, 100);
  ASSERT_EQ(io::PWrite(file.fd(), data.data(), data.size(), 0), 100);
  Fiber([&] {
    char buf[4096];
    ASSERT_EQ(io::PRead(file.fd(), buf, sizeof(buf), 60), 40);
    EXPECT_EQ(std::string(buf, 40), data.substr(60));
    EXPECT_EQ(io::PRead(file.fd(), buf, sizeof(buf), 100), 0);
    EXPECT_EQ(io::PRead(file.fd(), buf, sizeof(buf), 1 << 20), 0);
  }).Join();
}

TEST_P(FileTest, ErrorsComeBackAsErrno) {
  Start();
  TempFile file;
  char path[] = "/tmp/weft_file_test_ro_XXXXXX";
  const int made = mkstemp(path);
  ASSERT_GE(made, 0);
  close(made);
  const int read_only = open(path, O_RDONLY | O_CLOEXEC);
  unlink(path);
  ASSERT_GE(read_only, 0);
  auto check = [&] {
    char buf[8] = {};
    EXPECT_EQ(io::PRead(-1, buf, sizeof(buf), 0), -1);
    EXPECT_EQ(detail::Errno(), EBADF);
    EXPECT_EQ(io::PWrite(read_only, buf, sizeof(buf), 0), -1);
    EXPECT_EQ(detail::Errno(), EBADF);
    EXPECT_EQ(io::PRead(file.fd(), buf, sizeof(buf), -5), -1);
    EXPECT_EQ(detail::Errno(), EINVAL);
    EXPECT_EQ(io::Fsync(-1), -1);
    EXPECT_EQ(detail::Errno(), EBADF);
  };
  Fiber(check).Join();
  check();  // a plain thread
  close(read_only);
}

// Far more requests in flight than ring entries: a reader of one pipe per
// fiber would need thousands of descriptors, so every fiber reads one byte of
// a single pipe; the bytes must all arrive, each exactly once.
TEST_P(FileTest, ManyReadersOnASmallRingLoseNothing) {
  Start(/*ring_entries=*/2);
  Pipe pipe;
  const std::size_t readers = Scaled(2000, 200);
  std::vector<std::atomic<int>> seen(251);
  std::atomic<int> failures{0};
  std::vector<Fiber> fibers;
  for (std::size_t i = 0; i < readers; ++i) {
    fibers.emplace_back([&] {
      unsigned char byte = 0;
      if (io::PRead(pipe.read_end(), &byte, 1, 0) != 1) {
        failures.fetch_add(1);
        return;
      }
      seen[byte].fetch_add(1);
    });
  }
  if (OnRing()) {
    // Readers beyond the ring's room wait for it.
    ASSERT_TRUE(PollUntil([] { return GetRuntimeStats().file_io.room_waits > 0; },
                          "a reader waiting for room in its worker's ring"));
  }
  std::string bytes(readers, '\0');
  for (std::size_t i = 0; i < readers; ++i) bytes[i] = static_cast<char>(i % 251);
  ASSERT_EQ(write(pipe.write_end(), bytes.data(), bytes.size()),
            static_cast<ssize_t>(readers));
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(failures.load(), 0);
  for (std::size_t v = 0; v < 251; ++v) {
    const std::size_t expected = readers / 251 + (v < readers % 251 ? 1 : 0);
    EXPECT_EQ(seen[v].load(), static_cast<int>(expected)) << "byte value " << v;
  }
  ExpectServedByEngine();
}

TEST_P(FileTest, ManyFibersOnASmallRingGetEveryByteRight) {
  Start(/*ring_entries=*/2);
  TempFile file;
  const std::size_t count = Scaled(2000, 200);
  std::atomic<int> failures{0};
  std::vector<Fiber> fibers;
  for (std::size_t i = 0; i < count; ++i) {
    fibers.emplace_back([&, i] {
      if (!WriteAndReadBack(file.fd(), i, 64)) failures.fetch_add(1);
    });
  }
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(failures.load(), 0);
  ExpectServedByEngine();
}

// Each fiber is sent to another worker whenever it is made ready, so it
// resumes elsewhere than where it submitted.
TEST_P(FileTest, FibersMigratingWithRequestsInFlightGetTheirData) {
  Start(/*ring_entries=*/4, /*chaos=*/true);
  TempFile file;
  Pipe pipe;
  const std::size_t count = Scaled(400, 40);
  std::atomic<int> failures{0};
  std::atomic<std::size_t> pipe_bytes{0};
  std::vector<Fiber> fibers;
  for (std::size_t i = 0; i < count; ++i) {
    fibers.emplace_back([&, i] {
      char on_stack[1] = {};
      const ssize_t got = io::PRead(pipe.read_end(), on_stack, sizeof(on_stack), 0);
      if (got <= 0) failures.fetch_add(1);
      for (ssize_t k = 0; k < got; ++k) {
        if (on_stack[k] != 'p') failures.fetch_add(1);
      }
      pipe_bytes.fetch_add(got > 0 ? static_cast<std::size_t>(got) : 0);
      for (int round = 0; round < 3; ++round) {
        if (!WriteAndReadBack(file.fd(), i * 3 + round, 200)) failures.fetch_add(1);
      }
    });
  }
  const std::string bytes(count, 'p');
  ASSERT_EQ(write(pipe.write_end(), bytes.data(), count), static_cast<ssize_t>(count));
  for (Fiber& fiber : fibers) fiber.Join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(pipe_bytes.load(), count);
  ExpectServedByEngine();
}

TEST_P(FileTest, DeadlineOnAnEmptyPipeTimesOutAndLeavesTheBufferAlone) {
  Start();
  Pipe pipe;
  Fiber([&] {
    char guarded[64];
    std::memset(guarded, '#', sizeof(guarded));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(io::PRead(pipe.read_end(), guarded + 16, 32, 0, milliseconds(20)), -1);
    EXPECT_EQ(detail::Errno(), ETIMEDOUT);
    EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(20));
    EXPECT_EQ(std::string(guarded, 64), std::string(64, '#'));
    // The cancelled read took nothing: the next one gets all that is written.
    ASSERT_EQ(write(pipe.write_end(), "hello", 5), 5);
    EXPECT_EQ(io::PRead(pipe.read_end(), guarded, 5, 0, milliseconds(10'000)), 5);
    EXPECT_EQ(std::string(guarded, 5), "hello");
  }).Join();
  ExpectServedByEngine();
}

// Deadlines that fall around the time the data arrives: every call either
// gets bytes or times out, and the bytes read plus those left in the pipe are
// exactly those written.
TEST_P(FileTest, DeadlinesRacingCompletionsLoseNothing) {
  Start();
  Pipe pipe;
  const int rounds = static_cast<int>(Scaled(300, 30));
  std::atomic<std::size_t> read_total{0};
  std::atomic<int> timeouts{0}, failures{0};
  Fiber([&] {
    for (int round = 0; round < rounds; ++round) {
      Fiber writer([&, round] {
        this_fiber::SleepFor(std::chrono::microseconds(round % 7 * 100));
        if (write(pipe.write_end(), "ab", 2) != 2) failures.fetch_add(1);
      });
      char buf[8];
      const ssize_t got = io::PRead(pipe.read_end(), buf, sizeof(buf), 0,
                                    std::chrono::microseconds(round % 5 * 150));
      if (got > 0) {
        // One reader: what it reads is a prefix of "abab...".
        const std::size_t before = read_total.fetch_add(static_cast<std::size_t>(got));
        for (ssize_t k = 0; k < got; ++k) {
          if (buf[k] != ((before + k) % 2 == 0 ? 'a' : 'b')) failures.fetch_add(1);
        }
      } else if (got < 0 && detail::Errno() == ETIMEDOUT) {
        timeouts.fetch_add(1);
      } else {
        failures.fetch_add(1);
      }
      writer.Join();
    }
  }).Join();
  // What is left in the pipe.
  ASSERT_EQ(fcntl(pipe.read_end(), F_SETFL, O_NONBLOCK), 0);
  std::size_t left = 0;
  char drain[4096];
  for (ssize_t n; (n = read(pipe.read_end(), drain, sizeof(drain))) > 0;) {
    left += static_cast<std::size_t>(n);
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(read_total.load() + left, static_cast<std::size_t>(rounds) * 2);
  std::ostringstream note;
  note << timeouts.load() << " of " << rounds << " reads timed out";
  RecordProperty("timeouts", note.str());
}

// The completion of a request in flight must reach its fiber after every
// worker went to sleep (on io_uring: through the ring's eventfd in the
// group's epoll instance).
TEST_P(FileTest, ACompletionWakesSleepingWorkers) {
  Start();
  Pipe pipe;
  std::atomic<bool> done{false};
  char got = 0;
  Fiber reader([&] {
    if (io::PRead(pipe.read_end(), &got, 1, 0) == 1) done.store(true);
  });
  // The read is in flight once it was submitted (or handed to the pool)...
  ASSERT_TRUE(PollUntil(
      [] {
        const FileIoStats files = GetRuntimeStats().file_io;
        return files.submitted + files.fallbacks == 1;
      },
      "the read to start"));
  // ...and then every worker goes to sleep (the pool's thread is blocked in
  // the read).
  ASSERT_TRUE(PollUntil(
      [] {
        for (const auto& group : detail::State().groups) {
          if (!group->AllWorkersAsleep()) return false;
        }
        return true;
      },
      "every worker to sleep"));
  ASSERT_EQ(write(pipe.write_end(), "z", 1), 1);
  EXPECT_TRUE(PollUntil([&] { return done.load(); }, "the reader to get its byte"));
  reader.Join();
  EXPECT_EQ(got, 'z');
}

INSTANTIATE_TEST_SUITE_P(Engines, FileTest, ::testing::Values("io_uring", "epoll"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param) == "epoll" ? "BlockingPool"
                                                                     : "IoUring";
                         });

TEST(File, CallsWorkWithoutARuntime) {
  TempFile file;
  EXPECT_TRUE(WriteAndReadBack(file.fd(), 3, 1000));
  EXPECT_EQ(io::Fsync(file.fd()), 0);
}

TEST(File, AnUnknownEngineIsRejectedNamingTheAcceptedValues) {
  RuntimeOptions options = testing::OptionsWithWorkers(1);
  options.io_engine = "uring";
  try {
    StartRuntime(options);
    TerminateRuntime();
    FAIL() << "StartRuntime accepted io_engine \"uring\"";
  } catch (const std::invalid_argument& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("\"auto\", \"epoll\" and \"io_uring\""), std::string::npos)
        << message;
  }
  options.io_engine = "auto";
  options.io_uring_entries = 3;
  EXPECT_THROW(StartRuntime(options), std::invalid_argument);
}

// Makes io_uring_setup fail with ENOSYS for this process, as a container's
// seccomp profile does. False if the filter could not be installed.
bool RefuseIoUringSetup() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])),
                     filter};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

// In a child process whose seccomp filter refuses io_uring, "auto" falls back
// to the blocking pool, says why, and the calls give the same results.
TEST(File, AKernelThatRefusesIoUringFallsBackToTheBlockingPool) {
  // The engine is "auto" (or io_uring), probed against a kernel that refuses
  // io_uring; epoll would not probe at all.
  if (const std::string why = testing::IoEngineSkipReason("io_uring"); !why.empty()) {
    GTEST_SKIP() << why;
  }
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_EXIT(
      {
        if (!RefuseIoUringSetup()) {
          std::fprintf(stderr, "could not install the seccomp filter\n");
          std::_Exit(2);
        }
        RuntimeOptions options = testing::OptionsWithWorkers(2);
        options.io_engine = "auto";
        StartRuntime(options);
        TempFile file;
        std::atomic<int> failures{0};
        std::vector<Fiber> fibers;
        for (std::size_t i = 0; i < 32; ++i) {
          fibers.emplace_back([&, i] {
            if (!WriteAndReadBack(file.fd(), i, 300)) failures.fetch_add(1);
          });
        }
        for (Fiber& fiber : fibers) fiber.Join();
        const FileIoStats files = GetRuntimeStats().file_io;
        TerminateRuntime();
        const bool ok =
            failures.load() == 0 && files.engine == "blocking pool" &&
            files.reason.find("io_uring_queue_init failed") != std::string::npos &&
            files.fallbacks >= 64 && files.submitted == 0;
        std::fprintf(stderr, "%s: engine %s (%s), %llu fallbacks, %d failures\n",
                     ok ? "fell back" : "wrong", files.engine.c_str(),
                     files.reason.c_str(),
                     static_cast<unsigned long long>(files.fallbacks), failures.load());
        std::_Exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "fell back: engine blocking pool");
}

TEST(File, StatsSayWhichEngineFilesAndSocketsUse) {
  if (const std::string why = testing::IoEngineSkipReason("epoll"); !why.empty()) {
    GTEST_SKIP() << why;
  }
  RuntimeOptions options = testing::OptionsWithWorkers(2);
  options.io_engine = "epoll";
  StartRuntime(options);
  std::ostringstream out;
  DumpRuntimeStats(out);
  TerminateRuntime();
  EXPECT_NE(out.str().find("file I/O: engine blocking pool"), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("\nsockets: engine epoll multishot-accepts 0 multishot-receives 0 "
                           "received-bytes 0\n"),
            std::string::npos)
      << out.str();
}

TEST(File, WithIoUringSocketsUseTheRingsToo) {
  if (const std::string why = testing::IoEngineSkipReason("io_uring"); !why.empty()) {
    GTEST_SKIP() << why;
  }
  RuntimeOptions options = testing::OptionsWithWorkers(2);
  options.io_engine = "io_uring";
  StartRuntime(options);
  const RuntimeStats stats = GetRuntimeStats();
  TerminateRuntime();
  if (stats.file_io.engine != "io_uring") {
    GTEST_SKIP() << "the kernel refuses io_uring here: " << stats.file_io.reason;
  }
  EXPECT_EQ(stats.file_io.socket_engine, "io_uring");
}

}  // namespace
}  // namespace weft
