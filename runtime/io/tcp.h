// weft::io, the stream level: TCP and Unix-domain listeners and streams for
// fibers, with std::error_code errors (no exceptions for I/O failures).
//
//   weft::io::TcpListener listener;
//   if (auto error = listener.Listen("127.0.0.1", 0)) { ... error.message() ... }
//   for (;;) {
//     auto [stream, error] = listener.Accept();
//     if (error) continue;   // EMFILE and the like: Accept backed off already
//     weft::StartFiberDetached([s = std::move(stream)]() mutable {
//       char buf[4096];
//       for (;;) {
//         auto [n, error] = s.Read(buf, sizeof(buf), std::chrono::seconds(30));
//         if (error || n == 0) return;               // the stream closes itself
//         if (s.WriteAll(buf, n).error) return;
//       }
//     });
//   }
//
//   weft::io::TcpStream stream;
//   if (auto error = stream.Connect("localhost", port, std::chrono::seconds(1))) { ... }
//
// Hosts are IP literals ("127.0.0.1", "::1", "[::1]", "0.0.0.0", "::") or
// "localhost" (127.0.0.1, then ::1). Other names must be resolved first
// (weft::io::Resolve, runtime/io/resolve.h), and the addresses it returns
// passed to TcpStream::Connect. An empty host listens on every IPv4 address.
//
// Calls that may wait take a weft::Deadline last, and block only the calling
// fiber (or thread); they fail with std::errc::timed_out when it passes and
// std::errc::operation_canceled when another fiber or thread closes the
// stream. Results carry both the count and the error, so that a deadline or a
// reset after some bytes loses none of them:
//
//   auto [n, error] = stream.ReadFull(header, sizeof(header), deadline);
//
// Thread-safety: one stream may be read by one fiber while another writes it.
// Close() may come from any fiber or thread while calls wait on the stream:
// they end with operation_canceled. It must not race with the start of a call
// (as for any object, moving and destruction must not either): a call that
// starts after Close() gets Error::kNotOpen, one that raced may act on a
// descriptor number the process has reused. Two concurrent writers may
// interleave their bytes (serialize whole messages yourself).
#ifndef WEFT_RUNTIME_IO_TCP_H_
#define WEFT_RUNTIME_IO_TCP_H_

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "runtime/deadline.h"
#include "runtime/io/resolve.h"

namespace weft::io {

// Errors of weft::io's own (the rest are std::errc / the system category).
enum class Error {
  // ReadFull: the peer ended the stream before all the bytes came.
  kEndOfStream = 1,
  // A host that is neither an IP literal nor "localhost".
  kNotAnAddress,
  // A Unix-domain path longer than sockaddr_un can hold (107 bytes).
  kPathTooLong,
  // The call needs an open stream or listener.
  kNotOpen,
};
const std::error_category& IoCategory();
std::error_code make_error_code(Error error);

// How much a call transferred, and why it stopped short (no error: it did
// everything asked; for Read, bytes == 0 without an error is the end of the
// stream).
struct IoResult {
  std::size_t bytes = 0;
  std::error_code error;
};

// A connected stream socket, owned: the destructor closes it. Movable.
class Stream {
 public:
  Stream() = default;
  // Takes over a connected stream socket (made by weft or not).
  explicit Stream(int fd) : fd_(fd) {}
  ~Stream() { Close(); }
  Stream(Stream&& other) noexcept : fd_(other.Release()) {}
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  bool IsOpen() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Gives up ownership: the caller closes the socket (with io::Close).
  int Release() { return fd_.exchange(-1); }

  // What is there (at least one byte), or waits for it. bytes == 0 without
  // an error: the peer ended the stream.
  IoResult Read(void* buf, std::size_t n, Deadline deadline = {});
  // Exactly `n` bytes, unless the stream ends (Error::kEndOfStream), an error
  // occurs or the deadline passes: then `bytes` says how many arrived.
  IoResult ReadFull(void* buf, std::size_t n, Deadline deadline = {});
  // All of it, unless an error occurs or the deadline passes: then `bytes`
  // says how many were written. Never raises SIGPIPE (a closed peer gives
  // std::errc::broken_pipe or connection_reset).
  IoResult WriteAll(const void* buf, std::size_t n, Deadline deadline = {});
  IoResult WriteAll(std::string_view data, Deadline deadline = {}) {
    return WriteAll(data.data(), data.size(), deadline);
  }
  // Gathers several buffers into one write (a frame header and its body).
  IoResult WriteAllV(const iovec* iov, int iovcnt, Deadline deadline = {});

  // Half-close: the peer reads the end of the stream; this side may still
  // read.
  std::error_code ShutdownWrite();
  // Wakes every call waiting on the stream (operation_canceled) and closes it.
  // Closing a closed stream does nothing.
  std::error_code Close();

  // "127.0.0.1:8080", "[::1]:8080", a Unix path, or "" when unknown.
  std::string LocalAddress() const;
  std::string PeerAddress() const;

 protected:
  // Atomic: Close() may come from another thread while a call that read it
  // waits.
  std::atomic<int> fd_{-1};
};

// A TCP connection.
class TcpStream : public Stream {
 public:
  using Stream::Stream;

  // Connects to `host`:`port` (see the top for hosts), closing whatever the
  // stream held. "localhost" tries 127.0.0.1, then ::1 if that was refused.
  std::error_code Connect(std::string_view host, std::uint16_t port, Deadline deadline = {});
  // Connects to the first of `addresses` (from Resolve) that accepts, in
  // order, closing whatever the stream held. It moves on to the next address
  // only when one refuses or cannot be reached, and returns the last error
  // (std::errc::invalid_argument for an empty list).
  std::error_code Connect(const std::vector<Endpoint>& addresses, Deadline deadline = {});

  // TCP_NODELAY: small writes go at once (on by default for streams made by
  // Connect and TcpListener::Accept: request/response traffic wants it).
  std::error_code SetNoDelay(bool on);
};

// A Unix-domain stream connection. Paths starting with '@' are in the
// abstract namespace (no file).
class UnixStream : public Stream {
 public:
  using Stream::Stream;
  std::error_code Connect(std::string_view path, Deadline deadline = {});
};

template <class StreamType>
struct AcceptResult {
  StreamType stream;
  std::error_code error;
};

// What TcpListener and UnixListener share: the socket and the accept loop.
class Listener {
 public:
  Listener() = default;
  ~Listener() { Close(); }
  Listener(Listener&& other) noexcept;
  Listener& operator=(Listener&& other) noexcept;
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  bool IsOpen() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // Wakes a fiber waiting in Accept (operation_canceled) and closes the
  // socket (and removes the socket file of a UnixListener). An Accept in its
  // back-off (below) is not woken: it returns its error when the back-off
  // ends, and the next call gets Error::kNotOpen.
  std::error_code Close();

 protected:
  // The next connection's socket, or -1 and `error`. When the process or the
  // system is out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), waits
  // before returning the error, 5 ms at first and twice as long each time it
  // recurs, up to 1 s (never past the deadline), so that a loop that accepts
  // does not spin; connections already accepted are untouched.
  int AcceptSocket(Deadline deadline, std::error_code& error);

  std::atomic<int> fd_{-1};  // atomic: see Stream::fd_
  std::string unlink_on_close_;
  std::chrono::milliseconds backoff_{0};
};

// A listening TCP socket (SO_REUSEADDR).
class TcpListener : public Listener {
 public:
  // Binds and listens, closing whatever the listener held. Port 0 picks a
  // free port (see LocalPort). `backlog` is capped by net.core.somaxconn.
  std::error_code Listen(std::string_view host, std::uint16_t port, int backlog = SOMAXCONN);
  // The next connection (TCP_NODELAY set), waiting for one.
  AcceptResult<TcpStream> Accept(Deadline deadline = {});
  // The port bound, 0 when not listening.
  std::uint16_t LocalPort() const;
};

// A listening Unix-domain socket. A socket file left behind by a listener
// that is gone (connecting to it is refused) is replaced; one in use, or a
// file that is not a socket, is not (address_in_use). The check connects
// once, so a live listener at the path sees one connection that ends at once.
// Close() removes the file it made.
class UnixListener : public Listener {
 public:
  std::error_code Listen(std::string_view path, int backlog = SOMAXCONN);
  AcceptResult<UnixStream> Accept(Deadline deadline = {});
};

}  // namespace weft::io

namespace std {
template <>
struct is_error_code_enum<weft::io::Error> : true_type {};
}  // namespace std

#endif  // WEFT_RUNTIME_IO_TCP_H_
