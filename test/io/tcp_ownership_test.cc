// weft::io's stream level (runtime/io/tcp.h), who owns a socket and its name:
// streams and listeners under RAII, moves and Release, calls on one that is
// not open, Accept out of descriptors, Unix-domain paths and names (the socket
// file made and removed, stale and live paths, the abstract namespace). The
// data path is in tcp_test.cc.
//
// Sockets are bound to 127.0.0.1 or Unix paths in a fresh temporary directory
// (or the abstract namespace); clients connect to the loopback.
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "runtime/fiber.h"
#include "runtime/io/fd.h"
#include "runtime/io/tcp.h"
#include "test/io/tcp_test_util.h"
#include "test/test_util.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using testing::Connect;
using testing::ConnectedTcpPair;
using testing::ExpectEndOfStream;
using testing::ExpectRoundTrip;
using testing::HasError;
using testing::Ok;
using testing::TcpPair;

// For waits that should succeed: a bug fails the test instead of hanging it.
constexpr auto kLong = testing::kGenerousTimeout;

template <class F>
void InFiber(F&& body) {
  Fiber(std::forward<F>(body)).Join();
}

// The suite of tcp_test.cc, continued (its tests are selected by that name).
class TcpTest : public testing::WorkerCountTest {};

TEST_P(TcpTest, OwnershipFollowsMovesAndRelease) {
  InFiber([&] {
    TcpPair first = ConnectedTcpPair(), second = ConnectedTcpPair();
    const int fd = first.client.fd();
    io::TcpStream moved(std::move(first.client));
    EXPECT_EQ(moved.fd(), fd);
    EXPECT_FALSE(first.client.IsOpen());
    EXPECT_TRUE(Ok(first.client.Close()));
    ExpectRoundTrip(moved, first.server);  // closing the moved-from did nothing to it
    moved = std::move(second.client);
    EXPECT_FALSE(second.client.IsOpen());
    ExpectEndOfStream(first.server);  // the socket it replaced was closed
    ExpectRoundTrip(moved, second.server);

    const int released = moved.Release();
    EXPECT_FALSE(moved.IsOpen());
    EXPECT_TRUE(Ok(moved.Close()));  // closes nothing: the socket is the caller's
    ASSERT_EQ(io::Write(released, "r", 1), 1);
    char c = 0;
    ASSERT_TRUE(Ok(second.server.ReadFull(&c, 1, kLong).error));
    EXPECT_EQ(c, 'r');
    {
      io::TcpStream adopted(released);
      ExpectRoundTrip(adopted, second.server);
    }
    ExpectEndOfStream(second.server);  // a destroyed stream closes its socket

    // A listener assigned to closes the one it replaces.
    io::TcpListener listener, other;
    ASSERT_TRUE(Ok(listener.Listen("127.0.0.1", 0)));
    ASSERT_TRUE(Ok(other.Listen("127.0.0.1", 0)));
    const std::uint16_t kept = listener.LocalPort(), replaced = other.LocalPort();
    other = std::move(listener);
    TcpPair pair = Connect(other, "127.0.0.1", kept);
    ExpectRoundTrip(pair.client, pair.server);
    io::TcpStream probe;
    EXPECT_TRUE(HasError(probe.Connect("127.0.0.1", replaced, kLong),
                         std::errc::connection_refused));
  });
}

// Moved-from, closed or never opened: every call fails at once with kNotOpen.
TEST_P(TcpTest, CallsOnAStreamThatIsNotOpenFailWithNotOpen) {
  InFiber([&] {
    TcpPair pair = ConnectedTcpPair();
    io::TcpStream taken(std::move(pair.client)), never;
    ASSERT_TRUE(Ok(pair.server.Close()));
    char buf[4];
    const iovec iov{buf, sizeof(buf)};
    for (io::TcpStream* s : {&pair.client, &pair.server, &never}) {
      int call = 0;
      for (const std::error_code& e :
           {s->Read(buf, 4, kLong).error, s->ReadFull(buf, 4, kLong).error,
            s->WriteAll(buf, 4, kLong).error, s->WriteAllV(&iov, 1, kLong).error,
            s->ShutdownWrite(), s->SetNoDelay(true)}) {
        EXPECT_TRUE(HasError(e, io::Error::kNotOpen)) << "call " << call++;
      }
      EXPECT_TRUE(Ok(s->Close()));
      EXPECT_EQ(s->LocalAddress() + s->PeerAddress(), "");
    }
    io::TcpListener listener, taken_listener;
    ASSERT_TRUE(Ok(listener.Listen("127.0.0.1", 0)));
    taken_listener = std::move(listener);
    auto accepted = listener.Accept(kLong);
    EXPECT_TRUE(HasError(accepted.error, io::Error::kNotOpen));
    EXPECT_FALSE(accepted.stream.IsOpen());
    EXPECT_EQ(listener.LocalPort(), 0);
    EXPECT_TRUE(Ok(listener.Close()));
    EXPECT_TRUE(HasError(io::UnixListener().Accept(kLong).error, io::Error::kNotOpen));
  });
}

// Lowers the soft limit on open files and fills every free number below it,
// until End() or destruction, which undo both (whatever the test did).
class OutOfDescriptors {
 public:
  explicit OutOfDescriptors(int highest_fd) {
    getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = static_cast<rlim_t>(highest_fd + 16);
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) {
      ADD_FAILURE() << "setrlimit: " << std::strerror(errno);
      return;
    }
    for (int fd; (fd = ::dup(highest_fd)) >= 0;) fillers_.push_back(fd);
    EXPECT_EQ(errno, EMFILE);
  }
  ~OutOfDescriptors() { End(); }
  void End() {
    for (int fd : fillers_) ::close(fd);
    fillers_.clear();
    setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> fillers_;
};

// With no descriptor left, Accept fails with EMFILE and waits longer each
// time (5, 10, 20, 40, 80 ms: a lower bound on the time five calls take); a
// stream accepted before still works, and the pending connection is accepted
// once descriptors are free again.
TEST_P(TcpTest, AcceptBacksOffWhenOutOfDescriptorsAndDropsNothing) {
  InFiber([&] {
    io::TcpListener listener;
    ASSERT_TRUE(Ok(listener.Listen("127.0.0.1", 0)));
    TcpPair pair = Connect(listener, "127.0.0.1", listener.LocalPort());
    io::TcpStream pending;
    ASSERT_TRUE(Ok(pending.Connect("127.0.0.1", listener.LocalPort(), kLong)));
    OutOfDescriptors exhausted(pending.fd());
    const auto start = steady_clock::now();
    for (int i = 0; i < 5; ++i) {
      auto accepted = listener.Accept(kLong);
      EXPECT_TRUE(HasError(accepted.error, std::errc::too_many_files_open))
          << "call " << i;
      EXPECT_EQ(accepted.error.value(), EMFILE);
      EXPECT_FALSE(accepted.stream.IsOpen());
    }
    EXPECT_GE(
        std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count(),
        150)
        << "five Accept calls out of descriptors did not back off 5+10+20+40+80 ms";
    ExpectRoundTrip(pair.client, pair.server);
    exhausted.End();
    auto late = listener.Accept(kLong);
    ASSERT_TRUE(Ok(late.error));
    ExpectRoundTrip(pending, late.stream);
  });
}

INSTANTIATE_TEST_SUITE_P(Workers, TcpTest,
                         ::testing::Values(std::size_t{1}, std::size_t{2},
                                           std::size_t{4}),
                         testing::WorkerCountName);

// Unix-domain sockets, in a fresh temporary directory per test.
class UnixTest : public testing::WorkerCountTest {
 protected:
  void SetUp() override {
    WorkerCountTest::SetUp();
    std::string dir =
        (std::filesystem::temp_directory_path() / "weft-tcp-XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr) << std::strerror(errno);
    dir_ = dir;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    WorkerCountTest::TearDown();
  }
  std::string Path(const char* name) const { return dir_ + "/" + name; }
  static bool Exists(const std::string& path, bool socket = false) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 && (!socket || S_ISSOCK(st.st_mode));
  }
  // Connects to `listener` at `address`: a round trip, and both ends name it.
  static void ExpectServes(io::UnixListener& listener, const std::string& address) {
    testing::StreamPair<io::UnixStream> pair = Connect(listener, address);
    ASSERT_TRUE(pair.server.IsOpen());
    EXPECT_EQ(pair.client.PeerAddress(), address);
    EXPECT_EQ(pair.server.LocalAddress(), address);
    ExpectRoundTrip(pair.client, pair.server);
  }

  std::string dir_;
};

TEST_P(UnixTest, ListensOnAPathAndRemovesTheFileOnClose) {
  InFiber([&] {
    const std::string path = Path("s");
    io::UnixListener listener;
    ASSERT_TRUE(Ok(listener.Listen(path)));
    EXPECT_TRUE(Exists(path, /*socket=*/true));
    ExpectServes(listener, path);
    ASSERT_TRUE(Ok(listener.Close()));
    EXPECT_FALSE(Exists(path));
    EXPECT_TRUE(Ok(listener.Close()));
    io::UnixStream late;
    EXPECT_TRUE(
        HasError(late.Connect(path, kLong), std::errc::no_such_file_or_directory));
    {
      io::UnixListener scoped;
      ASSERT_TRUE(Ok(scoped.Listen(path)));
      EXPECT_TRUE(Exists(path, /*socket=*/true));
    }
    EXPECT_FALSE(Exists(path)) << "a destroyed listener left its file";
  });
}

TEST_P(UnixTest, ListensInTheAbstractNamespace) {
  InFiber([&] {
    static std::atomic<int> next{0};
    const std::string name =
        "@weft-test-" + std::to_string(getpid()) + "-" + std::to_string(next++);
    io::UnixListener listener;
    ASSERT_TRUE(Ok(listener.Listen(name)));
    ExpectServes(listener, name);
    io::UnixListener second;
    EXPECT_TRUE(HasError(second.Listen(name), std::errc::address_in_use));
    EXPECT_FALSE(second.IsOpen());
    ASSERT_TRUE(Ok(listener.Close()));
    ASSERT_TRUE(Ok(second.Listen(name)));  // free again once closed
    ExpectServes(second, name);
  });
}

// A socket file whose listener is gone (closed without unlinking the file)
// is replaced.
TEST_P(UnixTest, ReplacesAStaleSocketFile) {
  InFiber([&] {
    const std::string path = Path("stale");
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    ASSERT_EQ(::listen(fd, 1), 0);
    ::close(fd);
    ASSERT_TRUE(Exists(path, /*socket=*/true));
    io::UnixListener listener;
    ASSERT_TRUE(Ok(listener.Listen(path)));
    ExpectServes(listener, path);
  });
}

// A live listener keeps its path, even with its backlog full (checking that
// it is alive must not wait for room in it); so does a file that is not a
// socket.
TEST_P(UnixTest, APathInUseIsNotTakenOver) {
  testing::Watchdog watchdog("Listen on a path in use");
  InFiber([&] {
    const std::string path = Path("live");
    io::UnixListener live, second;
    ASSERT_TRUE(Ok(live.Listen(path, /*backlog=*/0)));
    EXPECT_TRUE(HasError(second.Listen(path), std::errc::address_in_use));
    EXPECT_FALSE(second.IsOpen());
    std::vector<io::UnixStream> queued;
    std::error_code error;
    for (int i = 0; i < 16 && !error; ++i) {
      queued.emplace_back();
      error = queued.back().Connect(path, milliseconds(20));
    }
    ASSERT_TRUE(HasError(error, std::errc::timed_out)) << "the backlog did not fill";
    EXPECT_TRUE(HasError(second.Listen(path), std::errc::address_in_use));
    EXPECT_FALSE(second.IsOpen());
    EXPECT_TRUE(Exists(path, /*socket=*/true));

    const std::string data = Path("data");
    std::ofstream(data) << "keep";
    EXPECT_TRUE(HasError(second.Listen(data), std::errc::address_in_use));
    std::string content;
    std::ifstream(data) >> content;
    EXPECT_EQ(content, "keep") << "Listen replaced a file that was not a socket";
  });
}

TEST_P(UnixTest, APathTooLongIsRefused) {
  InFiber([&] {
    const std::string path = dir_ + "/" + std::string(200 - dir_.size() - 1, 'p');
    ASSERT_EQ(path.size(), 200u);
    io::UnixListener listener;
    EXPECT_TRUE(HasError(listener.Listen(path), io::Error::kPathTooLong));
    EXPECT_TRUE(
        HasError(listener.Listen("@" + std::string(199, 'a')), io::Error::kPathTooLong));
    EXPECT_FALSE(listener.IsOpen());
    io::UnixStream stream;
    EXPECT_TRUE(HasError(stream.Connect(path, kLong), io::Error::kPathTooLong));
    EXPECT_FALSE(Exists(path));
  });
}

INSTANTIATE_TEST_SUITE_P(Workers, UnixTest,
                         ::testing::Values(std::size_t{1}, std::size_t{2},
                                           std::size_t{4}),
                         testing::WorkerCountName);

}  // namespace
}  // namespace weft
