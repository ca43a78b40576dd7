// Loopback sockets for the weft::io tests: a listener on 127.0.0.1 and
// connected pairs, made with weft::io from the calling fiber or thread.
#ifndef WEFT_TEST_IO_IO_TEST_UTIL_H_
#define WEFT_TEST_IO_IO_TEST_UTIL_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <tuple>
#include <utility>

#include "gtest/gtest.h"
#include "runtime/io/fd.h"
#include "test/sync/sync_test_util.h"
#include "test/test_util.h"

namespace weft::testing {

inline sockaddr_in Loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A listening socket on 127.0.0.1 and a free port; -1 (with a test failure)
// if the system refuses.
inline int Listen(std::uint16_t* port, int backlog = 1024) {
  const int fd = io::Socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = Loopback(0);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, backlog) != 0) {
    ADD_FAILURE() << "bind/listen: " << std::strerror(errno);
    io::Close(fd);
    return -1;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// A socket connected to 127.0.0.1:`port`, or -1 with errno.
inline int ConnectTo(std::uint16_t port, Deadline deadline = {}) {
  const int fd = io::Socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  const sockaddr_in addr = Loopback(port);
  if (io::Connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr), deadline) !=
      0) {
    const int error = errno;
    io::Close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

// After Close() of the listener on `port` returned: connecting is refused.
// With the io_uring socket engine (`ring_engine`) the kernel may still hold
// the listening socket for a moment (it posts a request's last completion
// before it drops its reference to the file), so a connect that completes in
// that moment passes if the connection is then reset without a byte: the
// closed listener serves nothing it took.
inline ::testing::AssertionResult ClosedListenerRefuses(std::uint16_t port,
                                                        bool ring_engine) {
  const int client = ConnectTo(port);
  const int error = errno;
  if (client < 0) {
    if (error == ECONNREFUSED) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "connect failed with " << std::strerror(error) << ", not ECONNREFUSED";
  }
  if (!ring_engine) {
    io::Close(client);
    return ::testing::AssertionFailure() << "a closed listener accepted a connection";
  }
  char c;
  const ssize_t n = io::Read(client, &c, 1, Deadline(kGenerousTimeout));
  const int read_error = errno;
  io::Close(client);
  if (n == 0 || (n < 0 && read_error == ECONNRESET)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "a connection to a closed listener was not reset: read returned " << n << " ("
         << std::strerror(read_error) << ")";
}

// A connected pair of loopback TCP sockets (first: the connecting side).
inline std::pair<int, int> ConnectedPair() {
  std::uint16_t port = 0;
  const int listener = Listen(&port);
  if (listener < 0) return {-1, -1};
  const int client = ConnectTo(port);
  EXPECT_GE(client, 0) << std::strerror(errno);
  const int server = io::Accept(listener, nullptr, nullptr);
  EXPECT_GE(server, 0) << std::strerror(errno);
  io::Close(listener);
  return {client, server};
}

// Reads exactly `n` bytes; false on end of stream or an error.
inline bool ReadExactly(int fd, void* buf, std::size_t n, Deadline deadline = {}) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = io::Read(fd, static_cast<char*>(buf) + done, n - done, deadline);
    if (got <= 0) return false;
    done += static_cast<std::size_t>(got);
  }
  return true;
}

// The parameters of a client/server test: worker count, the client's side and
// the server's side (a fiber or a plain thread), every combination.
inline auto WorkersAndSides() {
  return ::testing::Combine(
      ::testing::Values(std::size_t{1}, std::size_t{2}, std::size_t{4}),
      ::testing::Values(Side::kFiber, Side::kThread),
      ::testing::Values(Side::kFiber, Side::kThread));
}

// Names a WorkersAndSides() case: "2WorkersFiberClientThreadServer".
struct WorkersAndSidesName {
  template <class Info>
  std::string operator()(const Info& info) const {
    return std::to_string(std::get<0>(info.param)) + "Workers" +
           SideName(std::get<1>(info.param)) + "Client" +
           SideName(std::get<2>(info.param)) + "Server";
  }
};

// Raises the soft limit on open files to `wanted`, and the hard limit too
// when the process may (root may, up to fs.nr_open); otherwise to the hard
// limit. Returns the limit now in force.
inline rlim_t RaiseOpenFileLimit(rlim_t wanted) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_max < wanted) {
    const rlimit raised{wanted, wanted};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return wanted;
  }
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = std::min(wanted, limit.rlim_max);
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

}  // namespace weft::testing

#endif  // WEFT_TEST_IO_IO_TEST_UTIL_H_
