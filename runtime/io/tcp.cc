#include "runtime/io/tcp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <utility>
#include <vector>

#include "runtime/detail/errno.h"
#include "runtime/detail/libc.h"
#include "runtime/io/fd.h"
#include "runtime/this_fiber.h"

namespace weft::io {
namespace {

class IoErrorCategory : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft::io"; }
  std::string message(int value) const override {
    switch (static_cast<Error>(value)) {
      case Error::kEndOfStream:
        return "the peer ended the stream before all the bytes asked for arrived";
      case Error::kNotAnAddress:
        return "the host is neither an IP literal nor \"localhost\"; resolve names first "
               "(weft::io::Resolve)";
      case Error::kPathTooLong:
        return "the Unix-domain socket path is longer than 107 bytes; use a shorter path";
      case Error::kNotOpen:
        return "the stream or listener is not open (connect, accept or listen first)";
    }
    return "unknown weft::io error";
  }
};

std::error_code LastError() { return {detail::Errno(), std::system_category()}; }

// One socket address; `length` 0 when there is none.
struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

// The addresses `host` names, in the order to try them.
std::error_code ParseHost(std::string_view host, std::uint16_t port,
                          std::vector<Address>& out) {
  auto v4 = [&](const char* text) {
    Address a;
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    if (inet_pton(AF_INET, text, &in->sin_addr) != 1) return false;
    a.length = sizeof(sockaddr_in);
    out.push_back(a);
    return true;
  };
  auto v6 = [&](const char* text) {
    Address a;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    if (inet_pton(AF_INET6, text, &in6->sin6_addr) != 1) return false;
    a.length = sizeof(sockaddr_in6);
    out.push_back(a);
    return true;
  };
  if (host.empty()) {
    v4("0.0.0.0");
    return {};
  }
  if (host == "localhost") {
    v4("127.0.0.1");
    v6("::1");
    return {};
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string text(host);
  if (v4(text.c_str()) || v6(text.c_str())) return {};
  return Error::kNotAnAddress;
}

std::error_code UnixAddress(std::string_view path, Address& out) {
  auto* un = reinterpret_cast<sockaddr_un*>(&out.storage);
  un->sun_family = AF_UNIX;
  if (path.empty()) return std::make_error_code(std::errc::invalid_argument);
  if (path.size() >= sizeof(un->sun_path)) return Error::kPathTooLong;
  std::memcpy(un->sun_path, path.data(), path.size());
  if (path.front() == '@') {
    un->sun_path[0] = '\0';  // abstract: the length bounds the name
    out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  } else {
    out.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
  }
  return {};
}

std::string Format(const sockaddr_storage& storage, socklen_t length) {
  char text[INET6_ADDRSTRLEN] = {};
  switch (storage.ss_family) {
    case AF_INET: {
      const auto& in = reinterpret_cast<const sockaddr_in&>(storage);
      inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
      return std::string(text) + ":" + std::to_string(ntohs(in.sin_port));
    }
    case AF_INET6: {
      const auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage);
      inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof(text));
      return "[" + std::string(text) + "]:" + std::to_string(ntohs(in6.sin6_port));
    }
    case AF_UNIX: {
      const auto& un = reinterpret_cast<const sockaddr_un&>(storage);
      const std::size_t size = length > offsetof(sockaddr_un, sun_path)
                                   ? length - offsetof(sockaddr_un, sun_path)
                                   : 0;
      if (size == 0) return "";
      if (un.sun_path[0] == '\0') return "@" + std::string(un.sun_path + 1, size - 1);
      return std::string(un.sun_path, strnlen(un.sun_path, size));
    }
    default:
      return "";
  }
}

// Connects a new socket of `address`'s family into `stream`.
std::error_code ConnectTo(Stream& stream, const Address& address, Deadline deadline) {
  const int fd = io::Socket(address.storage.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return LastError();
  if (io::Connect(fd, address.get(), address.length, deadline) != 0) {
    const std::error_code error = LastError();
    io::Close(fd);
    return error;
  }
  stream = Stream(fd);
  return {};
}

void SetNoDelayOn(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Connects `stream` to the first of `addresses` that accepts, TCP_NODELAY on.
std::error_code ConnectToFirst(Stream& stream, const std::vector<Address>& addresses,
                               Deadline deadline) {
  std::error_code error;
  for (const Address& address : addresses) {
    error = ConnectTo(stream, address, deadline);
    if (!error) {
      SetNoDelayOn(stream.fd());
      return {};
    }
    // Another address is worth a try only when this one refused outright.
    if (error != std::errc::connection_refused && error != std::errc::address_not_available &&
        error != std::errc::address_family_not_supported &&
        error != std::errc::network_unreachable) {
      break;
    }
  }
  return error;
}

bool OutOfDescriptors(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

}  // namespace

const std::error_category& IoCategory() {
  static const IoErrorCategory category;
  return category;
}

std::error_code make_error_code(Error error) {
  return {static_cast<int>(error), IoCategory()};
}

// ---- Stream -----------------------------------------------------------------

Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = other.Release();
  }
  return *this;
}

IoResult Stream::Read(void* buf, std::size_t n, Deadline deadline) {
  if (fd_ < 0) return {0, Error::kNotOpen};
  const ssize_t got = io::Read(fd_, buf, n, deadline);
  if (got < 0) return {0, LastError()};
  return {static_cast<std::size_t>(got), {}};
}

IoResult Stream::ReadFull(void* buf, std::size_t n, Deadline deadline) {
  if (fd_ < 0) return {0, Error::kNotOpen};
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = io::Read(fd_, static_cast<char*>(buf) + done, n - done, deadline);
    if (got < 0) return {done, LastError()};
    if (got == 0) return {done, Error::kEndOfStream};
    done += static_cast<std::size_t>(got);
  }
  return {done, {}};
}

IoResult Stream::WriteAll(const void* buf, std::size_t n, Deadline deadline) {
  if (fd_ < 0) return {0, Error::kNotOpen};
  // io::Write returns a short count only with an error it does not report;
  // one more call at the remainder reports it.
  std::size_t done = 0;
  while (done < n) {
    const ssize_t wrote =
        io::Write(fd_, static_cast<const char*>(buf) + done, n - done, deadline);
    if (wrote < 0) return {done, LastError()};
    done += static_cast<std::size_t>(wrote);
  }
  return {done, {}};
}

IoResult Stream::WriteAllV(const iovec* iov, int iovcnt, Deadline deadline) {
  if (fd_ < 0) return {0, Error::kNotOpen};
  std::size_t total = 0;
  for (int i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  std::size_t done = 0;
  std::vector<iovec> rest;
  const iovec* next = iov;
  int count = iovcnt;
  while (done < total) {
    const ssize_t wrote = io::WriteV(fd_, next, count, deadline);
    if (wrote < 0) return {done, LastError()};
    done += static_cast<std::size_t>(wrote);
    if (done >= total) break;
    // A short write (an error comes next): skip what went.
    std::size_t skip = done;
    int i = 0;
    while (skip >= iov[i].iov_len) skip -= iov[i++].iov_len;
    rest.assign(iov + i, iov + iovcnt);
    rest[0].iov_base = static_cast<char*>(rest[0].iov_base) + skip;
    rest[0].iov_len -= skip;
    next = rest.data();
    count = static_cast<int>(rest.size());
  }
  return {done, {}};
}

std::error_code Stream::ShutdownWrite() {
  if (fd_ < 0) return Error::kNotOpen;
  if (::shutdown(fd_, SHUT_WR) != 0) return LastError();
  return {};
}

std::error_code Stream::Close() {
  const int fd = Release();
  if (fd < 0) return {};
  if (io::Close(fd) != 0) return LastError();
  return {};
}

std::string Stream::LocalAddress() const {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (fd_ < 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return "";
  }
  return Format(storage, length);
}

std::string Stream::PeerAddress() const {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (fd_ < 0 || getpeername(fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return "";
  }
  return Format(storage, length);
}

// ---- TcpStream / UnixStream -------------------------------------------------

std::error_code TcpStream::Connect(std::string_view host, std::uint16_t port,
                                   Deadline deadline) {
  Close();
  std::vector<Address> addresses;
  if (std::error_code error = ParseHost(host, port, addresses)) return error;
  return ConnectToFirst(*this, addresses, deadline);
}

std::error_code TcpStream::Connect(const std::vector<Endpoint>& endpoints,
                                   Deadline deadline) {
  Close();
  std::vector<Address> addresses;
  for (const Endpoint& endpoint : endpoints) {
    Address address;
    address.storage = endpoint.storage;
    address.length = endpoint.length;
    addresses.push_back(address);
  }
  if (addresses.empty()) return std::make_error_code(std::errc::invalid_argument);
  return ConnectToFirst(*this, addresses, deadline);
}

std::error_code TcpStream::SetNoDelay(bool on) {
  if (fd_ < 0) return Error::kNotOpen;
  const int value = on ? 1 : 0;
  if (setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &value, sizeof(value)) != 0) {
    return LastError();
  }
  return {};
}

std::error_code UnixStream::Connect(std::string_view path, Deadline deadline) {
  Close();
  Address address;
  if (std::error_code error = UnixAddress(path, address)) return error;
  return ConnectTo(*this, address, deadline);
}

// ---- Listeners --------------------------------------------------------------

Listener::Listener(Listener&& other) noexcept
    : fd_(other.fd_.exchange(-1)),
      unlink_on_close_(std::move(other.unlink_on_close_)),
      backoff_(other.backoff_) {
  other.unlink_on_close_.clear();
}

Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = other.fd_.exchange(-1);
    unlink_on_close_ = std::move(other.unlink_on_close_);
    other.unlink_on_close_.clear();
    backoff_ = other.backoff_;
  }
  return *this;
}

std::error_code Listener::Close() {
  const int fd = fd_.exchange(-1);
  if (fd < 0) return {};
  std::error_code error;
  if (io::Close(fd) != 0) error = LastError();
  if (!unlink_on_close_.empty()) {
    ::unlink(unlink_on_close_.c_str());
    unlink_on_close_.clear();
  }
  // backoff_ is reset by Listen, not here: an Accept in its back-off may be
  // using it while another thread closes.
  return error;
}

int Listener::AcceptSocket(Deadline deadline, std::error_code& error) {
  if (fd_ < 0) {
    error = Error::kNotOpen;
    return -1;
  }
  for (;;) {
    const int fd = io::Accept(fd_, nullptr, nullptr, deadline);
    if (fd >= 0) {
      backoff_ = std::chrono::milliseconds(0);
      error.clear();
      return fd;
    }
    const int code = detail::Errno();
    // The connection went before we took it: not the caller's concern.
    if (code == ECONNABORTED || code == EPROTO) continue;
    error = std::error_code(code, std::system_category());
    if (OutOfDescriptors(code)) {
      backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(5),
                            std::chrono::milliseconds(1000));
      const auto until = std::min(std::chrono::steady_clock::now() + backoff_,
                                  deadline.TimePoint());
      this_fiber::SleepUntil(until);
    }
    return -1;
  }
}

std::error_code TcpListener::Listen(std::string_view host, std::uint16_t port, int backlog) {
  Close();
  std::vector<Address> addresses;
  if (std::error_code error = ParseHost(host, port, addresses)) return error;
  const Address& address = addresses.front();
  const int fd = io::Socket(address.storage.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return LastError();
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd, address.get(), address.length) != 0 || ::listen(fd, backlog) != 0) {
    const std::error_code error = LastError();
    io::Close(fd);
    return error;
  }
  fd_ = fd;
  backoff_ = std::chrono::milliseconds(0);
  return {};
}

AcceptResult<TcpStream> TcpListener::Accept(Deadline deadline) {
  AcceptResult<TcpStream> result;
  const int fd = AcceptSocket(deadline, result.error);
  if (fd >= 0) {
    SetNoDelayOn(fd);
    result.stream = TcpStream(fd);
  }
  return result;
}

std::uint16_t TcpListener::LocalPort() const {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (fd_ < 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return 0;
  }
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in&>(storage).sin_port);
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6&>(storage).sin6_port);
  }
  return 0;
}

std::error_code UnixListener::Listen(std::string_view path, int backlog) {
  Close();
  Address address;
  if (std::error_code error = UnixAddress(path, address)) return error;
  const int fd = io::Socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return LastError();
  int bound = ::bind(fd, address.get(), address.length);
  if (bound != 0 && detail::Errno() == EADDRINUSE && path.front() != '@') {
    // A socket file left by a listener that is gone is replaced; a live one
    // is not, nor is a file that is not a socket (connecting to it is refused
    // too). The probe does not wait: a live listener with a full backlog
    // answers EAGAIN instead of blocking the worker until it accepts.
    const std::string file(path);
    struct stat st;
    const bool is_socket = ::lstat(file.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
    const int probe =
        is_socket ? ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) : -1;
    const bool refused = probe >= 0 && detail::Libc().connect(probe, address.get(), address.length) != 0 &&
                         detail::Errno() == ECONNREFUSED;
    if (probe >= 0) detail::Libc().close(probe);
    if (refused) {
      ::unlink(file.c_str());
      bound = ::bind(fd, address.get(), address.length);
    } else {
      detail::SetErrno(EADDRINUSE);
    }
  }
  if (bound != 0 || ::listen(fd, backlog) != 0) {
    const std::error_code error = LastError();
    io::Close(fd);
    return error;
  }
  fd_ = fd;
  backoff_ = std::chrono::milliseconds(0);
  if (path.front() != '@') unlink_on_close_ = std::string(path);
  return {};
}

AcceptResult<UnixStream> UnixListener::Accept(Deadline deadline) {
  AcceptResult<UnixStream> result;
  const int fd = AcceptSocket(deadline, result.error);
  if (fd >= 0) result.stream = UnixStream(fd);
  return result;
}

}  // namespace weft::io
